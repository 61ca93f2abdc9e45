"""The learned map's ground (gs_render.ground), colour least squares (gs_render.colour_solve)
and inpainting of unseen Gaussians (gs_render.sensor_map)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from gs_render.ground import GroundGrid, fit_ground_plane
from gs_render.lidar_map import LidarMapConfig, LidarVoxelMap
from gs_render.map_refine import solve_colours
from gs_render.raster_numba import numba_available
from gs_render.sensor_map import Frame, SensorGaussianMap, SensorMapConfig
from gs_render.synthetic import street_camera

ORIGIN = np.array([0.0, 0.0, 1.5])


def _ground_scan(rng: np.random.Generator, n: int = 6000, slope: float = 0.0) -> np.ndarray:
    """[n, 3] ground returns z = slope * x on rings from 4 m to 30 m (none under the sensor,
    as under a real spinning lidar's lowest beam)."""
    r = rng.uniform(4.0, 30.0, n)
    a = rng.uniform(-np.pi, np.pi, n)
    x, y = r * np.cos(a), r * np.sin(a)
    return np.column_stack([x, y, slope * x])


def _wall(rng: np.random.Generator, n: int = 3000) -> np.ndarray:
    return np.column_stack([np.full(n, 12.0), rng.uniform(-8, 8, n), rng.uniform(0.2, 4.0, n)])


@pytest.mark.parametrize("slope", [0.0, 0.1])
def test_ground_plane_is_recovered_beside_a_wall(slope: float) -> None:
    rng = np.random.default_rng(0)
    pts = np.vstack([_ground_scan(rng, slope=slope), _wall(rng)])
    plane = fit_ground_plane(pts - ORIGIN, 40.0, 0.2)
    assert plane is not None
    # z_rel = -1.5 + slope dx; 1e-3: the wall's lowest returns (0.2 m up) sit at the edge of
    # the inlier band and pull the noise-free fit by a fraction of a millimetre
    np.testing.assert_allclose(plane, [-1.5, slope, 0.0], atol=1e-3)


def test_no_ground_from_too_few_points_or_a_steep_plane() -> None:
    rng = np.random.default_rng(1)
    assert fit_ground_plane(_ground_scan(rng, n=20) - ORIGIN, 40.0, 0.2) is None
    steep = _ground_scan(rng, slope=0.5)  # 27 degrees: a ramp or a wall, not the ground
    assert fit_ground_plane(steep - ORIGIN, 40.0, 0.2) is None


def test_ground_under_the_sensor_is_completed_from_the_fit() -> None:
    rng = np.random.default_rng(2)
    ground = _ground_scan(rng)
    grid = GroundGrid(cell_m=0.5, fill_range_m=20.0)
    grid.insert(ground, ORIGIN, np.array([-1.5, 0.0, 0.0]))
    ij, z = grid.cells()
    centre = (ij + 0.5) * 0.5
    under = np.hypot(centre[:, 0], centre[:, 1]) < 3.0  # no return there: filled
    assert under.sum() > 0.8 * np.pi * 3.0**2 / 0.25
    np.testing.assert_allclose(z, 0.0, atol=1e-9)  # observed and filled alike at z = 0


def test_ground_returns_become_ground_cells_not_voxels() -> None:
    rng = np.random.default_rng(3)
    lidar = LidarVoxelMap(LidarMapConfig(voxel_m=0.5, ground_cell_m=0.5))
    for _ in range(3):
        lidar.insert(np.vstack([_ground_scan(rng), _wall(rng)]), ORIGIN)
    geo = lidar.gaussians()
    flat = np.abs(geo.means[:, 2]) < 0.05
    assert flat.sum() > 1000  # the ground layer ...
    np.testing.assert_allclose(geo.quats[flat], [[1.0, 0.0, 0.0, 0.0]] * int(flat.sum()))
    walls = np.isclose(geo.means[:, 0], 12.0)
    assert walls.sum() > 50 and np.all(geo.means[walls, 2] > 0.1)  # ... and the wall apart
    off = LidarVoxelMap(LidarMapConfig(voxel_m=0.5, ground=False))
    for _ in range(3):
        off.insert(np.vstack([_ground_scan(rng), _wall(rng)]), ORIGIN)
    centre = np.hypot(*off.gaussians().means[:, :2].T) < 3.0
    assert not centre.any()  # without the ground model nothing lies under the sensor


def _coloured_wall_map(
    colour_iterations: int, inpaint_radius_m: float
) -> tuple[SensorGaussianMap, Frame]:
    rng = np.random.default_rng(4)
    config = SensorMapConfig(
        lidar=LidarMapConfig(voxel_m=0.4, ground=False),
        refine_iterations=0,
        colour_iterations=colour_iterations,
        inpaint_radius_m=inpaint_radius_m,
    )
    smap = SensorGaussianMap(config)
    wall = np.column_stack(
        [np.full(8000, 8.0), rng.uniform(-15, 15, 8000), rng.uniform(-3, 3, 8000)]
    )
    for _ in range(3):
        smap.add_scan(wall, ORIGIN)
    k, viewmat = street_camera(48, 36)
    image = np.zeros((36, 48, 3), np.uint8)
    image[:] = (90, 140, 220)
    image[14:, :24] = (200, 110, 40)  # two colours on the wall: neighbours blend at the seam
    image[14:, 24:] = (40, 160, 60)
    return smap, Frame(image, k, np.linalg.inv(viewmat))


@pytest.mark.skipif(not numba_available(), reason="the colour solve is compiled with numba")
def test_colour_least_squares_never_raises_the_loss_and_beats_projection() -> None:
    smap, frame = _coloured_wall_map(colour_iterations=0, inpaint_radius_m=0.0)
    smap.add_frames([frame])
    projected, _ = smap.render(frame.T_world_camera_optical, frame.K, 48, 36)
    losses = solve_colours(smap, 12)
    # majorise-minimise: each step minimises a majoriser, so the loss never rises
    assert all(b <= a * (1.0 + 1e-9) for a, b in itertools.pairwise(losses))
    solved, _ = smap.render(frame.T_world_camera_optical, frame.K, 48, 36)
    err = [np.abs(r.astype(float) - frame.image).mean() for r in (projected, solved)]
    assert err[1] < err[0]


def test_unseen_gaussians_take_the_nearest_seen_colour_within_the_radius() -> None:
    for radius, expect_grey in ((0.0, True), (50.0, False)):
        smap, frame = _coloured_wall_map(colour_iterations=0, inpaint_radius_m=radius)
        smap.add_frames([frame])
        colours = smap.model().colors.numpy()
        seen = smap.app["weight"][:, 0] > 0.0
        assert seen.any() and not seen.all()  # the camera sees only part of the 30 m wall
        grey = np.all(np.isclose(colours, 0.5), axis=1)
        assert grey.any() == expect_grey
