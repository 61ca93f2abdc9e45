"""Moving vehicles: free flow matches Scene.at_time; a robot in the lane stops them."""

from __future__ import annotations

import numpy as np
import pytest

from sim import generate_scene
from sim.placement import footprint
from sim.traffic import Traffic, TrafficError


@pytest.fixture(scope="module")
def scene():
    s = generate_scene("urban-clutter")
    assert any(o.speed_mps != 0 for o in s.objects)
    return s


def test_free_flow_matches_at_time(scene) -> None:
    traffic = Traffic(scene)
    for _ in range(40):
        traffic.step(0.05, [])
    moved, expected = traffic.scene(), scene.at_time(2.0)
    for a, b in zip(moved.objects, expected.objects, strict=True):
        # 40 steps of 0.05 s vs one 2 s jump: float rounding only
        np.testing.assert_allclose(a.box, b.box, atol=1e-9)


def test_a_robot_ahead_in_the_lane_stops_the_vehicle_and_it_resumes(scene) -> None:
    traffic = Traffic(scene, gap_m=6.0)
    i = next(k for k, o in enumerate(scene.objects) if o.speed_mps != 0)
    box = np.array(scene.objects[i].box)
    heading = np.array([np.cos(box[6]), np.sin(box[6])])
    robot = box.copy()
    robot[:2] += heading * (0.5 * box[3] + 4.0 + 0.5 * 4.5)  # rear bumper 4 m ahead
    robot[3:5] = (4.5, 1.9)
    blocker = [footprint(robot)]
    for _ in range(20):
        traffic.step(0.05, blocker)
    assert traffic.waiting[i]
    np.testing.assert_array_equal(traffic.scene().objects[i].box, scene.objects[i].box)
    traffic.step(0.05, [])  # robot gone: drives on
    assert not traffic.waiting[i] and traffic.scene().objects[i].box != scene.objects[i].box


def test_a_robot_standing_across_the_lane_stops_the_vehicle(scene) -> None:
    """A robot across the lane (crossing it) has its corners on both sides of the corridor,
    its body in it: the vehicle waits (it drove into the robot's side when only the corners
    were tested: crossing-traffic 5 in the CROA bench)."""
    traffic = Traffic(scene, gap_m=6.0)
    i = next(k for k, o in enumerate(scene.objects) if o.speed_mps != 0)
    box = np.array(scene.objects[i].box)
    heading = np.array([np.cos(box[6]), np.sin(box[6])])
    robot = box.copy()
    robot[:2] += heading * (0.5 * box[3] + 3.0)  # 3 m ahead of the front bumper
    robot[3:5] = (4.5, 1.9)
    robot[6] = box[6] + 0.5 * np.pi  # across the lane: corners 2.25 m to either side
    traffic.step(0.05, [footprint(robot)])
    assert traffic.waiting[i]


def test_a_robot_in_another_lane_does_not_stop_it(scene) -> None:
    traffic = Traffic(scene)
    i = next(k for k, o in enumerate(scene.objects) if o.speed_mps != 0)
    box = np.array(scene.objects[i].box)
    side = box.copy()
    side[1] += 3.5  # one lane over
    traffic.step(0.05, [footprint(side)])
    assert not traffic.waiting[i]


@pytest.mark.parametrize(("kwargs", "dt"), [({"gap_m": 0.0}, 0.1), ({}, 0.0), ({}, np.nan)])
def test_bad_settings_are_rejected(scene, kwargs: dict, dt: float) -> None:
    with pytest.raises(TrafficError):
        Traffic(scene, **kwargs).step(dt, [])
