"""The test scene generator is seeded and keeps its promises."""

from __future__ import annotations

import numpy as np
import pytest

from planning.croa.config import CroaConfig
from planning.croa.polygons import rectangle_vertices, signed_distance
from planning.croa.scenes import SceneError, random_scene


def test_same_seed_same_scene() -> None:
    a, b = random_scene(7), random_scene(7)
    assert np.array_equal(a.obstacle_boxes, b.obstacle_boxes)
    assert np.array_equal(a.target_box, b.target_box) and a.robot == b.robot


def test_boxes_do_not_overlap_and_the_robot_starts_clear(scenes) -> None:
    cfg = CroaConfig()
    for scene in scenes.values():
        boxes = np.vstack([scene.obstacle_boxes, scene.target_box])
        polys = np.stack([rectangle_vertices(b[:2], np.array(b[6]), b[3], b[4]) for b in boxes])
        sd, _ = signed_distance(polys[:, None], polys[None])
        assert np.all(sd[~np.eye(len(boxes), dtype=bool)] > 0.0)
        r = scene.robot
        foot = rectangle_vertices(np.array([r.x_m, r.y_m]), np.array(r.yaw_rad),
                                  cfg.robot.length_m, cfg.robot.width_m)  # fmt: skip
        assert np.min(signed_distance(foot[None], polys)[0]) >= cfg.min_clearance_m


def test_impossible_settings_raise() -> None:
    with pytest.raises(SceneError, match="seed 3"):
        random_scene(3, num_occluders=40, max_attempts=2)
