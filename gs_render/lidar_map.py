"""Geometry of a Gaussian map from accumulated lidar scans (GSRMR, arXiv 2504.13697).

The robot's own lidar places the Gaussians; no simulator surface or ground truth enters.

* **Accumulation.** World-frame returns are binned into voxels of edge ``voxel_m``; a voxel
  keeps the sum of its points, the sum of their outer products (for the local plane), the
  number of points, the number of scans that hit it, and the mean direction it was seen from.
* **Free-space carving** (dynamic objects). Moving vehicles leave trails of voxels. Each scan
  is binned by (azimuth, elevation) into a coarse range image holding the *nearest* return per
  bin; a map voxel inside a bin with a return, closer to the sensor than that return by more
  than ``carve_margin_m`` and within ``carve_radius_m`` of that return's ray, was seen
  through: its ``carved`` count grows (the ray test matters at grazing incidence, where a
  bin holds ground closer than its return that no ray passed through; a bin without a return
  carves nothing). A voxel is kept while it was hit in at least ``min_scans`` scans and in
  more scans than it was seen through.
* **Ground** (``ground``, :mod:`gs_render.ground`): each scan's ground plane is fitted near
  the sensor; returns on it go to a 2.5-D ground grid instead of the voxels, and the grid is
  completed under and around the sensor from the fit; each ground cell is one flat Gaussian.
* **Gaussians** (``gaussians``): mean = the voxel's centroid; the normal is the eigenvector of
  the smallest eigenvalue of the points' covariance when that is clearly flat, else the mean
  view direction reversed; the in-plane standard deviation comes from the local density,
  ``sigma_per_spacing`` times the mean distance to the ``neighbours`` nearest kept voxels
  (clipped to [``min_sigma_m``, ``max_sigma_m``]), the thickness is ``thickness_ratio`` of it;
  the opacity grows with the number of points, ``o = o_max (1 - exp(-n / 2))``.

Raises:
    LidarMapError: a bad setting or a malformed scan.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from gs_render.ground import GROUND_Z_INDEX, GroundGrid, fit_ground_plane, plane_height
from gs_render.model import normals_to_quats


class LidarMapError(ValueError):
    """A lidar-map setting or scan is malformed (the message names it)."""


@dataclass(frozen=True)
class LidarMapConfig:
    """Voxel accumulation, carving and Gaussian shape settings."""

    voxel_m: float = 0.25  # voxel edge (m), [0.02, 5]
    min_scans: int = 2  # scans that must hit a voxel before it becomes a Gaussian, [1, 100]
    carve_margin_m: float = 0.5  # free-space margin in front of a return (m), [0, 10]
    carve_bin_deg: float = 1.0  # azimuth/elevation bin of the carving range image (deg)
    neighbours: int = 4  # k of the local-density spacing, [1, 32]
    sigma_per_spacing: float = 0.8  # in-plane std / local spacing, (0, 5]
    min_sigma_m: float = 0.05  # smallest in-plane std (m), > 0
    max_sigma_m: float = 1.0  # largest in-plane std (m), >= min_sigma_m
    thickness_ratio: float = 0.15  # normal-axis std / in-plane std, (0, 1]
    max_opacity: float = 0.95  # opacity of a densely hit voxel, (0, 1)
    max_range_m: float = 100.0  # returns farther than this are not accumulated (m)
    carve_radius_m: float = 0.15  # a voxel is seen through only this close to a ray (m)
    ground: bool = True  # fit and complete the ground (gs_render.ground)
    ground_tolerance_m: float = 0.2  # returns this close to the fitted plane are ground (m)
    ground_fit_range_m: float = 40.0  # horizontal range of the per-scan ground fit (m)
    ground_fill_range_m: float = 40.0  # horizontal range of the ground completion (m)
    ground_cell_m: float = 0.25  # edge of a ground cell (m)
    ground_sigma_per_cell: float = 0.8  # in-plane std of a ground Gaussian / cell edge

    def __post_init__(self) -> None:
        checks = {
            "voxel_m": (0.02, 5.0),
            "carve_margin_m": (0.0, 10.0),
            "carve_bin_deg": (0.05, 20.0),
            "sigma_per_spacing": (1e-6, 5.0),
            "min_sigma_m": (1e-4, 10.0),
            "max_sigma_m": (self.min_sigma_m, 100.0),
            "thickness_ratio": (1e-3, 1.0),
            "max_opacity": (1.0 / 255.0, 0.999),
            "max_range_m": (1.0, 1000.0),
            "carve_radius_m": (0.0, 10.0),
            "ground_tolerance_m": (0.01, 2.0),
            "ground_fit_range_m": (1.0, 1000.0),
            "ground_fill_range_m": (0.0, 200.0),
            "ground_cell_m": (0.02, 5.0),
            "ground_sigma_per_cell": (1e-3, 5.0),
        }
        for name, (low, high) in checks.items():
            value = getattr(self, name)
            if not (math.isfinite(value) and low <= value <= high):
                raise LidarMapError(f"{name}={value!r} outside [{low}, {high}]")
        for name, (low, high) in {"min_scans": (1, 100), "neighbours": (1, 32)}.items():
            value = getattr(self, name)
            if not isinstance(value, int) or not low <= value <= high:
                raise LidarMapError(f"{name}={value!r} must be an int in [{low}, {high}]")


@dataclass(frozen=True)
class MapGeometry:
    """Kept voxels as Gaussian geometry (arrays aligned; ``keys`` sorted)."""

    keys: np.ndarray  # [G] int64 voxel keys
    means: np.ndarray  # [G, 3] (m)
    quats: np.ndarray  # [G, 4] (w, x, y, z)
    scales: np.ndarray  # [G, 3] (m)
    opacities: np.ndarray  # [G]


_FIELDS = ("sums", "outer", "points", "scans", "carved", "view")


class LidarVoxelMap:
    """Accumulates scans; ``gaussians()`` gives the current geometry."""

    def __init__(self, config: LidarMapConfig | None = None) -> None:
        self.config = config or LidarMapConfig()
        self.keys = np.zeros(0, dtype=np.int64)  # [V] sorted
        self.sums = np.zeros((0, 3))  # [V, 3] sum of points
        self.outer = np.zeros((0, 6))  # [V, 6] sum of xx, yy, zz, xy, xz, yz
        self.points = np.zeros(0)  # [V] number of points
        self.scans = np.zeros(0)  # [V] scans that hit the voxel
        self.carved = np.zeros(0)  # [V] scans that saw through it
        self.view = np.zeros((0, 3))  # [V, 3] sum of unit sensor -> point directions
        self.num_scans = 0
        self.ground = GroundGrid(self.config.ground_cell_m, self.config.ground_fill_range_m)

    def _key(self, ijk: np.ndarray) -> np.ndarray:  # [N, 3] int -> [N] int64
        ijk = ijk + (1 << 20)  # 21 bits per axis: +-1M voxels
        return (ijk[:, 0] << 42) | (ijk[:, 1] << 21) | ijk[:, 2]

    def insert(self, points_world: np.ndarray, origin_world: np.ndarray) -> None:
        """Adds one scan: returns [N, >=3] in the world frame, sensor origin [3] (m).

        Raises:
            LidarMapError: wrong shapes or non-finite values.
        """
        pts = np.asarray(points_world, dtype=np.float64)
        origin = np.asarray(origin_world, dtype=np.float64)
        if pts.ndim != 2 or pts.shape[1] < 3 or origin.shape != (3,):
            raise LidarMapError(
                f"need points [N, 3+] and origin [3], got {pts.shape}, {origin.shape}"
            )
        pts = pts[:, :3]
        if not (np.isfinite(pts).all() and np.isfinite(origin).all()):
            raise LidarMapError("scan points or origin contain NaN or infinite values")
        rel = pts - origin
        rng = np.linalg.norm(rel, axis=1)
        keep = (rng > 1e-3) & (rng <= self.config.max_range_m)
        pts, rel, rng = pts[keep], rel[keep], rng[keep]
        self._carve(origin, rel, rng)  # every return, ground ones too, shows free space
        self.num_scans += 1
        cfg = self.config
        plane = (
            fit_ground_plane(rel, cfg.ground_fit_range_m, cfg.ground_tolerance_m)
            if cfg.ground
            else None
        )
        if plane is not None:
            horizontal = np.hypot(rel[:, 0], rel[:, 1])
            on_ground = (horizontal < cfg.ground_fit_range_m) & (
                np.abs(rel[:, 2] - plane_height(plane, rel[:, 0], rel[:, 1]))
                < cfg.ground_tolerance_m
            )
            self.ground.insert(pts[on_ground], origin, plane)
            pts, rel, rng = pts[~on_ground], rel[~on_ground], rng[~on_ground]
        if len(pts) == 0:
            return
        keys = self._key(np.floor(pts / self.config.voxel_m).astype(np.int64))
        uniq, inverse = np.unique(keys, return_inverse=True)
        n = len(uniq)
        x, y, z = pts.T
        add = {
            "sums": _segment_sum(pts, inverse, n),
            "outer": _segment_sum(
                np.stack([x * x, y * y, z * z, x * y, x * z, y * z], 1), inverse, n
            ),
            "points": np.bincount(inverse, minlength=n).astype(np.float64),
            "scans": np.ones(n),
            "carved": np.zeros(n),
            "view": _segment_sum(rel / rng[:, None], inverse, n),
        }
        self._merge(uniq, add)

    def _merge(self, uniq: np.ndarray, add: dict[str, np.ndarray]) -> None:
        pos = np.searchsorted(self.keys, uniq)
        found = pos < len(self.keys)
        found[found] = self.keys[pos[found]] == uniq[found]
        for name in _FIELDS:
            getattr(self, name)[pos[found]] += add[name][found]
        new = ~found
        if new.any():
            keys = np.concatenate([self.keys, uniq[new]])
            order = np.argsort(keys, kind="stable")
            self.keys = keys[order]
            for name in _FIELDS:
                merged = np.concatenate([getattr(self, name), add[name][new]])
                setattr(self, name, merged[order])

    def _carve(self, origin: np.ndarray, rel: np.ndarray, rng: np.ndarray) -> None:
        """Counts map voxels seen through by this scan (module docstring)."""
        if len(self.keys) == 0 or len(rng) == 0:
            return
        cfg = self.config
        bins = _direction_bins(rel, rng, cfg.carve_bin_deg)
        # The nearest return of each bin and its own direction (the ray that saw free space).
        order = np.lexsort((rng, bins))
        first = order[np.r_[True, bins[order][1:] != bins[order][:-1]]]
        nearest = np.full(bins.max() + 1, np.inf)
        nearest[bins[first]] = rng[first]
        ray = np.zeros((len(nearest), 3))
        ray[bins[first]] = rel[first] / rng[first, None]
        centre = self.sums / np.maximum(self.points, 1.0)[:, None] - origin
        dist = np.linalg.norm(centre, axis=1)
        close = np.flatnonzero((dist > 1e-3) & (dist < cfg.max_range_m))
        vb = _direction_bins(centre[close], dist[close], cfg.carve_bin_deg)
        inside = np.flatnonzero(vb < len(nearest))
        c, b = centre[close[inside]], vb[inside]
        along = np.einsum("ij,ij->i", c, ray[b])
        # Seen through: in front of the return by the margin, and on the ray itself (within
        # carve_radius_m of it), not merely in its direction bin: at grazing incidence a bin
        # holds surface closer than its return that no ray passed through.
        off_ray = np.linalg.norm(c - along[:, None] * ray[b], axis=1)
        through = (dist[close[inside]] < nearest[b] - cfg.carve_margin_m) & (
            off_ray < cfg.carve_radius_m
        )
        self.carved[close[inside[through]]] += 1.0

    def kept(self) -> np.ndarray:
        """[V] bool: voxels that are Gaussians (hit often enough, not carved away)."""
        return (self.scans >= self.config.min_scans) & (self.scans > self.carved)

    def gaussians(self) -> MapGeometry:
        """The kept voxels as Gaussians (module docstring)."""
        cfg = self.config
        idx = np.flatnonzero(self.kept())
        n_pts = self.points[idx]
        means = self.sums[idx] / n_pts[:, None]
        if len(idx) == 0:
            return self._ground_gaussians()
        normals = _normals(self.outer[idx], means, n_pts, -self.view[idx])
        k = min(cfg.neighbours + 1, len(idx))
        dist, _ = cKDTree(means).query(means, k=k)
        spacing = dist[:, 1:].mean(axis=1) if k > 1 else np.full(len(idx), cfg.voxel_m)
        sigma = np.clip(cfg.sigma_per_spacing * spacing, cfg.min_sigma_m, cfg.max_sigma_m)
        scales = np.stack([sigma, sigma, cfg.thickness_ratio * sigma], axis=1)
        opac = cfg.max_opacity * (1.0 - np.exp(-n_pts / 2.0))
        voxels = MapGeometry(self.keys[idx], means, normals_to_quats(normals), scales, opac)
        return _concat(voxels, self._ground_gaussians())

    def _ground_gaussians(self) -> MapGeometry:
        """One flat, upward-facing Gaussian per ground cell (gs_render.ground)."""
        cfg = self.config
        ij, z = self.ground.cells()
        n = len(z)
        cell = cfg.ground_cell_m
        means = np.column_stack([(ij + 0.5) * cell, z])
        sigma = cfg.ground_sigma_per_cell * cell
        scales = np.tile([sigma, sigma, cfg.thickness_ratio * sigma], (n, 1))
        quats = np.tile([1.0, 0.0, 0.0, 0.0], (n, 1))
        keys = self._key(np.column_stack([ij, np.full(n, GROUND_Z_INDEX, dtype=np.int64)]))
        return MapGeometry(keys, means, quats, scales, np.full(n, cfg.max_opacity))


def _concat(a: MapGeometry, b: MapGeometry) -> MapGeometry:
    """Both geometries in one, keys sorted (voxel and ground keys never collide)."""
    keys = np.concatenate([a.keys, b.keys])
    order = np.argsort(keys, kind="stable")
    parts = [np.concatenate([getattr(a, f), getattr(b, f)])[order] for f in _GEOMETRY_FIELDS]
    return MapGeometry(keys[order], *parts)


_GEOMETRY_FIELDS = ("means", "quats", "scales", "opacities")


def _segment_sum(values: np.ndarray, inverse: np.ndarray, n: int) -> np.ndarray:
    """Per-segment sums [n, C] of rows [N, C] grouped by ``inverse`` [N]."""
    out = np.zeros((n, values.shape[1]))
    np.add.at(out, inverse, values)
    return out


def _direction_bins(rel: np.ndarray, rng: np.ndarray, bin_deg: float) -> np.ndarray:
    """Bin index [N] of unit directions by azimuth and elevation (bins of ``bin_deg``)."""
    azimuth = np.degrees(np.arctan2(rel[:, 1], rel[:, 0])) + 180.0  # [0, 360]
    elevation = np.degrees(np.arcsin(np.clip(rel[:, 2] / rng, -1.0, 1.0))) + 90.0  # [0, 180]
    cols = math.ceil(360.0 / bin_deg) + 1
    return (elevation // bin_deg).astype(np.int64) * cols + (azimuth // bin_deg).astype(np.int64)


def _normals(
    outer: np.ndarray,  # [G, 6]
    means: np.ndarray,  # [G, 3]
    n_pts: np.ndarray,  # [G]
    toward_sensor: np.ndarray,  # [G, 3] (not normalised)
) -> np.ndarray:
    """Unit normals [G, 3] facing the sensor: the covariance's flattest axis where the voxel's
    points span a plane (>= 3 points, smallest eigenvalue < 1/4 of the middle one), else the
    direction back to the sensor."""
    xx, yy, zz, xy, xz, yz = (outer / n_pts[:, None]).T
    mx, my, mz = means.T
    cov = np.stack(
        [
            np.stack([xx - mx * mx, xy - mx * my, xz - mx * mz], -1),
            np.stack([xy - mx * my, yy - my * my, yz - my * mz], -1),
            np.stack([xz - mx * mz, yz - my * mz, zz - mz * mz], -1),
        ],
        axis=1,
    )
    evals, evecs = np.linalg.eigh(cov)  # ascending
    view = toward_sensor / np.maximum(np.linalg.norm(toward_sensor, axis=1, keepdims=True), 1e-12)
    flat = (n_pts >= 3) & (evals[:, 0] < 0.25 * np.maximum(evals[:, 1], 1e-12))
    normal = np.where(flat[:, None], evecs[:, :, 0], view)
    flip = np.einsum("ij,ij->i", normal, view) < 0.0
    normal[flip] *= -1.0
    return normal / np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-12)
