"""The baselines CROA (arXiv 2412.18453) is compared with, in the same ``plan`` interface:

- ``StayPlanner`` ("stay"): no motion; brakes to a stop where it is.
- ``StraightPlanner`` ("straight"): move in a straight line to the nearest free viewpoint with
  a clear line of sight. Viewpoints: the rings around the target (viewpoints.py); free: the
  footprint parked there, facing along the line, keeps d_min; clear: exact occlusion at most
  ``clear_view_occlusion`` (if none is, the least occluded free one). The robot turns toward the
  line at the bicycle's largest yaw rate while moving along it with a trapezoidal speed profile,
  and stops short before the first pose that would come closer than d_min to an obstacle. This
  is the classic holonomic idealization of the MAD baseline: it ignores the steering geometry
  (its poses are checked for collisions, not for drivability).
- ``GreedyNbvPlanner`` ("greedy_nbv"): next-best view over the sampled viewpoints (rings around
  the target and the robot), scored by exact occlusion plus ``distance_weight`` per metre of
  distance from the lidar (viewpoints.best_viewpoint); the best free one is reached with the
  OBCA trajectory.
- ``ObcaOffsetPlanner`` ("obca_only"): the OBCA trajectory without the occlusion term, to a
  fixed viewpoint beside the target (``offset_gap_m`` from its side, on the robot's side).

The OBCA trajectories use the same program as CROA in goal mode (problem.py): the occlusion
terms are replaced by ``w_goal |p - goal|^2``. All results pass the same exact verification
and fallbacks as CROA (safety.py).
"""

from __future__ import annotations

import time

import numpy as np

from geometry.transforms import wrap_angle
from planning.croa.collision import ObstacleSet, footprints
from planning.croa.config import CroaConfig
from planning.croa.kinematics import base_to_rear, lidar_xy
from planning.croa.safety import (
    build_result,
    check_observation,
    conclude,
    cycle_obstacles,
    fallback,
    min_clearance,
    previous_plan,
    start_rear,
    stop_plan,
    view_occlusion,
)
from planning.croa.scp import ScpContext, ScpSolver
from planning.croa.types import PlannerState, PlanObservation, PlanResult, PlanStatus, PlanTimings
from planning.croa.viewpoints import (
    best_viewpoint,
    pursuit_candidates,
    reach_candidates,
    ring_candidates,
    score_controls,
    viewpoint_clearance,
)

Plan = tuple[PlanResult, PlannerState]


class StayPlanner:
    """No motion (module docstring)."""

    name = "stay"

    def __init__(self, config: CroaConfig | None = None) -> None:
        self.config = config or CroaConfig()

    def plan(self, observation: PlanObservation, state: PlannerState | None = None) -> Plan:
        start = time.perf_counter()
        c = self.config
        check_observation(observation, c)
        obstacles = cycle_obstacles(observation, c)
        rear, u = stop_plan(observation, c)
        clear = min_clearance(rear, obstacles, c)
        timings = PlanTimings(1e3 * (time.perf_counter() - start))
        if clear < c.min_clearance_m:
            return fallback(
                self.name,
                "braking in place is not clear",
                observation,
                state,
                c,
                obstacles,
                timings,
            )
        return build_result(
            self.name,
            PlanStatus.OK,
            "staying",
            rear,
            u,
            observation,
            state,
            c,
            clear,
            timings=timings,
        )


class StraightPlanner:
    """Straight line to the nearest free, clear viewpoint (module docstring)."""

    name = "straight"

    def __init__(self, config: CroaConfig | None = None) -> None:
        self.config = config or CroaConfig()

    def plan(self, observation: PlanObservation, state: PlannerState | None = None) -> Plan:
        start = time.perf_counter()
        c = self.config
        check_observation(observation, c)
        obstacles = cycle_obstacles(observation, c)
        here = lidar_xy(start_rear(observation, c), c.robot)
        views = ring_candidates(observation.target_box, c)
        headings = np.arctan2(views[:, 1] - here[1], views[:, 0] - here[0])
        free = viewpoint_clearance(views, headings, obstacles, c, c.min_clearance_m) >= (
            c.min_clearance_m
        )
        if not np.any(free):
            return fallback(
                self.name,
                "no free viewpoint",
                observation,
                state,
                c,
                obstacles,
                PlanTimings(1e3 * (time.perf_counter() - start)),
            )
        occ = view_occlusion(views[free], observation, c, c.horizon_steps * c.dt_s)
        dist = np.linalg.norm(views[free] - here, axis=1)
        clear = occ <= c.baselines.clear_view_occlusion
        pick = np.argmin(np.where(clear, dist, np.inf)) if np.any(clear) else np.argmin(occ)
        goal = views[free][pick] - c.robot.lidar_x_m * np.array(
            [np.cos(headings[free][pick]), np.sin(headings[free][pick])]
        )  # base_link goal
        rear, u, blocked = straight_path(observation, goal, obstacles, c)
        timings = PlanTimings(1e3 * (time.perf_counter() - start))
        clear_m = min_clearance(rear, obstacles, c)
        if clear_m < c.min_clearance_m:
            return fallback(
                self.name, "blocked at the start", observation, state, c, obstacles, timings
            )
        msg = f"stopped short at step {blocked} (blocked)" if blocked else "moving straight"
        return build_result(
            self.name, PlanStatus.OK, msg, rear, u, observation, state, c, clear_m, timings=timings
        )


