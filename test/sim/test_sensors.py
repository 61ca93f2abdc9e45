"""Real lidar models: beam tables, detection of dark and far returns, incidence-dependent
intensity and rolling-shutter distortion."""

from __future__ import annotations

import numpy as np
import pytest

from geometry.transforms import pose_to_transform
from sim.lidar import Lidar, LidarConfig, LidarError, LidarMotion
from sim.sensors import SENSORS, sensor_config
from sim.world import World

WALL = ("wall", "building", (20.5, 0.0, 5.0, 1.0, 400.0, 100.0, 0.0))  # face at x = 20


@pytest.mark.parametrize(
    ("name", "beams", "lowest", "highest"),
    [
        ("hdl64e", 64, -24.9, 2.0),
        ("hdl32e", 32, -30.67, 10.67),
        ("vlp16", 16, -15.0, 15.0),
        ("vlp32c", 32, -25.0, 15.0),
        ("os1-64", 64, -22.5, 22.5),
        ("os1-128", 128, -22.5, 22.5),
    ],
)
def test_presets_carry_the_published_beam_tables(name, beams, lowest, highest) -> None:
    cfg = SENSORS[name]
    assert cfg.beams == beams and cfg.see_through and cfg.range_10pct_m > 0
    table = cfg.elevations
    assert table[0] == pytest.approx(lowest) and table[-1] == pytest.approx(highest)
    assert np.all(np.diff(table) > 0)


def test_vlp32c_is_dense_near_the_horizon_and_sparse_below() -> None:
    table = SENSORS["vlp32c"].elevations
    gaps = np.diff(table)
    assert gaps[np.abs(table[:-1]) < 1.5].max() < 0.4 and gaps[0] > 9  # 0.33 vs -25 -> -15.6


def test_jitter_keeps_the_table_sorted_and_close() -> None:
    a = sensor_config("hdl64e", np.random.default_rng(0)).elevations
    assert np.all(np.diff(a) > 0)
    # N(0, 0.05 deg): all 64 within 0.25 deg (5 sigma) of the nominal table.
    assert np.max(np.abs(a - SENSORS["hdl64e"].elevations)) < 0.25
    with pytest.raises(LidarError, match="unknown lidar model"):
        sensor_config("hdl128")


def test_dark_and_far_returns_drop_out_more(make_scene) -> None:
    # p = 1 / (1 + (S10 / S)^2), S = rho cos / r^2, S10 = 0.1 / 30^2: a concrete wall (0.35)
    # at normal incidence is seen with p = 0.984 at 20 m and 0.795 at 40 m.
    cfg = LidarConfig(beams=16, vertical_fov_down_deg=-2, vertical_fov_up_deg=2,
                      azimuth_resolution_deg=0.2, range_10pct_m=30.0, dropout_prob=0.0,
                      range_noise_std_m=0.0)  # fmt: skip
    near = World(make_scene([WALL]))
    far = World(make_scene([("wall", "building", (40.5, 0.0, 5.0, 1.0, 800.0, 100.0, 0.0))]))
    lidar = Lidar(cfg)
    rays = np.abs(np.rad2deg(np.arctan2(lidar.directions[:, 1], lidar.directions[:, 0]))) < 10
    seen = []
    for world in (near, far):
        scan = lidar.scan(world, pose_to_transform(0, 0, 5.0, 0), np.random.default_rng(0))
        az = np.abs(np.rad2deg(np.arctan2(scan.points[:, 1], scan.points[:, 0])))
        seen.append(np.sum(az < 10) / rays.sum())
    # 1,600 rays each (the +-10 deg sector): binomial std 0.01; the cosine of up to 10 deg
    # off-normal lowers p by < 0.02. So 0.05 of slack.
    assert seen[0] == pytest.approx(0.984, abs=0.05) and seen[1] == pytest.approx(0.795, abs=0.05)


def test_intensity_depends_weakly_on_incidence_with_exponent_one_half(make_scene) -> None:
    cfg = LidarConfig(beams=16, vertical_fov_down_deg=-10, vertical_fov_up_deg=10,
                      azimuth_resolution_deg=1.0, range_noise_std_m=0.0,
                      intensity_incidence_exponent=0.5)  # fmt: skip
    scan = Lidar(cfg).scan(World(make_scene([WALL])), pose_to_transform(0, 0, 5, 0))
    cos = 20.0 / np.linalg.norm(scan.points[:, :3], axis=1)
    # float32 intensities and points: 1e-5 (as the Lambertian test in test_lidar.py).
    np.testing.assert_allclose(scan.points[:, 3], 0.35 * np.sqrt(cos), atol=1e-5)


def test_rolling_shutter_smears_a_wall_by_the_distance_driven(make_scene) -> None:
    # Driving at 10 m/s toward a wall during a 0.1 s scan: the columns fired first see it
    # from up to 1 m farther back, so in the (moving) lidar frame they report it farther away.
    cfg = LidarConfig(beams=16, vertical_fov_down_deg=-5, vertical_fov_up_deg=5,
                      azimuth_resolution_deg=0.5, range_noise_std_m=0.0, dropout_prob=0.0,
                      scan_period_s=0.1)  # fmt: skip
    world = World(make_scene([WALL]))
    T = pose_to_transform(0, 0, 5.0, 0)
    still = Lidar(cfg).scan(world, T)
    moving = Lidar(cfg).scan(world, T, motion=LidarMotion((10.0, 0.0, 0.0), 0.0))
    np.testing.assert_allclose(still.points[:, 0], 20.0, atol=1e-4)
    # Columns run from azimuth -180 deg (t = -0.1 s) to +180 deg (t = 0): the wall ahead is
    # scanned half way, 0.05 s before the end, from 0.5 m farther back.
    ahead = np.abs(np.arctan2(moving.points[:, 1], moving.points[:, 0])) < np.deg2rad(1)
    np.testing.assert_allclose(moving.points[ahead, 0], 20.5, atol=0.02)  # +- one column


@pytest.mark.parametrize(
    "kwargs",
    [
        {"elevations_deg": (1.0, 0.0) + (0.5,) * 30},  # not ascending
        {"elevations_deg": (0.0,) * 16, "beams": 32},  # wrong length
        {"range_10pct_m": -1.0},
        {"intensity_incidence_exponent": 3.0},
        {"scan_period_s": 0.0},
    ],
)
def test_bad_sensor_settings_name_the_field(kwargs) -> None:
    with pytest.raises(LidarError, match=next(k for k in kwargs if k != "beams")):
        LidarConfig(**kwargs)
