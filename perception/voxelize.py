"""Voxelization: binning a lidar cloud into a sparse grid with mean-of-points features.

Formulation (SECOND, Yan et al. 2018, "mean VFE" as in OpenPCDet): a point p = (x, y, z[, i])
inside the range [min, max) falls in voxel ``floor((p - min) / voxel_size)``. Each voxel keeps
its first ``max_points_per_voxel`` points in input order and its feature is their mean; the
first ``max_voxels`` voxels in order of first appearance are kept. Rows with NaN/Inf in a used
column and points outside the range are dropped first. Everything is vectorized numpy (the one
sort is torch's radix sort, ``stable_argsort``) and deterministic: the same cloud gives the same
voxels in the same order.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

from perception.config import VoxelConfig
from perception.errors import PerceptionError

log = logging.getLogger(__name__)


class VoxelizeError(PerceptionError):
    """A point cloud is not a 2-D numeric array with at least x, y, z columns."""


@dataclass(frozen=True)
class Voxels:
    """The non-empty voxels of one cloud."""

    features: np.ndarray  # [V, F] float32: mean x, y, z (, intensity) of the voxel's points
    coords: np.ndarray  # [V, 3] int32: (z, y, x) cell index, spconv order
    num_points: np.ndarray  # [V] int32: points averaged, in [1, max_points_per_voxel]

    def __len__(self) -> int:
        return len(self.coords)


def as_cloud(points: np.ndarray) -> np.ndarray:
    """Checks a cloud and returns it as float32 [N, C] (C >= 3), without copying if possible.

    Raises:
        VoxelizeError: not a 2-D numeric array, or fewer than 3 columns.
    """
    arr = np.asarray(points)
    if arr.ndim != 2:
        raise VoxelizeError(f"a point cloud must be a 2-D array [N, C], got shape {arr.shape}")
    if arr.shape[1] < 3:
        raise VoxelizeError(f"a point cloud needs at least 3 columns (x, y, z), got {arr.shape[1]}")
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise VoxelizeError(f"a point cloud must be numeric, got dtype {arr.dtype}")
    return arr.astype(np.float32, copy=False)


def usable_mask(points: np.ndarray, config: VoxelConfig) -> np.ndarray:
    """[N] bool: the points :func:`voxelize` can use (finite x, y, z inside the range)."""
    return _cells_inside(as_cloud(points), config)[3]


def _cells_inside(
    cloud: np.ndarray, config: VoxelConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """float64 x, y, z cells [N] of a float32 cloud [N, C] and [N] bool: the cell exists.

    Column by column (contiguous float64 vectors, in place): numpy's broadcasts over a 3-wide
    last axis are several times slower than whole-column arithmetic (the same operations per
    element). Comparing cells (not coordinates) keeps the float rounding of floor() and the
    range test consistent: a point is kept exactly when its cell exists. NaN and Inf fail every
    comparison, so non-finite coordinates drop out here too."""
    lo, size = config.point_range_m[:3], config.voxel_size_m
    nx, ny, nz = config.grid_size
    cx, cy, cz = (_cells(cloud[:, j], lo[j], size[j]) for j in range(3))
    inside = (cx >= 0) & (cx < nx) & (cy >= 0) & (cy < ny) & (cz >= 0) & (cz < nz)
    return cx, cy, cz, inside


def voxelize(points: np.ndarray, config: VoxelConfig) -> Voxels:
    """Voxels of one cloud.

    Args:
        points: [N, C] cloud in the lidar frame, C >= 3 (x, y, z, then intensity if present;
            a 3-column cloud has intensity 0 when ``config.use_intensity``).
        config: the grid.

    Raises:
        VoxelizeError: see :func:`as_cloud`.
    """
    cloud = as_cloud(points)  # [N, C]
    num_feat = config.num_features
    nx, ny, nz = config.grid_size
    # Rows are taken with ``np.take``: numpy's fancy indexing of rows is several times slower.
    cx, cy, cz, inside = _cells_inside(cloud, config)
    if num_feat > 3 and cloud.shape[1] > 3:
        inside &= np.isfinite(cloud[:, 3])
    idx = np.flatnonzero(inside)  # [N'] rows of the cloud that count
    if len(idx) == 0:
        return _empty(num_feat)
    # Linear (z, y, x) key of each kept point: whole numbers below nx ny nz, exact in float64.
    key = np.take(cz, idx) * ny
    key += np.take(cy, idx)
    key *= nx
    key += np.take(cx, idx)
    key = key.astype(np.int64)  # [N']
    # One stable sort groups the points of each voxel in input order (so the first
    # max_points_per_voxel of a group are the first in the cloud).
    by_key = stable_argsort(key, nx * ny * nz)  # [N']
    sorted_key = np.take(key, by_key)
    starts = np.flatnonzero(np.r_[True, sorted_key[1:] != sorted_key[:-1]])  # [U] group starts
    sizes = np.diff(np.r_[starts, len(sorted_key)])  # [U]
    # Voxels by first appearance (a group's first point is its earliest), for truncation: the
    # groups' first points are distinct rows, so marking them puts them in order without a sort.
    group_at = np.full(len(key), -1, dtype=np.int64)  # [N'] group whose first point is here
    group_at[by_key[starts]] = np.arange(len(starts))
    appearance = group_at[group_at >= 0]  # [U] group ids, earliest first
    num_voxels = min(len(starts), config.max_voxels)
    if len(starts) > config.max_voxels:
        log.warning(
            "cloud has %d voxels; keeping the first max_voxels=%d", len(starts), config.max_voxels
        )
    groups = appearance[:num_voxels]  # [V] kept groups in output order
    take = np.minimum(sizes[groups], config.max_points_per_voxel)  # [V] points averaged
    # Rows (into the sorted points) of the first `take` points of each kept group.
    offsets = np.arange(int(take.sum())) - np.repeat(np.cumsum(take) - take, take)
    rows = np.take(idx, np.take(by_key, np.repeat(starts[groups], take) + offsets))  # [K]
    vid = np.repeat(np.arange(num_voxels), take)  # [K] output voxel of each row
    # Columns past the cloud's (intensity of a 3-column cloud) are 0.
    sums = np.stack(
        [
            np.bincount(vid, weights=np.take(cloud[:, c], rows), minlength=num_voxels)
            if c < cloud.shape[1]
            else np.zeros(num_voxels)
            for c in range(num_feat)
        ],
        axis=1,
    )  # [V, F] float64
    ukey = sorted_key[starts[groups]]  # [V] linear key of each kept voxel
    coords = np.stack([ukey // (nx * ny), (ukey // nx) % ny, ukey % nx], axis=1)  # [V, 3] z, y, x
    return Voxels(
        features=(sums / take[:, None]).astype(np.float32),
        coords=coords.astype(np.int32),
        num_points=take.astype(np.int32),
    )


def _cells(column: np.ndarray, lo: float, size: float) -> np.ndarray:
    """floor((column - lo) / size) in float64, as a new contiguous vector."""
    cell = column.astype(np.float64)
    cell -= lo
    cell /= size
    return np.floor(cell, out=cell)


def stable_argsort(values: np.ndarray, bound: int) -> np.ndarray:
    """Indices that sort non-negative integers ``values`` (all < ``bound``) stably: equal values
    keep their input order, as ``np.argsort(kind="stable")``. torch's CPU radix sort does it,
    on 32-bit keys when ``bound`` <= 2^31: 1.1 ms for 117 k random keys below 4.8 M where
    numpy's sorts take 7-8 ms (AMD EPYC VM with AVX-512, one thread)."""
    small = bound <= np.iinfo(np.int32).max + 1
    keys = torch.from_numpy(np.ascontiguousarray(values, dtype=np.int32 if small else np.int64))
    return torch.sort(keys, stable=True).indices.numpy()


def _empty(num_features: int) -> Voxels:
    return Voxels(
        features=np.zeros((0, num_features), dtype=np.float32),
        coords=np.zeros((0, 3), dtype=np.int32),
        num_points=np.zeros(0, dtype=np.int32),
    )


def collate(voxels: list[Voxels]) -> tuple[np.ndarray, np.ndarray]:
    """Stacks per-cloud voxels into one batch.

    Returns:
        features [V, F] float32 and coords [V, 4] int32 as (batch index, z, y, x).
    """
    if not voxels:
        raise VoxelizeError("cannot collate an empty list of voxel sets")
    feats = [v.features for v in voxels]
    coords = [
        np.concatenate([np.full((len(v), 1), b, dtype=np.int32), v.coords], axis=1)
        for b, v in enumerate(voxels)
    ]
    return np.concatenate(feats, axis=0), np.concatenate(coords, axis=0)