def straight_path(
    observation: PlanObservation,
    goal_xy: np.ndarray,  # [2] base_link goal
    obstacles: ObstacleSet,
    config: CroaConfig,
) -> tuple[np.ndarray, np.ndarray, int | None]:
    """Rear-axle states [T + 1, 4], controls [T, 2] (acceleration, 0) of the straight move and
    the first step that would have been blocked (None if none)."""
    c, r = config, config.robot
    robot = observation.robot
    p0 = np.array([robot.x_m, robot.y_m])
    length = float(np.linalg.norm(goal_xy - p0))
    direction = (goal_xy - p0) / max(length, 1e-9)
    turn = float(wrap_angle(np.arctan2(direction[1], direction[0]) - robot.yaw_rad))
    step_yaw = r.max_yaw_rate_radps() * c.dt_s
    base = np.zeros((c.horizon_steps + 1, 4))
    base[0] = robot.as_array()
    s, v, blocked = 0.0, max(0.0, robot.v_mps * np.cos(turn)), None  # speed along the line
    for k in range(1, c.horizon_steps + 1):
        if blocked is None:
            v_next = min(
                r.max_speed_mps,
                v + r.max_accel_mps2 * c.dt_s,
                np.sqrt(2.0 * r.max_accel_mps2 * max(length - s, 0.0)),
                r.max_accel_mps2 * (c.horizon_steps - k) * c.dt_s,
            )  # at rest at T
            s = min(length, s + 0.5 * (v + v_next) * c.dt_s)
            v = v_next
            yaw = robot.yaw_rad + np.clip(turn, -k * step_yaw, k * step_yaw)
            base[k] = *(p0 + s * direction), yaw, v
            foot = footprints(base_to_rear(base[k], r)[None], r)
            if (
                len(obstacles)
                and np.min(
                    obstacles.signed_distances(foot, c.min_clearance_m, np.array([k * c.dt_s]))[0]
                )
                < c.min_clearance_m
            ):
                blocked = k  # fmt: skip
        if blocked is not None:
            base[k] = *base[blocked - 1, :3], 0.0
    controls = np.zeros((c.horizon_steps, 2))
    controls[:, 0] = np.diff(base[:, 3]) / c.dt_s
    return base_to_rear(base, r), controls, blocked


class _GoalReacher:
    """OBCA trajectory (goal mode) to a lidar goal, verified like CROA's."""

    def __init__(self, config: CroaConfig) -> None:
        self.config = config
        self._solver = ScpSolver(config, "goal")

    def reach(
        self,
        method: str,
        goal_xy: np.ndarray,  # [2] lidar goal
        observation: PlanObservation,
        state: PlannerState | None,
        obstacles: ObstacleSet,
        start: float,
    ) -> Plan:
        c = self.config
        ctx = ScpContext(
            start_rear(observation, c),
            observation.robot.steer_rad,
            obstacles,
            goal_xy=np.asarray(goal_xy, dtype=np.float64),
        )
        # Straight at the goal, or around an obstacle via a waypoint within reach.
        here = lidar_xy(ctx.rear0, c.robot)
        reach = c.robot.max_speed_mps * c.horizon_steps * c.dt_s
        goals = np.vstack([ctx.goal_xy[None], reach_candidates(here, reach, c)])
        guesses = [pursuit_candidates(goals, observation, c), stop_plan(observation, c)[1][None]]
        previous = previous_plan(observation, state, c)
        if previous is not None:
            guesses.append(previous[1][None])
        scored = score_controls(np.concatenate(guesses), observation, obstacles, c, ctx.goal_xy)
        initial = self._solver.evaluate(scored.controls[int(np.argmin(scored.score))], ctx)
        setup_ms = 1e3 * (time.perf_counter() - start)
        out = self._solver.run(initial, ctx)
        timings = PlanTimings(
            1e3 * (time.perf_counter() - start), setup_ms, out.solve_ms, out.num_solves
        )
        return conclude(method, out, observation, state, c, obstacles, timings)


class GreedyNbvPlanner:
    """Best sampled viewpoint by exact occlusion, reached with OBCA (module docstring)."""

    name = "greedy_nbv"

    def __init__(self, config: CroaConfig | None = None) -> None:
        self.config = config or CroaConfig()
        self._reacher = _GoalReacher(self.config)

    def plan(self, observation: PlanObservation, state: PlannerState | None = None) -> Plan:
        start = time.perf_counter()
        c = self.config
        check_observation(observation, c)
        obstacles = cycle_obstacles(observation, c)
        goal = best_viewpoint(observation, obstacles, c)
        if goal is None:
            timings = PlanTimings(1e3 * (time.perf_counter() - start))
            return fallback(self.name, "no free viewpoint", observation, state, c, obstacles,
                            timings)  # fmt: skip
        return self._reacher.reach(self.name, goal, observation, state, obstacles, start)


class ObcaOffsetPlanner:
    """OBCA trajectory to a fixed viewpoint beside the target (module docstring)."""

    name = "obca_only"

    def __init__(self, config: CroaConfig | None = None) -> None:
        self.config = config or CroaConfig()
        self._reacher = _GoalReacher(self.config)

    def plan(self, observation: PlanObservation, state: PlannerState | None = None) -> Plan:
        start = time.perf_counter()
        c = self.config
        check_observation(observation, c)
        obstacles = cycle_obstacles(observation, c)
        box = observation.target_box
        side = np.array([-np.sin(box[6]), np.cos(box[6])])  # the target's left
        here = lidar_xy(start_rear(observation, c), c.robot)
        sign = 1.0 if (here - box[:2]) @ side >= 0.0 else -1.0
        offset = 0.5 * box[4] + 0.5 * c.robot.width_m + c.baselines.offset_gap_m
        goal = box[:2] + sign * offset * side
        return self._reacher.reach(self.name, goal, observation, state, obstacles, start)
