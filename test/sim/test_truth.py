"""Occlusion ratio (hand-computed cases, solid-angle weights) and per-frame ground truth."""

from __future__ import annotations

import math

import numpy as np
import pytest

from geometry.boxes import points_in_box_mask
from geometry.transforms import invert_transform, pose_to_transform, wrap_angle
from sim.lidar import Lidar, LidarConfig
from sim.truth import (
    TruthError,
    boxes_to_frame,
    ground_truth,
    occlusion_ratio,
    visible_face_samples,
)
from sim.world import World

TARGET = (10.0, 0.0, 1.0, 2.0, 2.0, 2.0, 0.0)  # front face x = 9 faces a sensor at (0, 0, 1)
SENSOR = np.array([0.0, 0.0, 1.0])


@pytest.mark.parametrize(
    ("wall", "expected"),
    [
        # Wall at x = 5 covering y >= 0: rays toward front-face points with y > 0 cross it.
        ((5.0, 2.5, 2.5, 0.2, 5.0, 5.0, 0.0), 0.5),
        # Wall at x = 5 with its top at the sensor height: hides the lower half of the face.
        ((5.0, 0.0, 0.5, 0.2, 6.0, 1.0, 0.0), 0.5),
        ((5.0, 0.0, 2.5, 0.2, 6.0, 5.0, 0.0), 1.0),  # hides everything
        ((5.0, 8.0, 2.5, 0.2, 5.0, 5.0, 0.0), 0.0),  # off to the side: hides nothing
    ],
)
def test_occlusion_ratio_of_box_behind_wall_matches_hand_computation(
    make_scene, wall, expected
) -> None:
    # Only the front face is visible (sensor at mid-height, on the box axis), and the
    # face grid is symmetric about y = 0 and z = 1, so half the solid angle is exactly
    # half the samples' weight; 1e-9 covers float64 summation.
    scene = make_scene([("target", "car", TARGET), ("wall", "building", wall)], "target")
    ratio = occlusion_ratio(World(scene), SENSOR, np.array(TARGET), ignore_index=0)
    assert ratio == pytest.approx(expected, abs=1e-9)


def test_box_does_not_occlude_itself_when_ignored(make_scene) -> None:
    world = World(make_scene([("target", "car", TARGET)], "target"))
    assert (
        occlusion_ratio(world, np.array([0.0, 3.0, 2.5]), np.array(TARGET), ignore_index=0) == 0.0
    )


def test_box_not_in_world_is_occluded_by_coinciding_geometry_only_beyond_margin(make_scene) -> None:
    # A planner may ask about a box that is not an object (a detection): its own surface is
    # not geometry, so nothing blocks.
    world = World(make_scene([("ground", "ground", (0, 0, -0.5, 100, 100, 1.0, 0))]))
    assert occlusion_ratio(world, SENSOR, np.array(TARGET)) == 0.0


@pytest.mark.parametrize("distance_m", [5.0, 20.0])
def test_sample_weights_sum_to_the_solid_angle_of_the_face(distance_m) -> None:
    a, b = 2.0, 1.5  # face width (y) and height (z), seen head-on from its centre axis
    box = np.array([distance_m + 0.5, 0.0, 0.0, 1.0, a, b, 0.0])
    _, w, _ = visible_face_samples(np.zeros(3), box, 0.05)
    exact = 4.0 * math.atan(
        a * b / (2.0 * distance_m * math.sqrt(4 * distance_m**2 + a * a + b * b))
    )
    # Midpoint rule on a 40x30 grid: relative error O((h / d)^2) < 1e-3 here.
    assert w.sum() == pytest.approx(exact, rel=1e-3)


