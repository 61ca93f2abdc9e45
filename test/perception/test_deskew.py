"""Deskewing a moving lidar's scan (perception/deskew.py), in ``detect`` and in the datasets."""

from __future__ import annotations

import math

import numpy as np
import pytest

from geometry.transforms import pose_to_transform
from perception.deskew import DeskewError, ScanMotion, deskew, point_times
from perception.detect import DetectError, detect
from perception.model import Detector
from sim.lidar import Lidar, LidarConfig, LidarMotion
from sim.scene import Lane, Scene, SceneObject
from sim.world import World

# A closed room seen from its middle at 5 m height: faces at x = +-20 m and y = +-15 m.
ROOM = (
    ("east", (20.5, 0.0, 5.0, 1.0, 40.0, 10.0, 0.0)),
    ("west", (-20.5, 0.0, 5.0, 1.0, 40.0, 10.0, 0.0)),
    ("north", (0.0, 15.5, 5.0, 42.0, 1.0, 10.0, 0.0)),
    ("south", (0.0, -15.5, 5.0, 42.0, 1.0, 10.0, 0.0)),
)


def _room_scan(motion: LidarMotion | None) -> np.ndarray:
    scene = Scene(
        name="room",
        seed=0,
        objects=tuple(
            SceneObject(n, "building", box, (0.5, 0.5, 0.5), "concrete", "box") for n, box in ROOM
        ),
        lanes=(Lane(0.0, 3.5, 1, "driving"),),
        street_x_range_m=(-20.0, 20.0),
        ego_start=(0.0, 0.0, 0.0),
    )
    cfg = LidarConfig(beams=16, vertical_fov_down_deg=-4, vertical_fov_up_deg=4,
                      azimuth_resolution_deg=0.5, range_noise_std_m=0.0, dropout_prob=0.0,
                      scan_period_s=0.1)  # fmt: skip
    return Lidar(cfg).scan(World(scene), pose_to_transform(0, 0, 5.0, 0), motion=motion).points


def _wall_distance(points: np.ndarray) -> np.ndarray:  # [N] m to the nearest room face
    x, y = points[:, 0].astype(np.float64), points[:, 1].astype(np.float64)
    return np.min(np.abs([x - 20.0, x + 20.0, y - 15.0, y + 15.0]), axis=0)


def test_deskewing_undoes_the_simulators_rolling_shutter() -> None:
    # Driving at 10 m/s while turning at 0.5 rad/s: up to 1 m of smear and 0.05 rad of turn.
    raw = _room_scan(LidarMotion((10.0, 0.0, 0.0), 0.5))
    assert _wall_distance(raw).max() > 0.5  # the smeared scan misses the walls
    fixed = deskew(raw, ScanMotion((10.0, 0.0, 0.0), 0.5, scan_period_s=0.1))
    # Left: the continuous firing-time model is off by up to one column (0.14 ms: 1.4 mm at
    # 10 m/s) and float32 coordinates.
    assert _wall_distance(fixed).max() < 0.01
    np.testing.assert_array_equal(fixed[:, 3:], raw[:, 3:])  # intensity and ring kept


def test_a_scan_taken_standing_still_is_unchanged() -> None:
    raw = _room_scan(None)
    assert _wall_distance(raw).max() < 1e-3
    out = deskew(raw, ScanMotion())
    np.testing.assert_array_equal(out, raw)
    assert out is not raw


@pytest.mark.parametrize(
    ("azimuth", "direction", "expected"),
    [
        (-math.pi + 1e-6, 1, -0.1),  # first column of a counter-clockwise sweep
        (0.0, 1, -0.05),
        (math.pi - 1e-6, 1, 0.0),  # last column: the scan's stamp
        (math.pi / 2, -1, -0.075),  # clockwise from -pi (= pi): +pi/2 a quarter of the way
    ],
)
def test_point_times_follow_the_azimuth(azimuth: float, direction: int, expected: float) -> None:
    point = np.array([[10 * math.cos(azimuth), 10 * math.sin(azimuth), 0.0]])
    t = point_times(point, ScanMotion((1.0, 0.0, 0.0), direction=direction))
    assert t[0] == pytest.approx(expected, abs=1e-6)


def test_given_point_times_are_used_and_checked() -> None:
    points = np.array([[10.0, 0.0, 0.0], [0.0, 10.0, 0.0]], dtype=np.float32)
    motion = ScanMotion((2.0, 0.0, 0.0))
    out = deskew(points, motion, times_s=np.array([-0.1, 0.0]))
    np.testing.assert_allclose(out[:, 0], [9.8, 0.0], atol=1e-6)
    with pytest.raises(DeskewError, match="2 points"):
        deskew(points, motion, times_s=np.zeros(3))
    with pytest.raises(DeskewError, match="finite"):
        deskew(points, motion, times_s=np.array([0.0, np.nan]))


