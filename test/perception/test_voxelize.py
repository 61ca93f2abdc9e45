"""Voxelization against a brute-force Python reference, and its input checks."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perception.config import VoxelConfig
from perception.errors import PerceptionError
from perception.voxelize import VoxelizeError, collate, stable_argsort, voxelize


def reference_voxelize(points: np.ndarray, cfg: VoxelConfig) -> tuple[list, list, list]:
    """Point-by-point loop: first-seen voxel order, first points per voxel, plain means."""
    lo, size, grid = cfg.point_range_m[:3], cfg.voxel_size_m, cfg.grid_size
    voxels: dict[tuple[int, int, int], list[np.ndarray]] = {}
    for p in points.astype(np.float32):
        feat = np.zeros(cfg.num_features, dtype=np.float32)
        feat[: min(cfg.num_features, len(p))] = p[: cfg.num_features]
        if not np.all(np.isfinite(feat)):
            continue
        cell = tuple(math.floor((float(feat[i]) - lo[i]) / size[i]) for i in range(3))
        if not all(0 <= cell[i] < grid[i] for i in range(3)):
            continue
        if cell not in voxels and len(voxels) >= cfg.max_voxels:
            continue
        members = voxels.setdefault(cell, [])
        if len(members) < cfg.max_points_per_voxel:
            members.append(feat.astype(np.float64))
    coords = [(c[2], c[1], c[0]) for c in voxels]
    feats = [np.mean(m, axis=0) for m in voxels.values()]
    counts = [len(m) for m in voxels.values()]
    return coords, feats, counts


def assert_matches_reference(points: np.ndarray, cfg: VoxelConfig, atol: float) -> None:
    """``voxelize`` gives the reference's voxels, in its order, with its means (to ``atol``)."""
    vox = voxelize(points, cfg)
    coords, feats, counts = reference_voxelize(points, cfg)
    assert [tuple(c) for c in vox.coords.tolist()] == coords
    assert vox.num_points.tolist() == counts
    np.testing.assert_allclose(
        vox.features, np.asarray(feats).reshape(-1, cfg.num_features), rtol=0, atol=atol
    )


clouds = st.integers(0, 60).flatmap(
    lambda n: st.lists(
        st.tuples(
            *[st.floats(-12.0, 12.0, width=32)] * 2,
            st.floats(-4.0, 3.0, width=32),
            st.floats(0.0, 1.0, width=32),
        ),
        min_size=n,
        max_size=n,
    )
)


@settings(max_examples=60, deadline=None)
@given(
    cloud=clouds,
    voxel_xy=st.sampled_from([0.1, 0.2, 0.4, 0.8]),
    max_points=st.integers(1, 4),
    max_voxels=st.integers(1, 40),
    use_intensity=st.booleans(),
    duplicate=st.booleans(),
)
def test_voxelize_matches_bruteforce_reference(
    cloud, voxel_xy, max_points, max_voxels, use_intensity, duplicate
):
    points = np.asarray(cloud, dtype=np.float32).reshape(-1, 4)
    if duplicate:  # repeated points exercise the per-voxel point cap
        points = np.concatenate([points, points[::2]], axis=0)
    cfg = VoxelConfig(
        voxel_size_m=(voxel_xy, voxel_xy, 0.2),
        point_range_m=(-6.4, -6.4, -3.0, 6.4, 6.4, 2.0),
        max_points_per_voxel=max_points,
        max_voxels=max_voxels,
        use_intensity=use_intensity,
    )
    # float32 output of a float64 mean of float32 inputs: 1 ulp at |x| <= 12 m is ~1e-6 m.
    assert_matches_reference(points, cfg, atol=2e-6)


