"""The ground of a lidar map: per-scan ground fit, a 2.5-D ground grid and its completion.

A street camera looks at the ground for a third or more of its image, and a spinning lidar
samples the ground worst of all: nothing inside the ring of its lowest beam (about 4 m around
a 1.8 m-high sensor tilted 25 degrees down), and, farther out, rings that grow apart with the
square of the range. Free-space carving also erodes the ground: at grazing incidence a
return's direction bin holds ground closer than the return. So the ground gets its own model
(the usual split of lidar mapping into ground and non-ground, e.g. Zermas et al. 2017):

* **Ground fit** (per scan). Points within ``ground_fit_range_m`` (horizontal) of the sensor
  are fitted with a plane ``z = a + b dx + c dy`` by two rounds of least squares on the inliers
  of a low start height (the 5th percentile of z; inliers within 0.3 m, then within
  ``ground_tolerance_m``). A fit needs ``MIN_GROUND_POINTS`` inliers and a normal within
  ``MAX_SLOPE_DEG`` of vertical, else the scan has no ground. Points within
  ``ground_tolerance_m`` of the plane are ground; they go into the grid, not the voxels.
* **Ground grid**: cells of ``ground_cell_m`` hold the ground returns' height (sum, count).
* **Completion**: per scan and 2-degree azimuth bin, the ground is taken to reach from the
  sensor out to the farthest ground return of that bin (within ``ground_fill_range_m``); bins
  without ground returns get the blind radius (the nearest ground return of the scan: the
  disc under the lowest beam). Every grid cell in that region that no ground return hit gets
  the fitted plane's height. So the ground under and just around the robot, and between the
  rings, is filled from the lidar's own ground fit, never from ground truth.

Each ground cell becomes one flat Gaussian facing up at the cell centre (observed mean height,
else the filled one): a regular layer whose colour comes from the uploaded frames like every
other Gaussian's.
"""

from __future__ import annotations

import math

import numpy as np

#: Inliers a ground plane needs (a 16-beam scan has thousands of ground returns).
MIN_GROUND_POINTS = 50
#: Steepest ground plane accepted (deg); steeper fits are walls or ramps, not the ground.
MAX_SLOPE_DEG = 15.0
#: Azimuth bin of the completion (deg).
FILL_BIN_DEG = 2.0
#: Key of a ground cell: the voxel key with this reserved z index (no point is 262 km down).
GROUND_Z_INDEX = -(1 << 20)


def fit_ground_plane(
    rel: np.ndarray,  # [N, 3] points minus the sensor origin
    fit_range_m: float,
    tolerance_m: float,
) -> np.ndarray | None:
    """Plane (a, b, c) of ``z_rel = a + b dx + c dy`` near the sensor, or None (see above)."""
    horizontal = np.hypot(rel[:, 0], rel[:, 1])
    near = rel[horizontal < fit_range_m]
    if len(near) < MIN_GROUND_POINTS:
        return None
    z0 = float(np.percentile(near[:, 2], 5.0))
    inliers = near[np.abs(near[:, 2] - z0) < 0.3]
    plane = None
    for _ in range(2):
        if len(inliers) < MIN_GROUND_POINTS:
            return None
        basis = np.column_stack([np.ones(len(inliers)), inliers[:, 0], inliers[:, 1]])
        plane, *_ = np.linalg.lstsq(basis, inliers[:, 2], rcond=None)
        residual = near[:, 2] - (plane[0] + plane[1] * near[:, 0] + plane[2] * near[:, 1])
        inliers = near[np.abs(residual) < tolerance_m]
    if plane is None or math.hypot(plane[1], plane[2]) > math.tan(math.radians(MAX_SLOPE_DEG)):
        return None
    return plane