def test_non_finite_rows_stay_non_finite_and_others_move() -> None:
    points = np.array([[np.nan, 1.0, 0.0], [10.0, 0.0, 0.0], [np.inf, 0.0, 0.0]], np.float32)
    out = deskew(points, ScanMotion((5.0, 0.0, 0.0), 0.1))
    assert not np.isfinite(out[0]).all() and not np.isfinite(out[2]).all()
    assert np.isfinite(out[1]).all() and out[1, 0] == pytest.approx(10.0 - 5.0 * 0.05, abs=1e-3)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"velocity_mps": (math.nan, 0.0, 0.0)}, "velocity_mps"),
        ({"velocity_mps": (0.0, 0.0)}, "velocity_mps"),
        ({"velocity_mps": (500.0, 0.0, 0.0)}, "velocity_mps"),
        ({"yaw_rate_radps": 20.0}, "yaw_rate_radps"),
        ({"scan_period_s": 0.0}, "scan_period_s"),
        ({"start_azimuth_rad": 4.0}, "start_azimuth_rad"),
        ({"direction": 0}, "direction"),
    ],
)
def test_bad_scan_motions_name_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(DeskewError, match=field):
        ScanMotion(**kwargs)


def test_detect_deskews_each_cloud_with_its_motion(small_config) -> None:
    model = Detector(small_config).eval()
    raw = _room_scan(LidarMotion((10.0, 0.0, 0.0), 0.5))
    motion = ScanMotion((10.0, 0.0, 0.0), 0.5)
    with_motion, without = detect(model, [raw, raw], motions=[motion, None])
    (expected,) = detect(model, [deskew(raw, motion)])
    np.testing.assert_array_equal(with_motion.boxes, expected.boxes)
    (plain,) = detect(model, [raw])
    np.testing.assert_array_equal(without.boxes, plain.boxes)
    with pytest.raises(DetectError, match="1 scan motions for 2 clouds"):
        detect(model, [raw, raw], motions=[motion])


def test_datasets_give_each_frame_its_recorded_motion(tmp_path) -> None:
    from perception.dataset import SimDataset
    from sim.dataset import write_dataset
    from sim.sensors import SENSORS
    from sim.variation import Variation

    variation = Variation(sensors=("vlp16", "hdl32e"), speed_range_mps=(2.0, 6.0))
    ds = SimDataset(write_dataset(tmp_path / "d", 4, seed=3, frames_per_scene=2,
                                  variation=variation))  # fmt: skip
    for i in range(len(ds)):
        frame = ds[i]
        motion = ds.scan_motion(frame)
        assert motion is not None and 2.0 <= motion.velocity_mps[0] <= 6.0
        assert motion.velocity_mps[0] == pytest.approx(frame.ego_speed_mps)
        assert motion.yaw_rate_radps == pytest.approx(frame.ego_yaw_rate_radps)
        assert frame.ego_yaw_rate_radps != 0.0
        name = variation.sensors[frame.sensor]
        assert motion.scan_period_s == SENSORS[name].scan_period_s
    standing = Variation(sensors=("vlp16",), speed_range_mps=(0.0, 0.0), yaw_rate_std_radps=0.0)
    still = SimDataset(write_dataset(tmp_path / "s", 2, seed=3, frames_per_scene=2,
                                     variation=standing))  # fmt: skip
    assert still.scan_motion(still[0]) is None


def test_clouds_in_millimetres_move_by_the_same_distance(small_config) -> None:
    raw = _room_scan(LidarMotion((10.0, 0.0, 0.0), 0.5))[:, :4]
    motion = ScanMotion((10.0, 0.0, 0.0), 0.5)
    mm = raw.copy()
    mm[:, :3] *= 1000.0
    np.testing.assert_allclose(
        deskew(mm, motion, units_per_m=1000.0)[:, :3],
        1000.0 * deskew(raw, motion)[:, :3],
        rtol=1e-5,
    )
    from perception.sensor_input import SensorSetup

    model = Detector(small_config).eval()
    (metres,) = detect(model, [raw], SensorSetup(5.0, layout="sim"), motions=motion)
    (millis,) = detect(model, [mm], SensorSetup(5.0, layout="millimetres"), motions=motion)
    np.testing.assert_allclose(millis.boxes, metres.boxes, atol=1e-3)
