"""sim/return_motion.py: velocities of the safety scanner's returns and the moving-return stop."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim.return_motion import ReturnMotion, ReturnMotionConfig, moving_in_field, segments
from sim.safety_scanner import SafetyScanner, SafetyScannerError

SCANNER = SafetyScanner()  # 0.5 deg, 20 m, as the benchmark's robot carries


def _box(x: float, y: float, yaw: float = 0.0, length: float = 4.5, width: float = 1.8):
    return [x, y, 0.75, length, width, 1.5, yaw]


def _velocities(boxes_then: list, boxes_now: list, origin=(0.0, 0.0), moved=(0.0, 0.0),
                dt: float = 0.1) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Two scans ``dt`` apart (the scanner moved by ``moved``); the second's returns and
    velocities."""
    motion = ReturnMotion()
    motion.update(0.0, SCANNER.scan(np.array(origin), 0.0, np.array(boxes_then)))
    now = SCANNER.scan(np.array(origin) + moved, 0.0, np.array(boxes_now))
    return now, motion.update(dt, now)


def test_segments_split_at_gaps_and_join_across_the_scan_start() -> None:
    p = np.array([[0.0, 0], [0.1, 0], [0.2, 0], [2.0, 0], [2.1, 0], [5.0, 0], [-0.1, 0]])
    assert segments(p, 0.5).tolist() == [0, 0, 0, 1, 1, 2, 0]  # the last run joins the first
    assert segments(np.zeros((0, 2)), 0.5).tolist() == []


def test_a_car_driving_past_at_a_corner_view_gets_its_velocity() -> None:
    """Seen from the side and front (two faces), a car at 8.6 m/s measures its speed and
    heading roughly (the centroid of the visible faces shifts as the view turns: here 7.3 m/s,
    0.11 rad off); a parked car beside it measures nothing."""
    parked = _box(8.0, 6.0)
    points, v = _velocities([_box(-6.0, 4.0), parked], [_box(-6.0 + 0.86, 4.0), parked])
    moving = np.any(v != 0, axis=1)
    assert moving.any()
    speed, heading = np.hypot(*v[moving].T), np.arctan2(v[moving, 1], v[moving, 0])
    assert np.all((speed > 0.75 * 8.6) & (speed < 1.1 * 8.6)) and np.all(np.abs(heading) < 0.15)
    assert not moving[np.hypot(points[:, 0] - 8.0, points[:, 1] - 6.0) < 3.0].any()


def test_static_faces_stay_static_while_the_robot_drives() -> None:
    """Parked cars and a long wall seen at grazing angles from a scanner moving at 2.5 m/s:
    their visible parts change from scan to scan, none moves (lone returns have no shape, a
    straight face shows no motion along itself)."""
    world = [_box(x, -4.0) for x in (4.0, 9.5, 15.0)] + [[10.0, 7.0, 1.0, 20.0, 0.3, 2.0, 0.0]]
    _, v = _velocities(world, world, moved=(0.25, 0.0))
    assert not np.any(v)


def test_a_face_sliding_along_itself_shows_only_its_normal_motion() -> None:
    wall = [0.0, 5.0, 1.0, 8.0, 0.2, 2.0, 0.0]  # a long thin face facing the scanner (-y side)
    _, along = _velocities([wall], [[0.5, 5.0, 1.0, 8.0, 0.2, 2.0, 0.0]])  # 5 m/s along x
    assert not np.any(along)
    _, towards = _velocities([wall], [[0.0, 4.5, 1.0, 8.0, 0.2, 2.0, 0.0]])  # 5 m/s towards
    assert np.allclose(towards[np.any(towards != 0, axis=1)], [0.0, -5.0], atol=0.3)


def test_scans_too_far_apart_are_not_compared() -> None:
    _, v = _velocities([_box(-6.0, 4.0)], [_box(-6.0 + 0.86, 4.0)], dt=1.0)
    assert not np.any(v)


def test_bad_input_is_refused() -> None:
    motion = ReturnMotion()
    with pytest.raises(SafetyScannerError, match="finite"):
        motion.update(0.0, np.array([[np.nan, 0.0]]))
    motion.update(1.0, np.zeros((0, 2)))
    with pytest.raises(SafetyScannerError, match="before"):
        motion.update(0.5, np.zeros((0, 2)))
    for bad in ({"moving_speed_mps": 0.0}, {"min_points": 1}, {"predict_s": math.inf},
                {"residual_m": "0.1"}):  # fmt: skip
        with pytest.raises(SafetyScannerError):
            ReturnMotionConfig(**bad)


def test_moving_returns_predicted_into_the_field_call_for_a_stop() -> None:
    """A return 3 m beside the footprint's path closing at 8 m/s enters it within 0.5 s; one
    moving away, a static one, or a horizon too short to reach it does not."""
    poses = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]])  # the sweep along +x
    point = np.array([[0.5, 3.0]])
    size = (1.0, 0.8, 0.1)
    assert moving_in_field(point, np.array([[0.0, -8.0]]), poses, *size, 0.5, 0.1)
    assert not moving_in_field(point, np.array([[0.0, 8.0]]), poses, *size, 0.5, 0.1)
    assert not moving_in_field(point, np.zeros((1, 2)), poses, *size, 0.5, 0.1)
    assert not moving_in_field(point, np.array([[0.0, -8.0]]), poses, *size, 0.2, 0.1)
    with pytest.raises(SafetyScannerError, match="velocities"):
        moving_in_field(point, np.zeros((2, 2)), poses, *size, 0.5, 0.1)
