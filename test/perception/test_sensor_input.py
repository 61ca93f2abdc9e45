"""Sensor-agnostic input: mounting transforms, layouts, self-return cropping, box round trips."""

from __future__ import annotations

import math

import numpy as np
import pytest

from perception.sensor_input import (
    LAYOUTS,
    SensorSetup,
    SensorSetupError,
    boxes_to_model_frame,
    boxes_to_sensor_frame,
    infer_layout,
    to_model_frame,
)
from sim.variation import sensor_pose_on_robot

SETUPS = [
    SensorSetup(),
    SensorSetup(height_m=0.9, pitch_rad=0.04, roll_rad=-0.02),
    SensorSetup(height_m=1.84, yaw_rad=-math.pi / 2, layout="nuscenes"),
]


@pytest.mark.parametrize("setup", SETUPS)
def test_ground_below_the_lidar_lands_at_zero_height(setup) -> None:
    # A flat ground plane as the tilted lidar sees it: model-frame points at z = 0.
    rng = np.random.default_rng(0)
    ground = np.column_stack([rng.uniform(-30, 30, (500, 2)), np.zeros(500)])
    T = np.linalg.inv(setup.T_model_sensor)
    in_lidar = ground @ T[:3, :3].T + T[:3, 3]
    out = to_model_frame(np.column_stack([in_lidar, np.ones(500)]), setup, False)
    far = np.linalg.norm(in_lidar, axis=1) >= setup.min_range_m
    np.testing.assert_allclose(out[:, 2], 0.0, atol=1e-4)  # float32 output at <= 43 m
    assert len(out) == far.sum()


@pytest.mark.parametrize("setup", SETUPS)
def test_boxes_go_to_the_model_frame_and_back(setup) -> None:
    boxes = np.array([[8.0, -3.0, 0.1, 4.5, 1.8, 1.5, 0.7], [-20, 12, -1.0, 10, 2.5, 3.2, -2.9]])
    back = boxes_to_sensor_frame(boxes_to_model_frame(boxes, setup), setup)
    np.testing.assert_allclose(back[:, :6], boxes[:, :6], atol=1e-9)
    # Yaw is the box axis projected on each frame's xy plane: with a tilted lidar the round
    # trip is exact only to second order in the tilt (pitch x roll ~ 1e-3 rad here).
    yaw_error = np.angle(np.exp(1j * (back[:, 6] - boxes[:, 6])))
    np.testing.assert_allclose(yaw_error, 0, atol=2e-3)


def test_a_nuscenes_cloud_is_turned_to_face_x_forward() -> None:
    setup = SensorSetup(height_m=1.84, yaw_rad=-math.pi / 2)
    ahead = np.array([[0.0, 10.0, 0.0]])  # nuScenes LIDAR_TOP: y forward
    np.testing.assert_allclose(to_model_frame(ahead, setup, False), [[10.0, 0.0, 1.84]], atol=1e-5)


@pytest.mark.parametrize(
    ("layout", "raw", "expected"),
    [("kitti", 0.4, 0.4), ("nuscenes", 102.0, 0.4), ("ouster", 26214.0, 0.4)],
)
def test_intensity_is_normalised_per_layout(layout, raw, expected) -> None:
    cloud = np.array([[5.0, 0.0, 0.0, raw]], dtype=np.float32)
    out = to_model_frame(cloud, SensorSetup(layout=layout), True)
    assert out[0, 3] == pytest.approx(expected, abs=1e-3)  # 1/255 and 1/65535 steps
    assert set(LAYOUTS) >= {"kitti", "nuscenes", "ouster", "sim"}


@pytest.mark.parametrize(("peak", "expected"), [(0.9, "sim"), (200.0, "velodyne"), (4e4, "ouster")])
def test_auto_layout_is_inferred_from_the_intensity_range(peak, expected) -> None:
    assert infer_layout(np.array([0.0, peak, np.nan])) == expected


def test_self_returns_and_bad_rows_are_dropped() -> None:
    cloud = np.array(
        [[1.0, 0.5, -0.3, 0], [np.nan, 5, 0, 0], [5.0, 0.0, np.inf, 0], [6.0, 1.0, -1.5, 0]]
    )
    out = to_model_frame(cloud, SensorSetup(min_range_m=2.5), False)
    np.testing.assert_allclose(out, [[6.0, 1.0, 0.3]], atol=1e-6)


def test_from_transform_inverts_the_simulator_mounting() -> None:
    T = sensor_pose_on_robot(1.6, 0.03, -0.02)
    setup = SensorSetup.from_transform(T)
    np.testing.assert_allclose(setup.T_model_sensor, T, atol=1e-12)


@pytest.mark.parametrize(
    "kwargs",
    [{"height_m": -1.0}, {"pitch_rad": 1.0}, {"layout": "lidarx"}, {"min_range_m": math.inf}],
)
def test_bad_setups_name_the_field(kwargs) -> None:
    with pytest.raises(SensorSetupError, match=next(iter(kwargs))):
        SensorSetup(**kwargs)


def test_kept_rows_are_exactly_the_rows_to_model_frame_keeps() -> None:
    """The training cache pairs per-point columns (ring, owner) with to_model_frame's output
    through kept_rows: points on the minimum-range sphere, where float32 and float64 tests
    disagree, must be kept or dropped by both alike (a deskewed frame crashed the cache)."""
    from perception.sensor_input import kept_rows

    rng = np.random.default_rng(0)
    direction = rng.normal(size=(20000, 3))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    radius = 2.5 + rng.uniform(-1e-6, 1e-6, (20000, 1))
    cloud = np.column_stack([direction * radius, rng.uniform(0, 1, 20000)]).astype(np.float32)
    cloud[::97, 0] = np.nan
    setup = SensorSetup(1.8, min_range_m=2.5)
    rows = kept_rows(cloud, setup)
    assert 0 < len(rows) < len(cloud)
    np.testing.assert_array_equal(
        to_model_frame(cloud[rows], setup, True), to_model_frame(cloud, setup, True)
    )


def test_points_move_with_the_same_float32_operations_as_a_matrix_product() -> None:
    from perception.sensor_input import _moved

    rng = np.random.default_rng(0)
    for yaw in (0.0, 0.7, -2.9):
        T = SensorSetup(1.7, 0.05, -0.03, yaw).T_model_sensor.astype(np.float32)
        xyz = (rng.normal(0.0, 20.0, (5000, 3))).astype(np.float32)
        keep = np.flatnonzero(rng.random(5000) < 0.9)
        want = np.einsum("ij,nj->ni", T[:3, :3], xyz[keep]) + T[:3, 3]
        got = _moved(T, xyz, keep)
        assert got.dtype == np.float32 and got.flags["C_CONTIGUOUS"]
        np.testing.assert_array_equal(got, want)  # bit for bit, not to a tolerance