def plane_height(plane: np.ndarray, dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
    return plane[0] + plane[1] * dx + plane[2] * dy


class GroundGrid:
    """Ground cells: observed heights and the completion (module docstring)."""

    def __init__(self, cell_m: float, fill_range_m: float) -> None:
        self.cell_m, self.fill_range_m = cell_m, fill_range_m
        self.keys = np.zeros(0, dtype=np.int64)  # [C] sorted (i, j) keys
        self.obs = np.zeros((0, 2))  # [C] (sum of z, count) of ground returns
        self.fill = np.zeros((0, 2))  # [C] (sum of z, count) of completions

    @staticmethod
    def _key(ij: np.ndarray) -> np.ndarray:  # [N, 2] int -> [N] int64
        ij = ij + (1 << 20)
        return (ij[:, 0] << 21) | ij[:, 1]

    def _add(self, keys: np.ndarray, z: np.ndarray, target: str) -> None:
        uniq, inverse = np.unique(keys, return_inverse=True)
        add = np.zeros((len(uniq), 2))
        np.add.at(add[:, 0], inverse, z)
        np.add.at(add[:, 1], inverse, 1.0)
        pos = np.searchsorted(self.keys, uniq)
        found = pos < len(self.keys)
        found[found] = self.keys[pos[found]] == uniq[found]
        getattr(self, target)[pos[found]] += add[found]
        if (~found).any():
            new = ~found
            keys_all = np.concatenate([self.keys, uniq[new]])
            order = np.argsort(keys_all, kind="stable")
            self.keys = keys_all[order]
            fresh = np.zeros((int(new.sum()), 2))
            other = "fill" if target == "obs" else "obs"
            setattr(self, target, np.concatenate([getattr(self, target), add[new]])[order])
            setattr(self, other, np.concatenate([getattr(self, other), fresh])[order])

    def insert(self, ground: np.ndarray, origin: np.ndarray, plane: np.ndarray) -> None:
        """Adds a scan's ground returns [G, 3] (world) and completes the ground around
        ``origin`` [3] with ``plane`` (fitted in coordinates relative to the origin)."""
        c = self.cell_m
        if len(ground):
            self._add(self._key(np.floor(ground[:, :2] / c).astype(np.int64)), ground[:, 2], "obs")
        rel = ground[:, :2] - origin[:2]
        horizontal = np.hypot(rel[:, 0], rel[:, 1])
        bins = round(360.0 / FILL_BIN_DEG)
        reach = np.zeros(bins)
        blind = float(horizontal.min()) if len(horizontal) else 0.0
        inside = horizontal <= self.fill_range_m
        azimuth = _azimuth_bin(rel[inside], bins)
        np.maximum.at(reach, azimuth, horizontal[inside])
        reach = np.maximum(reach, blind)
        # Candidate cells: the square around the origin, kept where inside the reach.
        r = math.ceil(self.fill_range_m / c)
        i0, j0 = math.floor(origin[0] / c), math.floor(origin[1] / c)
        ii, jj = np.meshgrid(np.arange(i0 - r, i0 + r + 1), np.arange(j0 - r, j0 + r + 1))
        ij = np.column_stack([ii.ravel(), jj.ravel()])
        centre = (ij + 0.5) * c - origin[:2]
        dist = np.hypot(centre[:, 0], centre[:, 1])
        keep = dist <= reach[_azimuth_bin(centre, bins)]
        ij, centre = ij[keep], centre[keep]
        z = origin[2] + plane_height(plane, centre[:, 0], centre[:, 1])
        self._add(self._key(ij), z, "fill")

    def cells(self) -> tuple[np.ndarray, np.ndarray]:
        """(ij [C, 2] cell indices, height [C] (m)) of every ground cell."""
        ij = np.column_stack(
            [(self.keys >> 21) - (1 << 20), (self.keys & ((1 << 21) - 1)) - (1 << 20)]
        )
        observed = self.obs[:, 1] > 0
        z = np.where(
            observed,
            self.obs[:, 0] / np.maximum(self.obs[:, 1], 1.0),
            self.fill[:, 0] / np.maximum(self.fill[:, 1], 1.0),
        )
        return ij, z


def _azimuth_bin(xy: np.ndarray, bins: int) -> np.ndarray:
    """Azimuth bin [N] in [0, bins) of horizontal offsets [N, 2]."""
    angle = np.arctan2(xy[:, 1], xy[:, 0]) + math.pi  # [0, 2 pi]
    return np.minimum((angle * bins / (2.0 * math.pi)).astype(np.int64), bins - 1)
