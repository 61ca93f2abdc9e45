"""What ``robomr bench croa`` records when an episode first collides (bench/croa_sim.py).

A collision is scored on ground truth (the robot's footprint and every true obstacle box); this
module says, at the first step with a negative clearance, what was hit and what the planner
knew about it, so that a collision can be attributed without a replay:

- ``object``, ``kind``, ``speed_mps``, ``in_map``: the true object nearest the footprint (a
  static map box, a parked vehicle or a moving one) and whether the robot's map holds it.
- ``perceived_gap_m``: the least signed distance from that object's true footprint to the
  obstacles of the planner's last observation, moving ones where they were predicted at the
  contact time (<= 0: the planner had an obstacle there; large: it did not know).
- ``tracks``: the tracks within 3 m of the object at the contact (box centre, speed, score,
  hits, age since seen): whether the detector saw it and how the tracker read it.
- ``plan_index``, ``since_plan_s``, ``plan_clearance_m``, ``follower_error_m``: which plan was
  being driven, for how long, the clearance that plan promised, and how far the robot was from
  the plan's pose at the same time (a follower that does not keep to its plan shows here).

Ground truth enters only this record, never the planner.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from planning.croa.polygons import rectangle_vertices, signed_distance
from planning.croa.robot import RobotModel
from planning.croa.types import PlanObservation

NEAR_TRACK_M = 3.0  # tracks within this of the object's centre are listed


def robot_footprint(pose: np.ndarray, robot: RobotModel) -> np.ndarray:  # [3] base -> [4, 2]
    """The footprint corners of the robot at base_link pose (x, y, yaw): base_link is the
    footprint centre (docs/croa.md, Frames and robot)."""
    return rectangle_vertices(pose[:2], np.array(pose[2]), robot.length_m, robot.width_m)


def _box_vertices(box: np.ndarray) -> np.ndarray:
    return rectangle_vertices(box[:2], np.array(box[6]), box[3], box[4])


def describe_contact(
    pose: np.ndarray,  # [3] robot base_link (x, y, yaw), map
    robot: RobotModel,
    truth: list[tuple[str, str, float, np.ndarray]],  # name, kind, speed, box [7] now
    map_names: set[str],
    observation: PlanObservation | None,
    since_plan_s: float,
    tracks: list[dict[str, Any]],
) -> dict[str, Any]:
    """The contact record (module docstring) for the robot at ``pose``."""
    foot = robot_footprint(pose, robot)
    dists = [float(signed_distance(foot, _box_vertices(b))[0]) for _, _, _, b in truth]
    k = int(np.argmin(dists))
    name, kind, speed, box = truth[k]
    gap = math.inf
    if observation is not None and observation.obstacles:
        verts = _box_vertices(box)
        gap = min(float(signed_distance(verts, o.at_time(since_plan_s).vertices)[0])
                  for o in observation.obstacles)  # fmt: skip
    near = [t for t in tracks if math.hypot(t["x"] - box[0], t["y"] - box[1]) <= NEAR_TRACK_M]
    return {"object": name, "kind": kind, "speed_mps": float(speed), "in_map": name in map_names,
            "depth_m": round(-dists[k], 3), "box": [round(float(v), 3) for v in box],
            "pose": [round(float(v), 3) for v in pose],
            "perceived_gap_m": round(gap, 3) if math.isfinite(gap) else None,
            "since_plan_s": round(since_plan_s, 2), "tracks": near}  # fmt: skip
