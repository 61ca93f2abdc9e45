"""Oriented 3D boxes ``[x, y, z, length, width, height, yaw]`` and the points inside them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geometry.transforms import rotation_z, wrap_angle

BOX_DIM = 7  # x, y, z, length, width, height, yaw

# Corner order: bottom face counter-clockwise from (+l/2, +w/2), then the top face the same way.
_UNIT_CORNERS = 0.5 * np.array(
    [
        [1, 1, -1],
        [-1, 1, -1],
        [-1, -1, -1],
        [1, -1, -1],
        [1, 1, 1],
        [-1, 1, 1],
        [-1, -1, 1],
        [1, -1, 1],
    ],
    dtype=np.float64,
)


class BoxError(ValueError):
    """A box array has the wrong shape or non-finite / non-positive values."""


@dataclass(frozen=True)
class Box3D:
    """One labelled oriented box.

    Attributes:
        center_m: box centre (x, y, z) in metres, in the frame the box is expressed in.
        size_m: (length, width, height) in metres; length is along the box's own x axis.
        yaw_rad: rotation about +z, radians.
        label: class name ("car", "van", "truck", "bus", ...).
        score: detector confidence in [0, 1]; 1.0 for ground truth.
    """

    center_m: tuple[float, float, float]
    size_m: tuple[float, float, float]
    yaw_rad: float
    label: str = "car"
    score: float = 1.0

    def as_array(self) -> np.ndarray:
        """The box as ``[x, y, z, l, w, h, yaw]`` float64 [7]."""
        return np.array([*self.center_m, *self.size_m, self.yaw_rad], dtype=np.float64)

    @classmethod
    def from_array(cls, box: np.ndarray, label: str = "car", score: float = 1.0) -> Box3D:
        b = validate_boxes(np.asarray(box, dtype=np.float64).reshape(1, BOX_DIM))[0]
        return cls(
            (float(b[0]), float(b[1]), float(b[2])),
            (float(b[3]), float(b[4]), float(b[5])),
            float(b[6]),
            label,
            float(score),
        )


def validate_boxes(boxes: np.ndarray) -> np.ndarray:
    """Checks boxes [N, 7] (finite, positive sizes) and returns them as float64.

    Raises:
        BoxError: wrong shape, a non-finite value, or a size <= 0.
    """
    b = np.asarray(boxes, dtype=np.float64)
    if b.ndim != 2 or b.shape[1] != BOX_DIM:
        raise BoxError(f"boxes must have shape [N, {BOX_DIM}], got {list(b.shape)}")
    if not np.all(np.isfinite(b)):
        raise BoxError("boxes contain NaN or Inf")
    if np.any(b[:, 3:6] <= 0.0):
        raise BoxError("box sizes (length, width, height) must be > 0")
    return b


def box_corners(boxes: np.ndarray) -> np.ndarray:
    """Corners [N, 8, 3] of boxes [N, 7] (order: see ``_UNIT_CORNERS``)."""
    b = validate_boxes(boxes)
    local = _UNIT_CORNERS[None, :, :] * b[:, None, 3:6]  # [N, 8, 3]
    c, s = np.cos(b[:, 6]), np.sin(b[:, 6])
    rot = np.zeros((len(b), 3, 3))
    rot[:, 0, 0], rot[:, 0, 1], rot[:, 1, 0], rot[:, 1, 1], rot[:, 2, 2] = c, -s, s, c, 1.0
    return np.einsum("nij,nkj->nki", rot, local) + b[:, None, 0:3]


def bev_corners(boxes: np.ndarray) -> np.ndarray:
    """Bird's-eye-view corners [N, 4, 2], counter-clockwise."""
    return box_corners(boxes)[:, :4, :2]


def points_in_box_mask(points: np.ndarray, box: np.ndarray, margin_m: float = 0.0) -> np.ndarray:
    """Boolean mask [N] of points [N, >=3] inside one box [7] grown by ``margin_m``."""
    b = validate_boxes(np.asarray(box).reshape(1, BOX_DIM))[0]
    local = (np.asarray(points)[:, :3] - b[:3]) @ rotation_z(b[6])  # world -> box frame
    half = 0.5 * b[3:6] + margin_m
    return np.all(np.abs(local) <= half, axis=1)


def points_in_boxes(points: np.ndarray, boxes: np.ndarray, margin_m: float = 0.0) -> np.ndarray:
    """Index [N] of the first box [M, 7] containing each point, or -1."""
    b = validate_boxes(boxes)
    owner = np.full(len(points), -1, dtype=np.int64)
    for i in range(len(b)):
        free = owner < 0
        if not np.any(free):
            break
        inside = points_in_box_mask(np.asarray(points)[free], b[i], margin_m)
        idx = np.flatnonzero(free)[inside]
        owner[idx] = i
    return owner


def box_halfspaces(box: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Polytope {p : A p <= b} of a box [7]: A [6, 3], b [6]."""
    bx = validate_boxes(np.asarray(box).reshape(1, BOX_DIM))[0]
    rot = rotation_z(bx[6])
    axes = rot.T  # rows: box x, y, z axes in the world frame
    normals = np.vstack([axes, -axes])
    half = np.concatenate([0.5 * bx[3:6], 0.5 * bx[3:6]])
    return normals, normals @ bx[:3] + half


def normalize_yaw(boxes: np.ndarray) -> np.ndarray:
    """Copy of boxes with yaw wrapped to [-pi, pi)."""
    out = np.array(boxes, dtype=np.float64, copy=True)
    out[:, 6] = wrap_angle(out[:, 6])
    return out
