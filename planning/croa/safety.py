"""Input checks, exact verification and fallbacks shared by CROA and its baselines
(arXiv 2412.18453 MAD loop; the style rule "an infeasible or failed solve has a defined
fallback, never a crash").

Contract of every planner in this package: a result with status OK or ITERATION_LIMIT has a
trajectory whose footprint keeps at least ``min_clearance_m`` from every obstacle (and the
target) at steps 1..T, verified with exact polygon distances; the config's sweep bound then
keeps linearly interpolated poses between steps collision-free. Otherwise the planner falls
back to the rest of its last safe trajectory re-rolled from the current state (if it still
matches the state and is still clear) or to braking in place, and says why. Plans end at
rest (problem.py), so the rest of the last safe plan stays clear in a static scene.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np

from planning.croa.collision import ObstacleSet, footprints
from planning.croa.config import CroaConfig
from planning.croa.kinematics import base_to_rear, lidar_xy, rear_to_base, rollout, stop_controls
from planning.croa.occlusion import exact_occlusion
from planning.croa.scp import ScpOutcome
from planning.croa.types import (
    CroaInputError,
    PlannerState,
    PlanObservation,
    PlanResult,
    PlanStatus,
    PlanTimings,
    Polytope,
    Trajectory,
)

LOG = logging.getLogger(__name__)
ESCAPE_MARGIN_M = 0.02  # how much closer than now an obstacle already within d_min may come


def check_observation(observation: PlanObservation, config: CroaConfig) -> None:
    """Raises CroaInputError for a speed outside the limits or an obstacle with too many faces."""
    r, v = config.robot, observation.robot.v_mps
    if not -r.max_reverse_speed_mps - 1e-6 <= v <= r.max_speed_mps + 1e-6:
        raise CroaInputError(
            f"robot state v_mps={v}: outside [-max_reverse_speed_mps, "
            f"max_speed_mps] = [{-r.max_reverse_speed_mps}, {r.max_speed_mps}]"
        )
    if abs(observation.robot.steer_rad) > r.max_steer_rad + 1e-6:
        raise CroaInputError(
            f"robot state steer_rad={observation.robot.steer_rad}: outside "
            f"+-max_steer_rad={r.max_steer_rad}"
        )
    for k, o in enumerate(observation.obstacles):
        if len(o.b) > config.max_faces:
            raise CroaInputError(
                f"obstacles[{k}] has {len(o.b)} faces > max_faces={config.max_faces}"
            )


def start_rear(observation: PlanObservation, config: CroaConfig) -> np.ndarray:  # [4]
    return base_to_rear(observation.robot.as_array(), config.robot)


def reach_m(config: CroaConfig) -> float:
    """Farthest base_link travel within the horizon (m)."""
    r = config.robot
    return max(r.max_speed_mps, r.max_reverse_speed_mps) * config.horizon_steps * config.dt_s


def cycle_obstacles(observation: PlanObservation, config: CroaConfig) -> ObstacleSet:
    """Obstacles plus the target, minus those no footprint within reach can come near; an
    obstacle already closer than d_min gets an allowance (collision.ObstacleSet): the robot
    may move away from it but not closer than it is now minus 2 cm (never into it)."""
    everything = ObstacleSet(
        [*observation.obstacles, Polytope.from_box(observation.target_box)], config.max_faces
    )
    here = footprints(start_rear(observation, config)[None], config.robot)
    sd, _ = everything.signed_distances(here)
    allowance = np.clip(config.min_clearance_m - (sd[0] - ESCAPE_MARGIN_M), 0.0,
                        config.min_clearance_m)  # fmt: skip
    horizon = np.array([config.horizon_steps * config.dt_s])
    sd = sd - np.linalg.norm(everything.displacements(horizon)[0], axis=1)
    sweep = reach_m(config) + np.hypot(config.robot.length_m, config.robot.width_m)
    near = sd[0] <= sweep + config.min_clearance_m + config.plan_margin_m
    return everything.subset(near, allowance)


def min_clearance(rear: np.ndarray, obstacles: ObstacleSet, config: CroaConfig) -> float:
    """Least signed distance of the footprints of steps 1..T (rear [T + 1, 4]) (m)."""
    if len(obstacles) == 0 or len(rear) < 2:
        return np.inf
    sd, _ = obstacles.signed_distances(footprints(rear[1:], config.robot), np.inf,
                                       step_times(len(rear) - 1, config))  # fmt: skip
    return float(np.min(sd))


def path_clearance(
    observation: PlanObservation,
    poses: np.ndarray,  # [K, >= 3] base_link (x, y, yaw) of the path still to drive
    times_s: np.ndarray,  # [K] when the robot is at each, after the observation
    config: CroaConfig,
) -> float:
    """Least signed distance of the robot's footprint at ``poses`` to the observation's
    obstacles (moving ones where predicted at ``times_s``) and the target (m; inf: none).

    The executive's guard while a plan is being driven: a new perception frame (a vehicle the
    detector only now found, lidar returns of one it missed, a vehicle that stopped) can put
    an obstacle on the rest of a plan that was clear when it was made; the robot then brakes
    and replans instead of driving on blind until the plan ends."""
    poses = np.asarray(poses, dtype=np.float64).reshape(-1, np.shape(poses)[-1])
    if not len(poses):
        return np.inf
    everything = ObstacleSet(
        [*observation.obstacles, Polytope.from_box(observation.target_box)], config.max_faces
    )
    if not len(everything):
        return np.inf
    states = np.zeros((len(poses), 4))
    states[:, :3] = poses[:, :3]
    feet = footprints(base_to_rear(states, config.robot), config.robot)
    sd, _ = everything.signed_distances(feet, np.inf, np.asarray(times_s, dtype=np.float64))
    return float(np.min(sd))


def step_times(steps: int, config: CroaConfig) -> np.ndarray:  # [steps]
    """Times (s) of steps 1..steps after the observation (where moving obstacles are)."""
    return config.dt_s * np.arange(1, steps + 1)


def view_occlusion(
    view_xy: np.ndarray,  # [N, 2]
    observation: PlanObservation,
    config: CroaConfig,
    t_s: float = 0.0,
    spacing_m: float | None = None,
) -> np.ndarray:  # [N]
    """Exact occlusion of the target from lidar positions, with moving obstacles where they are
    predicted ``t_s`` after the observation (spacing: the config's ``exact_spacing_m``)."""
    origins = np.hstack([view_xy, np.full((len(view_xy), 1), config.robot.lidar_z_m)])
    spacing = config.surrogate.exact_spacing_m if spacing_m is None else spacing_m
    return exact_occlusion(origins, observation.target_box, observation.occluders_at(t_s),
                           spacing)  # fmt: skip


def trajectory_occlusion(
    rear: np.ndarray,  # [N, T + 1, 4] rear-axle states of N trajectories
    observation: PlanObservation,
    config: CroaConfig,
    spacing_m: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:  # [N], [N]
    """Exact occlusion along each trajectory, weighted like the surrogate's scans
    (``sum_k alpha_k occlusion(p_k)``), and at its final viewpoint."""
    s = config.surrogate
    alpha = np.asarray(s.scan_weights) / np.sum(s.scan_weights)
    per_scan = np.stack([
        view_occlusion(lidar_xy(rear[:, n], config.robot), observation, config, n * config.dt_s,
                       spacing_m)
        for n in s.scan_steps(config.horizon_steps)
    ], axis=1)  # fmt: skip
    return per_scan @ alpha, per_scan[:, -1]


def stop_plan(observation: PlanObservation, config: CroaConfig) -> tuple[np.ndarray, np.ndarray]:
    """Braking rollout: rear states [T + 1, 4] and controls [T, 2]."""
    robot = observation.robot
    u = stop_controls(robot.v_mps, robot.steer_rad, config.horizon_steps, config.robot, config.dt_s)
    return rollout(start_rear(observation, config), u, config.robot, config.dt_s), u


def previous_plan(
    observation: PlanObservation, state: PlannerState | None, config: CroaConfig
) -> tuple[np.ndarray, np.ndarray] | None:
    """The last safe trajectory's remaining controls (then braking) re-rolled from the current
    state, or None when there is none, the robot is off it by more than fallback_match_m, or
    the re-rolled speeds leave the robot's limits.

    The last check matters: the rest of a plan that brakes to rest, applied from a state that
    is already slower (the follower stopped early), drives the speed below 0; without a
    reverse gear that "plan" backs up, and a forward-only path follower given a goal behind it
    drives away from it (the collisions of the first loaded benchmark run, docs/croa.md)."""
    prev = state.last_safe if state is not None else None
    if prev is None:
        return None
    k = round((observation.stamp_ns - prev.stamp_ns) * 1e-9 / config.dt_s)
    if not 0 <= k < len(prev.controls):
        return None
    offset = np.linalg.norm(prev.states[k, :2] - observation.robot.as_array()[:2])
    if offset > config.fallback_match_m:
        return None
    rest = prev.controls[k:]
    pad = stop_controls(
        prev.states[-1, 3], rest[-1, 1], config.horizon_steps, config.robot, config.dt_s
    )
    u = np.vstack([rest, pad])[: config.horizon_steps]
    rear = rollout(start_rear(observation, config), u, config.robot, config.dt_s)
    r, tol = config.robot, 1e-6
    if np.any(rear[:, 3] < -r.max_reverse_speed_mps - tol) or np.any(
        rear[:, 3] > r.max_speed_mps + tol
    ):
        return None
    return rear, u


def trajectory(
    stamp_ns: int, rear: np.ndarray, controls: np.ndarray, config: CroaConfig
) -> Trajectory:
    """The API form: base_link states at stamp_ns + k dt."""
    times = config.dt_s * np.arange(len(rear))
    return Trajectory(int(stamp_ns), times, rear_to_base(rear, config.robot), controls.copy())


def build_result(
    method: str,
    status: PlanStatus,
    message: str,
    rear: np.ndarray,  # [T + 1, 4]
    controls: np.ndarray,  # [T, 2]
    observation: PlanObservation,
    state: PlannerState | None,
    config: CroaConfig,
    clearance_m: float,
    surrogate: float = float("nan"),
    history: tuple[float, ...] = (),
    timings: PlanTimings | None = None,
) -> tuple[PlanResult, PlannerState]:
    """PlanResult (viewpoint = lidar at the last state) and the next PlannerState."""
    traj = trajectory(observation.stamp_ns, rear, controls, config)
    view = lidar_xy(rear[-1], config.robot)
    arrive_s = (len(rear) - 1) * config.dt_s
    occ = float(view_occlusion(view[None], observation, config, arrive_s)[0])
    result = PlanResult(
        method,
        status,
        message,
        traj,
        view,
        occ,
        surrogate,
        clearance_m,
        history,
        timings or PlanTimings(0.0),
    )
    prev = state or PlannerState()
    safe = clearance_m >= config.min_clearance_m
    return result, replace(prev, last_safe=traj if safe else None, cycles=prev.cycles + 1)


def fallback(
    method: str,
    reason: str,
    observation: PlanObservation,
    state: PlannerState | None,
    config: CroaConfig,
    obstacles: ObstacleSet,
    timings: PlanTimings | None = None,
) -> tuple[PlanResult, PlannerState]:
    """FALLBACK_PREVIOUS if the last safe path still fits and is clear, else FALLBACK_STOP."""
    prev = previous_plan(observation, state, config)
    if prev is not None:
        clear = min_clearance(prev[0], obstacles, config)
        if clear >= config.min_clearance_m:
            msg = f"{reason}; following the rest of the last safe path"
            return build_result(
                method,
                PlanStatus.FALLBACK_PREVIOUS,
                msg,
                *prev,
                observation,
                state,
                config,
                clear,
                timings=timings,
            )
    rear, u = stop_plan(observation, config)
    clear = min_clearance(rear, obstacles, config)
    msg = f"{reason}; braking to a stop (stop path clearance {clear:.2f} m)"
    return build_result(
        method,
        PlanStatus.FALLBACK_STOP,
        msg,
        rear,
        u,
        observation,
        state,
        config,
        clear,
        timings=timings,
    )


def conclude(
    method: str,
    outcome: ScpOutcome,
    observation: PlanObservation,
    state: PlannerState | None,
    config: CroaConfig,
    obstacles: ObstacleSet,
    timings: PlanTimings,
    surrogate: float = float("nan"),
) -> tuple[PlanResult, PlannerState]:
    """Verifies the solver's last accepted iterate and builds the result, or falls back."""
    best = outcome.best
    if outcome.failure:
        LOG.warning("%s: solve failed: %s", method, outcome.failure)
        return fallback(
            method,
            f"solver failed ({outcome.failure})",
            observation,
            state,
            config,
            obstacles,
            timings,
        )
    clearance = min_clearance(best.rear_states, obstacles, config)
    if clearance < config.min_clearance_m:
        sd = obstacles.signed_distances(
            footprints(best.rear_states[1:], config.robot),
            np.inf,
            step_times(len(best.rear_states) - 1, config),
        )[0]
        step = int(np.argmin(np.min(sd, axis=1))) + 1
        reason = (
            f"no trajectory keeps {config.min_clearance_m:.2f} m clearance (best "
            f"{clearance:.2f} m at step {step})"
        )
        return fallback(method, reason, observation, state, config, obstacles, timings)
    status = PlanStatus.OK if outcome.converged else PlanStatus.ITERATION_LIMIT
    message = (
        f"{len(outcome.history) - 1} accepted of {outcome.num_solves} solves; "
        f"{'converged' if outcome.converged else 'iteration limit reached'}"
    )
    return build_result(
        method,
        status,
        message,
        best.rear_states,
        best.controls,
        observation,
        state,
        config,
        clearance,
        surrogate,
        outcome.history,
        timings,
    )
