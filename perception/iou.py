"""Exact IoU of oriented boxes: bird's-eye view (rotated rectangles) and 3D.

Formulation: the BEV footprints of two boxes are convex quadrilaterals A and B. Their intersection
is the convex polygon whose vertices are the corners of A inside B, the corners of B inside A and
the crossings of A's edges with B's edges; sorted by angle around their mean, the shoelace formula
gives its area exactly (up to float rounding), as in mmcv's ``box_iou_rotated``.
- BEV IoU = area(A ∩ B) / (area(A) + area(B) - area(A ∩ B)).
- 3D IoU = area(A ∩ B) * overlap of the z intervals / (vol(A) + vol(B) - intersection volume).
All pairs are evaluated at once in numpy; pairs whose circumscribed circles are apart are
skipped (their IoU is 0).
"""

from __future__ import annotations

import numpy as np

from geometry.boxes import BoxError, bev_corners, validate_boxes
from perception.errors import PerceptionError

# Inside/crossing tests accept this much (m^2 of cross product) of rounding, so that shared edges
# and corners of identical or touching boxes count as inside; it shifts areas by < 1e-9 m^2.
_EPS = 1e-9


class IoUError(PerceptionError):
    """Box arrays given to an IoU function are malformed."""


def _cross(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return u[..., 0] * v[..., 1] - u[..., 1] * v[..., 0]


def _inside(points: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """Mask [P, n] of points [P, n, 2] inside counter-clockwise quads [P, 4, 2]."""
    edge = np.roll(poly, -1, axis=1) - poly  # [P, 4, 2]
    rel = points[:, :, None, :] - poly[:, None, :, :]  # [P, n, 4, 2]
    return np.all(_cross(edge[:, None], rel) >= -_EPS, axis=2)


def _crossings(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Crossing points [P, 16, 2] of the edges of quads a and b [P, 4, 2], and a valid mask."""
    r = (np.roll(a, -1, axis=1) - a)[:, :, None, :]  # [P, 4, 1, 2] edges of a
    s = (np.roll(b, -1, axis=1) - b)[:, None, :, :]  # [P, 1, 4, 2] edges of b
    qp = b[:, None, :, :] - a[:, :, None, :]  # [P, 4, 4, 2]
    denom = _cross(r, s)  # [P, 4, 4]
    parallel = np.abs(denom) < 1e-12
    safe = np.where(parallel, 1.0, denom)
    t = _cross(qp, s) / safe
    u = _cross(qp, r) / safe
    tol = 1e-9
    valid = ~parallel & (t >= -tol) & (t <= 1 + tol) & (u >= -tol) & (u <= 1 + tol)
    pts = a[:, :, None, :] + t[..., None] * r  # [P, 4, 4, 2]
    return pts.reshape(len(a), 16, 2), valid.reshape(len(a), 16)


def quad_intersection_area(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Areas [P] of the intersections of counter-clockwise convex quads a, b [P, 4, 2]."""
    cross_pts, cross_ok = _crossings(a, b)
    pts = np.concatenate([a, b, cross_pts], axis=1)  # [P, 24, 2]
    valid = np.concatenate([_inside(a, b), _inside(b, a), cross_ok], axis=1)  # [P, 24]
    count = valid.sum(axis=1)  # [P]
    centre = (pts * valid[..., None]).sum(axis=1) / np.maximum(count, 1)[:, None]  # [P, 2]
    rel = pts - centre[:, None, :]
    angle = np.where(valid, np.arctan2(rel[..., 1], rel[..., 0]), np.inf)  # [P, 24]
    order = np.argsort(angle, axis=1)
    ring = np.take_along_axis(rel, order[..., None], axis=1)  # [P, 24, 2] valid ones first
    # Invalid slots repeat the first vertex: they add zero-area terms to the shoelace sum.
    slot_valid = np.arange(ring.shape[1])[None, :] < count[:, None]
    ring = np.where(slot_valid[..., None], ring, ring[:, :1, :])
    area = 0.5 * np.abs(_cross(ring, np.roll(ring, -1, axis=1)).sum(axis=1))
    return np.where(count >= 3, area, 0.0)


def _check(boxes: np.ndarray, name: str) -> np.ndarray:
    try:
        return validate_boxes(np.asarray(boxes, dtype=np.float64).reshape(-1, 7))
    except (BoxError, ValueError) as err:
        raise IoUError(f"{name}: {err}") from err


def _bev_intersection(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection areas [N, M] of the footprints of checked boxes a [N, 7] and b [M, 7]."""
    inter = np.zeros((len(a), len(b)))
    if len(a) == 0 or len(b) == 0:
        return inter
    radius_a = 0.5 * np.hypot(a[:, 3], a[:, 4])
    radius_b = 0.5 * np.hypot(b[:, 3], b[:, 4])
    dist = np.linalg.norm(a[:, None, :2] - b[None, :, :2], axis=2)  # [N, M]
    ia, ib = np.nonzero(dist < radius_a[:, None] + radius_b[None, :])
    if len(ia):
        inter[ia, ib] = quad_intersection_area(bev_corners(a)[ia], bev_corners(b)[ib])
    return inter


def bev_iou(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """BEV IoU [N, M] of boxes [N, 7] and [M, 7] (``[x, y, z, l, w, h, yaw]``).

    Raises:
        IoUError: a box array is not [*, 7], not finite, or has a size <= 0.
    """
    a, b = _check(boxes_a, "boxes_a"), _check(boxes_b, "boxes_b")
    inter = _bev_intersection(a, b)
    union = (a[:, 3] * a[:, 4])[:, None] + (b[:, 3] * b[:, 4])[None, :] - inter
    return np.clip(inter / union, 0.0, 1.0) if inter.size else inter


def iou_3d(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """3D IoU [N, M] of boxes [N, 7] and [M, 7] rotated about z.

    Raises:
        IoUError: a box array is not [*, 7], not finite, or has a size <= 0.
    """
    a, b = _check(boxes_a, "boxes_a"), _check(boxes_b, "boxes_b")
    inter = _bev_intersection(a, b)
    top = np.minimum((a[:, 2] + a[:, 5] / 2)[:, None], (b[:, 2] + b[:, 5] / 2)[None, :])
    bottom = np.maximum((a[:, 2] - a[:, 5] / 2)[:, None], (b[:, 2] - b[:, 5] / 2)[None, :])
    inter_vol = inter * np.clip(top - bottom, 0.0, None)
    vol_a = a[:, 3] * a[:, 4] * a[:, 5]
    vol_b = b[:, 3] * b[:, 4] * b[:, 5]
    union = vol_a[:, None] + vol_b[None, :] - inter_vol
    return np.clip(inter_vol / union, 0.0, 1.0) if inter.size else inter_vol
