"""Raycast lidar: output layout, ring geometry, ranges, intensity, noise, determinism, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from geometry.transforms import pose_to_transform
from sim.lidar import Lidar, LidarConfig, LidarError
from sim.materials import REFLECTIVITY
from sim.world import World

GROUND = ("ground", "ground", (0, 0, -0.5, 1000, 1000, 1.0, 0))  # top face at z = 0
F32_TOL_M = 1e-4  # float32 rays and points at <= 100 m


@pytest.fixture
def ground_world(make_scene) -> World:
    return World(make_scene([GROUND]))


@pytest.mark.parametrize("beams", [16, 32, 64, 128])
def test_scan_layout_dtypes_and_ring_elevations(ground_world, beams) -> None:
    # All rings look down and reach the 1 km ground within range (shallowest: -2 deg, 52 m).
    cfg = LidarConfig(
        beams=beams,
        azimuth_resolution_deg=2.0,
        vertical_fov_up_deg=-2.0,
        vertical_fov_down_deg=-30.0,
        dropout_prob=0.0,
    )
    scan = Lidar(cfg).scan(ground_world, pose_to_transform(0, 0, 1.8, 0))
    assert scan.points.dtype == np.float32 and scan.points.shape[1] == 5
    assert scan.object_index.dtype == np.int32 and scan.object_index.shape == (len(scan.points),)
    rings = scan.points[:, 4].astype(int)
    assert rings.min() >= 0 and rings.max() < beams
    elevation = np.degrees(
        np.arctan2(scan.points[:, 2], np.hypot(scan.points[:, 0], scan.points[:, 1]))
    )
    expected = np.linspace(-30.0, -2.0, beams)[rings]  # ring 0 is the lowest
    np.testing.assert_allclose(elevation, expected, atol=1e-3)  # float32 points
    assert len(scan.points) == beams * cfg.columns  # one return per ray
    assert np.array_equal(np.bincount(rings), np.full(beams, cfg.columns))


def test_noise_free_points_lie_on_the_ground_plane(ground_world) -> None:
    cfg = LidarConfig(beams=16, azimuth_resolution_deg=1.0, range_noise_std_m=0.0, dropout_prob=0.0)
    scan = Lidar(cfg).scan(ground_world, pose_to_transform(3.0, -2.0, 1.8, 0.4))
    np.testing.assert_allclose(scan.points[:, 2], -1.8, atol=F32_TOL_M)
    r = np.linalg.norm(scan.points[:, :3], axis=1)
    assert r.min() >= cfg.min_range_m and r.max() <= cfg.max_range_m


def test_wall_range_and_perpendicular_intensity_equal_reflectivity(make_scene) -> None:
    wall = ("wall", "building", (20.5, 0.0, 5.0, 1.0, 40.0, 10.0, 0.0))  # face at x = 20
    scene = make_scene([wall])
    cfg = LidarConfig(
        beams=16,
        vertical_fov_up_deg=10.0,
        vertical_fov_down_deg=-10.0,
        azimuth_resolution_deg=1.0,
        range_noise_std_m=0.0,
    )
    scan = Lidar(cfg).scan(World(scene), pose_to_transform(0, 0, 5.0, 0))
    np.testing.assert_allclose(scan.points[:, 0], 20.0, atol=F32_TOL_M)
    r = np.linalg.norm(scan.points[:, :3], axis=1)
    cos_incidence = 20.0 / r
    # Intensity is stored as float32 (~6e-8 relative) and cos from float32 points: 1e-5.
    np.testing.assert_allclose(
        scan.points[:, 3], REFLECTIVITY["concrete"] * cos_incidence, atol=1e-5
    )


def test_returns_beyond_max_range_are_dropped(make_scene) -> None:
    far = ("far", "building", (60.5, 0.0, 5.0, 1.0, 40.0, 10.0, 0.0))
    world = World(make_scene([far]))
    assert (
        len(Lidar(LidarConfig(max_range_m=50.0)).scan(world, pose_to_transform(0, 0, 5, 0)).points)
        == 0
    )
    assert (
        len(Lidar(LidarConfig(max_range_m=70.0)).scan(world, pose_to_transform(0, 0, 5, 0)).points)
        > 0
    )


def test_same_seed_same_scan_different_seed_different(occluded_world, occluded_scene) -> None:
    lidar = Lidar(LidarConfig(beams=16, azimuth_resolution_deg=0.5))
    T = pose_to_transform(*occluded_scene.ego_start[:2], 1.8, occluded_scene.ego_start[2])
    a = lidar.scan(occluded_world, T, np.random.default_rng(3))
    b = lidar.scan(occluded_world, T, np.random.default_rng(3))
    c = lidar.scan(occluded_world, T, np.random.default_rng(4))
    assert a.points.tobytes() == b.points.tobytes()
    assert np.array_equal(a.object_index, b.object_index)
    assert a.points.tobytes() != c.points.tobytes()


def test_dropout_removes_the_configured_fraction(ground_world) -> None:
    # All rings hit the ground within range (shallowest -3 deg: 34 m), so only dropout loses rays.
    cfg = LidarConfig(
        beams=32, azimuth_resolution_deg=0.2, dropout_prob=0.1, vertical_fov_up_deg=-3.0
    )
    lidar = Lidar(cfg)
    kept = len(
        lidar.scan(ground_world, pose_to_transform(0, 0, 1.8, 0), np.random.default_rng(0)).points
    )
    # 57,600 Bernoulli(0.9) trials: std of the kept fraction 0.0013; 0.01 is > 7 sigma.
    assert kept / lidar.rays_per_scan == pytest.approx(0.9, abs=0.01)


def test_range_noise_has_the_configured_spread(make_scene) -> None:
    wall = ("wall", "building", (20.5, 0.0, 5.0, 1.0, 400.0, 100.0, 0.0))  # face at x = 20
    cfg = LidarConfig(
        beams=64,
        azimuth_resolution_deg=0.5,
        range_noise_std_m=0.05,
        dropout_prob=0.0,
        vertical_fov_up_deg=10.0,
        vertical_fov_down_deg=-10.0,
    )
    scan = Lidar(cfg).scan(
        World(make_scene([wall])), pose_to_transform(0, 0, 5, 0), np.random.default_rng(1)
    )
    r = np.linalg.norm(scan.points[:, :3], axis=1)
    true_r = 20.0 * r / scan.points[:, 0]  # noise moves points along their (exact) ray
    # ~ 11,000 samples: the sample std is within 5% of sigma with overwhelming probability.
    assert np.std(r - true_r) == pytest.approx(0.05, rel=0.05)
    assert np.mean(r - true_r) == pytest.approx(0.0, abs=0.005)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"beams": 20}, "beams"),
        ({"azimuth_resolution_deg": 0.0}, "azimuth_resolution_deg"),
        ({"vertical_fov_up_deg": -30.0}, "vertical_fov_up_deg"),
        ({"max_range_m": math.nan}, "max_range_m"),
        ({"dropout_prob": 1.0}, "dropout_prob"),
        ({"min_range_m": 200.0}, "min_range_m"),
    ],
)
def test_bad_config_raises_lidar_error_naming_the_field(kwargs, field) -> None:
    with pytest.raises(LidarError, match=field):
        LidarConfig(**kwargs)


@pytest.mark.parametrize("bad", [np.full((4, 4), np.nan), np.eye(3), 2.0 * np.eye(4)])
def test_bad_pose_raises_lidar_error(ground_world, bad) -> None:
    with pytest.raises(LidarError, match="T_world_lidar"):
        Lidar(LidarConfig(beams=16)).scan(ground_world, bad)