def test_visible_faces_are_those_facing_the_sensor() -> None:
    box = np.array([10.0, 0.0, 1.0, 2.0, 2.0, 2.0, 0.0])
    points, _, _ = visible_face_samples(np.array([0.0, -5.0, 5.0]), box, 0.5)
    # Sensor in front (-x), to the right (-y) and above: faces x=9, y=-1 and z=2 only.
    on_face = (
        np.isclose(points[:, 0], 9.0)
        | np.isclose(points[:, 1], -1.0)
        | np.isclose(points[:, 2], 2.0)
    )
    assert np.all(on_face)
    assert {
        bool(np.any(np.isclose(points[:, k], v))) for k, v in ((0, 9.0), (1, -1.0), (2, 2.0))
    } == {True}


@pytest.mark.parametrize(
    ("origin", "spacing", "message"),
    [
        (np.array([10.0, 0.0, 1.0]), 0.2, "inside box"),
        (SENSOR, 0.0, "spacing_m"),
        (np.array([np.nan, 0, 0]), 0.2, "NaN"),
    ],
)
def test_bad_occlusion_inputs_raise_truth_error(origin, spacing, message) -> None:
    with pytest.raises(TruthError, match=message):
        visible_face_samples(origin, np.array(TARGET), spacing)


def test_boxes_to_frame_inverts_with_the_inverse_transform() -> None:
    boxes = np.array([[5.0, 2.0, 0.8, 4.5, 1.9, 1.6, 0.3], [-3.0, 7.0, 1.5, 8.0, 2.5, 3.2, -2.0]])
    T = pose_to_transform(12.0, -4.0, 1.8, 0.7)
    back = boxes_to_frame(T, boxes_to_frame(invert_transform(T), boxes))
    np.testing.assert_allclose(back, boxes, atol=1e-12)  # two float64 rigid transforms


@pytest.fixture(scope="module")
def frame(occluded_scene, occluded_world):
    x, y, yaw = occluded_scene.ego_start
    T = pose_to_transform(x, y, 1.8, yaw)
    scan = Lidar(LidarConfig(beams=32, azimuth_resolution_deg=0.4)).scan(occluded_world, T)
    return T, scan, ground_truth(occluded_world, T, scan)


def test_ground_truth_boxes_are_the_vehicles_in_the_lidar_frame(occluded_scene, frame) -> None:
    T, _, truth = frame
    vehicles = occluded_scene.vehicle_indices()
    assert truth.names == tuple(occluded_scene.objects[i].name for i in vehicles)
    back, world_boxes = boxes_to_frame(T, truth.boxes), occluded_scene.boxes()[vehicles]
    # float32 storage of coordinates up to ~100 m: 1e-4 m / rad.
    np.testing.assert_allclose(back[:, :6], world_boxes[:, :6], atol=1e-4)
    np.testing.assert_allclose(wrap_angle(back[:, 6] - world_boxes[:, 6]), 0.0, atol=1e-4)
    assert truth.names[truth.target_index] == "target"


def test_num_points_counts_scan_points_on_each_vehicle(frame) -> None:
    _, scan, truth = frame
    assert truth.num_points.sum() == np.sum(truth.point_object >= 0)
    for k in np.flatnonzero(truth.num_points)[:5]:
        pts = scan.points[truth.point_object == k]
        # Noise-free scan: every point on a vehicle lies on its box (1 cm: float32 rays).
        assert np.all(points_in_box_mask(pts, truth.boxes[k], margin_m=0.01))
    assert np.array_equal(truth.visible, truth.num_points >= 5)


def test_target_occlusion_in_ground_truth_matches_the_generator(occluded_scene, frame) -> None:
    _, _, truth = frame
    assert truth.occlusion[truth.target_index] == pytest.approx(
        occluded_scene.generator["target_occlusion_start"], abs=1e-6
    )  # same rays, same definition; float32 storage
    assert np.all((truth.occlusion >= 0) & (truth.occlusion <= 1))


def test_ground_truth_rejects_nan_pose(occluded_world, frame) -> None:
    T, scan, _ = frame
    bad = T.copy()
    bad[0, 3] = np.nan
    with pytest.raises(TruthError, match="T_world_lidar"):
        ground_truth(occluded_world, bad, scan)