@pytest.mark.parametrize("bound", [1, 7, 5000, 2**31, 2**40])
@pytest.mark.parametrize("n", [0, 1, 2, 300, 20_000])
def test_stable_argsort_is_numpys_stable_argsort(bound, n):
    # Few distinct values (many ties) and the 32- and 64-bit key paths (bound vs 2^31).
    rng = np.random.default_rng(n + bound % 97)
    values = rng.integers(0, min(bound, 50), n) * (bound // min(bound, 50))
    order = stable_argsort(values, bound)
    np.testing.assert_array_equal(order, np.argsort(values, kind="stable"))


def test_voxelize_matches_the_reference_on_a_grid_of_more_than_2_31_cells():
    # 0.01 m cells over 400 x 400 x 40 m: keys above 2^31 take the 64-bit sort.
    cfg = VoxelConfig(
        voxel_size_m=(0.01, 0.01, 0.01),
        point_range_m=(-200.0, -200.0, -20.0, 200.0, 200.0, 20.0),
        max_points_per_voxel=2,
        max_voxels=50,
    )
    assert math.prod(cfg.grid_size) > 2**31
    rng = np.random.default_rng(3)
    points = rng.uniform(-199.0, 199.0, (200, 4)).astype(np.float32)
    points[:, 2] = rng.uniform(-19.0, 19.0, 200)
    points = np.concatenate([points, points[:40], points[:10]])  # repeats: the point cap
    assert_matches_reference(points, cfg, atol=2e-5)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_voxelize_drops_non_finite_points(bad):
    points = np.array([[1.0, 1.0, 0.0, 0.5], [bad, 1.0, 0.0, 0.5], [1.0, 1.0, bad, 0.5]])
    vox = voxelize(points, VoxelConfig())
    assert len(vox) == 1 and vox.num_points.tolist() == [1]


@pytest.mark.parametrize(
    "point",
    # The default range is x, y in [-40, 40), z in [-2, 4) (half-open).
    [[40.0, 0.0, 0.0], [-40.01, 0.0, 0.0], [0.0, 0.0, 4.0], [0.0, 0.0, -2.5], [0.0, 41.0, 0.0]],
)
def test_voxelize_drops_points_outside_the_range(point):
    assert len(voxelize(np.array([point]), VoxelConfig())) == 0


def test_voxelize_puts_range_minimum_into_cell_zero():
    vox = voxelize(np.array([[-40.0, -40.0, -2.0]]), VoxelConfig())
    assert vox.coords.tolist() == [[0, 0, 0]]


def test_voxelize_is_deterministic_and_keeps_first_appearance_order():
    rng = np.random.default_rng(3)
    points = rng.uniform(-30, 30, (5000, 4)).astype(np.float32)
    points[:, 2] = rng.uniform(-1.5, 3.5, 5000)
    a, b = voxelize(points, VoxelConfig()), voxelize(points.copy(), VoxelConfig())
    np.testing.assert_array_equal(a.coords, b.coords)
    np.testing.assert_array_equal(a.features, b.features)
    first = voxelize(points[:1], VoxelConfig())
    np.testing.assert_array_equal(a.coords[0], first.coords[0])


def test_voxelize_ignores_extra_columns_and_pads_missing_intensity():
    cfg = VoxelConfig(use_intensity=True)
    five = voxelize(np.array([[1.0, 2.0, 0.0, 0.7, 31.0]]), cfg)
    three = voxelize(np.array([[1.0, 2.0, 0.0]]), cfg)
    np.testing.assert_allclose(five.features, [[1.0, 2.0, 0.0, 0.7]], rtol=1e-6)
    np.testing.assert_allclose(three.features, [[1.0, 2.0, 0.0, 0.0]])


@pytest.mark.parametrize("cloud", [np.zeros((0, 3)), np.zeros((0, 5), dtype=np.float32)])
def test_voxelize_empty_cloud_gives_no_voxels(cloud):
    vox = voxelize(cloud, VoxelConfig())
    assert len(vox) == 0 and vox.features.shape == (0, 3) and vox.coords.shape == (0, 3)


@pytest.mark.parametrize(
    "cloud", [np.zeros((4, 2)), np.zeros(6), np.zeros((2, 3, 3)), np.array([["a", "b", "c"]])]
)
def test_voxelize_rejects_malformed_clouds(cloud):
    with pytest.raises(VoxelizeError):
        voxelize(cloud, VoxelConfig())
    assert issubclass(VoxelizeError, PerceptionError)


def test_collate_prefixes_the_batch_index():
    a = voxelize(np.array([[0.0, 0.0, 0.0]]), VoxelConfig())
    b = voxelize(np.array([[1.0, 0.0, 0.0], [5.0, 0.0, 0.0]]), VoxelConfig())
    feats, coords = collate([a, b])
    assert feats.shape == (3, 3) and coords[:, 0].tolist() == [0, 1, 1]
    with pytest.raises(VoxelizeError):
        collate([])
