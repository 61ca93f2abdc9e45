"""Candidate viewpoints (CROA, arXiv 2412.18453): the sampling stage of viewpoint selection.
CROA turns the best-scored candidate into the initial trajectory that the CCP refines; the
straight and greedy baselines pick among candidates directly.

Candidates lie on rings around the target centre at radius ``R_target + W_robot / 2 + gap``
(R_target: half the target's footprint diagonal) for each configured gap, ``ring_angles``
per ring starting at the target's heading, and on rings around the robot's lidar within the
distance one horizon covers. A candidate becomes the pure-pursuit rollout that drives the
lidar toward it (kinematics.pursuit_controls); a rollout's score is the solver's merit with
the exact occlusion (planning/croa/occlusion.py) at its final lidar position in place of the
surrogate:

    w_occ occlusion(view) + w_range |view - target| + w_a sum a_t^2 + w_d sum steer_t^2
    + rho sum_t max(0, d_min + margin / 2 - sd_t)

(CROA adds its guide term, planner.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from planning.croa.collision import ObstacleSet, footprints
from planning.croa.config import CroaConfig
from planning.croa.kinematics import lidar_xy, pursuit_controls, rollout
from planning.croa.safety import start_rear, view_occlusion
from planning.croa.types import PlanObservation


def ring_candidates(target_box: np.ndarray, config: CroaConfig) -> np.ndarray:  # [N, 2]
    """Lidar positions on the rings around the target (module docstring)."""
    vp = config.viewpoints
    base = 0.5 * np.hypot(target_box[3], target_box[4]) + 0.5 * config.robot.width_m
    angles = target_box[6] + 2.0 * np.pi * np.arange(vp.ring_angles) / vp.ring_angles
    ring = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    return np.vstack([target_box[:2] + (base + gap) * ring for gap in vp.ring_gaps_m])


def reach_candidates(here_xy: np.ndarray, reach_m: float, config: CroaConfig) -> np.ndarray:
    """Lidar positions [N, 2] on rings of radius reach/3, 2 reach/3 and reach around here_xy
    (``ring_angles`` per ring): viewpoints one horizon can get to."""
    n = config.viewpoints.ring_angles
    angles = 2.0 * np.pi * np.arange(n) / n
    ring = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    return np.vstack([here_xy + reach_m * f * ring for f in (1.0 / 3.0, 2.0 / 3.0, 1.0)])


def viewpoint_clearance(
    view_xy: np.ndarray,  # [N, 2] lidar positions
    headings_rad: np.ndarray,  # [N]
    obstacles: ObstacleSet,
    config: CroaConfig,
    exact_below_m: float = np.inf,
) -> np.ndarray:  # [N]
    """Least distance of the footprint parked with its lidar at each point, facing heading;
    exact up to ``exact_below_m``, above it a lower bound that is still above it
    (``ObstacleSet.signed_distances``: enough for a caller that compares with a threshold no
    larger than it, and much cheaper)."""
    if len(obstacles) == 0:
        return np.full(len(view_xy), np.inf)
    offset = config.robot.rear_to_base_m + config.robot.lidar_x_m
    heading = np.stack([np.cos(headings_rad), np.sin(headings_rad)], axis=1)
    rear = np.hstack([view_xy - offset * heading, headings_rad[:, None]])
    # parked there at the end of a horizon: moving obstacles where they will be by then
    arrive = np.full(len(rear), config.horizon_steps * config.dt_s)
    sd, _ = obstacles.signed_distances(footprints(rear, config.robot), exact_below_m, arrive)
    return sd.min(axis=1)


def best_viewpoint(
    observation: PlanObservation, obstacles: ObstacleSet, config: CroaConfig
) -> np.ndarray | None:  # [2] lidar position
    """Next-best view: among the candidates on the target's and the robot's rings whose
    footprint, parked there facing away from the robot, keeps d_min + margin, the one with the
    least ``exact occlusion + distance_weight * travel_m``; None if none is free."""
    best = scored_best_viewpoint(observation, obstacles, config)
    return None if best is None else best[0]


def scored_best_viewpoint(
    observation: PlanObservation, obstacles: ObstacleSet, config: CroaConfig
) -> tuple[np.ndarray, float] | None:  # [2] lidar position and its exact occlusion
    """``best_viewpoint`` and the exact occlusion there."""
    c = config
    here = lidar_xy(start_rear(observation, c), c.robot)
    reach = c.robot.max_speed_mps * c.horizon_steps * c.dt_s
    views = np.vstack([ring_candidates(observation.target_box, c),
                       reach_candidates(here, reach, c)])  # fmt: skip
    headings = np.arctan2(views[:, 1] - here[1], views[:, 0] - here[0])
    need = c.min_clearance_m + c.plan_margin_m
    views = views[viewpoint_clearance(views, headings, obstacles, c, need) >= need]
    if len(views) == 0:
        return None
    occ = view_occlusion(views, observation, c, c.horizon_steps * c.dt_s)
    k = int(np.argmin(occ + c.viewpoints.distance_weight * travel_m(views, observation, c)))
    return views[k], float(occ[k])


def travel_m(views: np.ndarray, observation: PlanObservation, config: CroaConfig) -> np.ndarray:
    """A car's travel to each lidar position [N, 2], roughly: the distance plus the minimum
    turning radius times the heading change the straight line to it needs (a view behind the
    robot costs a turn, or a reversal when the robot may reverse)."""
    r = config.robot
    here = lidar_xy(start_rear(observation, config), r)
    rel = views - here
    turn = np.abs(
        (np.arctan2(rel[:, 1], rel[:, 0]) - observation.robot.yaw_rad + np.pi) % (2 * np.pi) - np.pi
    )
    if r.max_reverse_speed_mps > 0.0:
        turn = np.minimum(turn, np.pi - turn)
    radius = r.wheelbase_m / np.tan(r.max_steer_rad)
    return np.linalg.norm(rel, axis=1) + radius * turn


@dataclass(frozen=True, eq=False)
class ScoredRollouts:
    """Rollouts of control sequences from the current state and their scores.

    Attributes:
        controls: [N, T, 2]. rear: [N, T + 1, 4]. view_xy: [N, 2] final lidar positions.
        occlusion: [N] exact occlusion there. clearance: [N] least footprint distance of steps
        1..T (m), exact below d_min + margin / 2 (a lower bound above). score: [N] (docstring).
    """

    controls: np.ndarray
    rear: np.ndarray
    view_xy: np.ndarray
    occlusion: np.ndarray
    clearance: np.ndarray
    score: np.ndarray


def score_controls(
    controls: np.ndarray,  # [N, T, 2]
    observation: PlanObservation,
    obstacles: ObstacleSet,
    config: CroaConfig,
    goal_xy: np.ndarray | None = None,  # [2] lidar goal: score goal distance, not occlusion
) -> ScoredRollouts:
    """Rolls each control sequence out from the current state and scores it (docstring); with
    ``goal_xy`` the occlusion and range terms give way to ``w_goal |view - goal|^2`` (the goal
    mode's merit) and ``occlusion`` is NaN."""
    c, w = config, config.weights
    rear = rollout(start_rear(observation, c), controls, c.robot, c.dt_s)  # [N, T + 1, 4]
    n, steps = controls.shape[:2]
    need = c.min_clearance_m + 0.5 * c.plan_margin_m
    if len(obstacles):
        polys = footprints(rear[:, 1:].reshape(-1, 4), c.robot)
        times = np.tile(c.dt_s * np.arange(1, steps + 1), n)
        sd = obstacles.signed_distances(polys, need, times)[0].reshape(n, steps, -1)
    else:
        sd = np.full((n, steps, 1), np.inf)
    view = lidar_xy(rear[:, -1], c.robot)
    u = controls
    score = (
        w.collision_penalty * np.maximum(0.0, need - sd).sum(axis=(1, 2))
        + w.accel * np.sum(u[..., 0] ** 2, axis=1)
        + w.steer * np.sum(u[..., 1] ** 2, axis=1)
    )
    if goal_xy is None:
        occ = view_occlusion(view, observation, c, steps * c.dt_s)
        score += w.occlusion * occ
        score += w.view_range * np.linalg.norm(view - observation.target_box[:2], axis=1)
    else:
        occ = np.full(n, np.nan)
        score += w.goal * np.sum((view - goal_xy) ** 2, axis=1)
    return ScoredRollouts(controls, rear, view, occ, sd.min(axis=(1, 2)), score)


def pursuit_candidates(
    goals: np.ndarray, observation: PlanObservation, config: CroaConfig
) -> np.ndarray:  # [N, T, 2]
    """Pure-pursuit controls that drive the lidar toward each goal [N, 2] and stop there."""
    c = config
    return pursuit_controls(
        start_rear(observation, c),
        observation.robot.steer_rad,
        goals,
        c.horizon_steps,
        c.robot,
        c.dt_s,
    )
