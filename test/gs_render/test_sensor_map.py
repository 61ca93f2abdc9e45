"""The map learned from lidar scans and uploaded frames (gs_render.lidar_map, .sensor_map)."""

from __future__ import annotations

import numpy as np
import pytest

from gs_render.lidar_map import LidarMapConfig, LidarMapError, LidarVoxelMap
from gs_render.raster_torch import RasterTorchError, TorchRasterConfig
from gs_render.sensor_map import Frame, SensorGaussianMap, SensorMapConfig, SensorMapError
from gs_render.synthetic import street_camera

ORIGIN = np.array([0.0, 0.0, 1.5])


def _wall_scan(x_m: float, rng: np.random.Generator, n: int = 4000) -> np.ndarray:
    """Returns [n, 3] on a wall x = x_m facing the sensor, y in [-15, 15], z in [-3, 3]."""
    return np.column_stack([np.full(n, x_m), rng.uniform(-15, 15, n), rng.uniform(-3, 3, n)])


def test_static_wall_becomes_flat_gaussians_facing_the_sensor() -> None:
    rng = np.random.default_rng(0)
    lidar = LidarVoxelMap(LidarMapConfig(voxel_m=0.5))
    for _ in range(3):
        lidar.insert(_wall_scan(10.0, rng), ORIGIN)
    geo = lidar.gaussians()
    assert len(geo.keys) > 100
    np.testing.assert_allclose(geo.means[:, 0], 10.0, atol=1e-9)  # exact: all points at x=10
    # quaternions turn +z onto the normal: the wall faces -x (toward the sensor)
    w, x, y, z = geo.quats.T
    normal_x = 2 * (x * z + w * y)
    assert np.median(normal_x) < -0.99
    assert np.all(geo.scales[:, 2] < geo.scales[:, 0])  # thin along the normal


def test_a_moving_object_is_carved_out_and_the_static_wall_stays() -> None:
    rng = np.random.default_rng(1)
    lidar = LidarVoxelMap(LidarMapConfig(voxel_m=0.5, min_scans=2))
    car = np.column_stack([np.full(500, 5.0), rng.uniform(-1, 1, 500), rng.uniform(0, 1.5, 500)])
    for _ in range(2):  # the car in front of the wall for two scans ...
        wall = _wall_scan(10.0, rng)
        hidden = (np.abs(wall[:, 1]) < 2.2) & (wall[:, 2] < 1.6)
        lidar.insert(np.vstack([car, wall[~hidden]]), ORIGIN)
    assert np.any(np.isclose(lidar.gaussians().means[:, 0], 5.0))
    for _ in range(4):  # ... then gone: the wall is seen through where it was (dense enough
        # that every 1-degree bin has a return: a voxel is carved only by a ray through it)
        lidar.insert(_wall_scan(10.0, rng, 40_000), ORIGIN)
    means = lidar.gaussians().means
    assert not np.any(np.isclose(means[:, 0], 5.0))
    assert np.sum(np.isclose(means[:, 0], 10.0)) > 100


@pytest.mark.parametrize(
    ("points", "origin"), [(np.zeros((3, 2)), ORIGIN), (np.full((3, 3), np.nan), ORIGIN)]
)
def test_malformed_scans_are_rejected(points: np.ndarray, origin: np.ndarray) -> None:
    with pytest.raises(LidarMapError):
        LidarVoxelMap().insert(points, origin)


@pytest.mark.parametrize("field", ["voxel_m", "min_scans", "max_opacity"])
def test_bad_lidar_settings_name_the_field(field: str) -> None:
    with pytest.raises(LidarMapError, match=field):
        LidarMapConfig(**{field: -1})


def _wall_map(refine: int = 0) -> tuple[SensorGaussianMap, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(2)
    smap = SensorGaussianMap(
        SensorMapConfig(lidar=LidarMapConfig(voxel_m=0.4), refine_iterations=refine)
    )
    for _ in range(3):
        smap.add_scan(_wall_scan(8.0, rng, 8000), ORIGIN)
    k, viewmat = street_camera(48, 36)  # at (-2, 0, 1.5) looking along +x
    pose = np.linalg.inv(viewmat)
    # The "camera": the wall (rows 14-31 at 10 m) orange, blue sky above it.
    image = np.zeros((36, 48, 3), np.uint8)
    image[:] = (90, 140, 220)
    image[14:] = (200, 110, 40)
    return smap, image, k, pose


def test_an_uploaded_frame_colours_the_map_and_improves_the_render() -> None:
    smap, image, k, pose = _wall_map()
    before, alpha = smap.render(pose, k, 48, 36)
    assert alpha[17:29].mean() > 0.9  # the lidar wall covers the middle rows
    smap.add_frames([Frame(image, k, pose)])
    after, _ = smap.render(pose, k, 48, 36)
    err = [np.abs(r[17:29].astype(int) - image[17:29]).mean() for r in (before, after)]
    # unseen Gaussians are grey (0.5): ~70 levels off the orange; coloured ones within a few
    assert err[1] < 0.25 * err[0]
    assert smap.coverage(pose, k, 48, 36) > 0.5


def test_the_sky_is_learned_from_uncovered_pixels() -> None:
    smap, image, k, pose = _wall_map()
    assert not smap.sky_learned
    smap.add_frames([Frame(image, k, pose)])
    # every band above the wall saw (90, 140, 220): the gradient is that colour at both ends
    sky = smap.sky()
    np.testing.assert_allclose(sky.zenith_rgb, np.array([90, 140, 220]) / 255, atol=0.05)


def test_photometric_refinement_lowers_the_loss() -> None:
    smap, image, k, pose = _wall_map(refine=0)
    smap.add_frames([Frame(image, k, pose)])
    losses = smap.refine(8)
    assert len(losses) == 8 and losses[-1] < losses[0]


def test_copies_learn_independently() -> None:
    smap, image, k, pose = _wall_map()
    smap.render(pose, k, 48, 36)  # build the geometry
    other = smap.copy()
    other.add_frames([Frame(image, k, pose)])
    assert smap.frames_added == 0 and other.frames_added == 1
    assert not np.allclose(smap.app["rgb"], other.app["rgb"])


@pytest.mark.parametrize(
    "frame",
    [
        Frame(np.zeros((36, 48), np.uint8), np.eye(3), np.eye(4)),
        Frame(np.zeros((8, 8, 3), np.uint8), np.eye(3), np.eye(4)),
        Frame(np.zeros((36, 48, 3), np.uint8), np.full((3, 3), np.nan), np.eye(4)),
    ],
)
def test_malformed_frames_are_rejected(frame: Frame) -> None:
    with pytest.raises(SensorMapError):
        SensorGaussianMap().add_frames([frame])


def test_unknown_kernel_is_rejected() -> None:
    with pytest.raises(RasterTorchError, match="kernel"):
        TorchRasterConfig(kernel="cuda")
