"""Collision-free placement of object footprints for the scene generator.

Footprints are convex polygons in the xy plane (bird's-eye-view box corners, or a sight
corridor). Two convex polygons are disjoint iff some edge normal of either separates their
projections (separating axis theorem); ``margin_m`` demands that much clearance on that axis.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import ConvexHull

from geometry.boxes import bev_corners


def footprint(box: np.ndarray) -> np.ndarray:
    """BEV corners [4, 2] of a box [7], counter-clockwise."""
    return bev_corners(np.asarray(box, dtype=np.float64).reshape(1, 7))[0]


def convex_hull(points: np.ndarray) -> np.ndarray:
    """Counter-clockwise convex hull [P, 2] of points [N, 2] (N >= 3, not collinear)."""
    pts = np.asarray(points, dtype=np.float64)
    return pts[ConvexHull(pts).vertices]


def _axes(poly: np.ndarray) -> np.ndarray:
    edges = np.roll(poly, -1, axis=0) - poly  # [P, 2]
    normals = np.stack([edges[:, 1], -edges[:, 0]], axis=1)
    return normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)


def convex_overlap(a: np.ndarray, b: np.ndarray, margin_m: float = 0.0) -> bool:
    """True if convex polygons a [P, 2] and b [Q, 2] come closer than ``margin_m`` on every
    separating axis (i.e. they overlap once grown by the margin)."""
    for axis in np.concatenate([_axes(a), _axes(b)]):
        pa, pb = a @ axis, b @ axis
        if pa.max() + margin_m <= pb.min() or pb.max() + margin_m <= pa.min():
            return False
    return True


class Placer:
    """Keeps the footprints placed so far and answers whether a new one is free."""

    def __init__(self) -> None:
        self._polys: list[np.ndarray] = []
        self._bounds = np.zeros((0, 4))  # [K, 4] xmin, ymin, xmax, ymax
        self._active = np.zeros(0, dtype=bool)  # [K] False once removed

    def is_free(self, poly: np.ndarray, margin_m: float = 0.0) -> bool:
        """True if ``poly`` [P, 2] keeps ``margin_m`` clear of every placed footprint."""
        lo, hi = poly.min(axis=0) - margin_m, poly.max(axis=0) + margin_m
        b = self._bounds
        near = np.flatnonzero(
            self._active
            & (b[:, 0] < hi[0])
            & (b[:, 2] > lo[0])
            & (b[:, 1] < hi[1])
            & (b[:, 3] > lo[1])
        )
        return not any(convex_overlap(poly, self._polys[k], margin_m) for k in near)

    def add(self, poly: np.ndarray) -> int:
        """Adds a footprint [P, 2]; returns its handle for ``set_active``."""
        self._polys.append(poly)
        self._bounds = np.vstack([self._bounds, np.concatenate([poly.min(0), poly.max(0)])])
        self._active = np.append(self._active, True)
        return len(self._polys) - 1

    def set_active(self, handle: int, active: bool) -> None:
        """Ignores (False) or again checks (True) the footprint ``handle``."""
        self._active[handle] = active

    def try_add(self, poly: np.ndarray, margin_m: float = 0.0) -> bool:
        """Adds ``poly`` if it is free; returns whether it was added."""
        if not self.is_free(poly, margin_m):
            return False
        self.add(poly)
        return True
