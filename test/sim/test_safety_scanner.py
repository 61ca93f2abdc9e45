"""sim/safety_scanner.py: the planar safety scanner's returns and its protective field."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim.safety_scanner import (
    SafetyScanner,
    SafetyScannerConfig,
    SafetyScannerError,
    arc_poses,
    box_edges,
    field_poses,
    in_field,
    stopping_distance_m,
)

CAR = [6.0, 0.0, 0.75, 4.0, 2.0, 1.5, 0.0]  # 4 x 2 m, ground to 1.5 m, its near face at x = 4


def test_box_edges_are_the_footprint_outline() -> None:
    edges = box_edges(np.array([[0.0, 0.0, 1.0, 4.0, 2.0, 2.0, math.pi / 2]]))
    corners = np.round(edges[:, 0], 9)
    assert sorted(map(tuple, corners)) == sorted({(1.0, 2.0), (-1.0, 2.0), (-1.0, -2.0),
                                                  (1.0, -2.0)})  # fmt: skip
    assert np.allclose(edges[:, 1], np.roll(edges[:, 0], -1, axis=0))


def test_a_box_ahead_returns_its_near_face_only() -> None:
    scanner = SafetyScanner(SafetyScannerConfig(resolution_deg=1.0))
    wall = [9.0, 0.0, 0.75, 1.0, 6.0, 1.5, 0.0]  # behind the car, wider than it
    points = scanner.scan(np.zeros(2), 0.0, np.array([CAR, wall]))
    near, far = points[np.isclose(points[:, 0], 4.0)], points[np.isclose(points[:, 0], 8.5)]
    assert len(near) > 0 and len(far) > 0 and len(near) + len(far) == len(points)
    assert np.all(np.abs(near[:, 1]) <= 1.0 + 1e-9)  # the car's near face
    # the wall only outside the car's shadow (|y| / x > 1 / 4 at the wall's face)
    assert np.all(np.abs(far[:, 1]) / 8.5 > 1.0 / 4.0)


def test_boxes_the_scan_plane_misses_and_far_boxes_give_no_returns() -> None:
    scanner = SafetyScanner(SafetyScannerConfig(height_m=0.4, max_range_m=5.0))
    overhead = [6.0, 0.0, 2.5, 4.0, 2.0, 1.0, 0.0]  # 2-3 m up (a crown, a sign)
    far = [30.0, 0.0, 0.75, 4.0, 2.0, 1.5, 0.0]
    assert len(scanner.scan(np.zeros(2), 0.0, np.array([overhead, far]))) == 0
    assert len(scanner.scan(np.zeros(2), 0.0, np.zeros((0, 7)))) == 0
    # on ground 2 m higher the plane is at 2.4 m and cuts the overhead box, not the car
    hits = scanner.scan(np.zeros(2), 2.0, np.array([overhead, CAR]))
    assert len(hits) > 0 and np.allclose(np.abs(hits[np.abs(hits[:, 1]) < 0.5, 0]), 4.0)


@pytest.mark.parametrize(
    "bad", [{"height_m": 0.0}, {"resolution_deg": 10.0}, {"period_s": float("nan")},
            {"margin_m": -0.1}, {"reaction_s": "0.1"}],
)  # fmt: skip
def test_bad_settings_are_refused(bad: dict) -> None:
    with pytest.raises(SafetyScannerError):
        SafetyScannerConfig(**bad)


def test_bad_inputs_are_refused() -> None:
    scanner = SafetyScanner()
    with pytest.raises(SafetyScannerError, match="not finite"):
        scanner.scan(np.array([np.nan, 0.0]), 0.0, np.array([CAR]))
    with pytest.raises(SafetyScannerError, match=r"\[K, 7\]"):
        scanner.scan(np.zeros(2), 0.0, np.zeros((2, 5)))
    with pytest.raises(SafetyScannerError, match="decel"):
        stopping_distance_m(1.0, 0.0, SafetyScannerConfig())


def test_stopping_distance_is_reaction_braking_and_margin() -> None:
    c = SafetyScannerConfig(reaction_s=0.2, margin_m=0.1)
    assert stopping_distance_m(2.0, 2.5, c) == pytest.approx(0.4 + 0.8 + 0.1)
    assert stopping_distance_m(-2.0, 2.5, c) == stopping_distance_m(2.0, 2.5, c)
    assert stopping_distance_m(0.0, 2.5, c) == pytest.approx(0.1)


def test_field_poses_are_the_plan_ahead_within_the_distance() -> None:
    plan = np.column_stack([np.arange(0.0, 10.0, 0.5), np.zeros(20), np.zeros(20)])
    here = np.array([2.1, 0.05, 0.0])
    poses = field_poses(plan, here, 1.2)
    assert np.array_equal(poses[0], here)
    assert poses[1:, 0].tolist() == [2.0, 2.5, 3.0]  # from the nearest plan pose, 1.2 m on
    assert np.array_equal(field_poses(np.zeros((0, 3)), here, 1.0), here[None])


def test_arc_poses_follow_the_held_steering() -> None:
    here = np.array([1.0, 2.0, 0.3])
    straight = arc_poses(here, 2.0, 0.0, 2.7, 3.0)
    assert np.allclose(straight[-1, :2], here[:2] + 3.0 * np.array([math.cos(0.3), math.sin(0.3)]))
    assert np.allclose(straight[:, 2], 0.3)
    turning = arc_poses(here, 2.0, 0.4, 2.7, 3.0)
    assert turning[-1, 2] == pytest.approx(0.3 + math.tan(0.4) / 2.7 * 3.0)
    assert np.allclose(turning[0], here)
    back = arc_poses(here, -1.0, 0.0, 2.7, 2.0)
    assert np.allclose(back[-1, :2], here[:2] - 2.0 * np.array([math.cos(0.3), math.sin(0.3)]))


def test_in_field_is_the_grown_footprint_at_any_pose() -> None:
    poses = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    points = np.array([[3.34, 0.0], [3.36, 0.0], [0.5, 1.04], [0.5, 1.06], [-2.34, 0.0]])
    inside = in_field(points, poses, 4.5, 1.9, 0.1)  # x to 1 + 2.25 + 0.1, y to 0.95 + 0.1
    assert inside.tolist() == [True, False, True, False, True]
    turned = in_field(np.array([[0.0, 2.3]]), np.array([[0.0, 0.0, math.pi / 2]]), 4.5, 1.9, 0.1)
    assert turned.tolist() == [True]
