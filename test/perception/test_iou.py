"""Exact rotated IoU: known values, a Sutherland-Hodgman reference, symmetry and bounds."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geometry.boxes import bev_corners
from perception.iou import IoUError, bev_iou, iou_3d

# Pure float64 geometry on metre-scale boxes: results agree to ~1e-12; 1e-9 leaves headroom.
TOL = 1e-9


def reference_bev_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Sutherland-Hodgman: clip polygon A by each edge of B, then the shoelace area."""

    def area(poly: list[np.ndarray]) -> float:
        return 0.5 * abs(
            sum(p[0] * q[1] - p[1] * q[0] for p, q in zip(poly, poly[1:] + poly[:1], strict=True))
        )

    def side(p: np.ndarray, e0: np.ndarray, e1: np.ndarray) -> float:
        return (e1[0] - e0[0]) * (p[1] - e0[1]) - (e1[1] - e0[1]) * (p[0] - e0[0])

    poly = list(bev_corners(a[None])[0])
    clip = list(bev_corners(b[None])[0])
    for e0, e1 in zip(clip, clip[1:] + clip[:1], strict=True):
        if not poly:
            break
        out = []
        for p, q in zip(poly, poly[1:] + poly[:1], strict=True):
            sp, sq = side(p, e0, e1), side(q, e0, e1)
            if sp >= 0:
                out.append(p)
            if (sp >= 0) != (sq >= 0):
                out.append(p + (q - p) * (sp / (sp - sq)))
        poly = out
    inter = area(poly) if len(poly) >= 3 else 0.0
    return inter / (a[3] * a[4] + b[3] * b[4] - inter)


def box(x=0.0, y=0.0, z=0.0, length=1.0, width=1.0, height=1.0, yaw=0.0) -> np.ndarray:
    return np.array([x, y, z, length, width, height, yaw], dtype=np.float64)


# Unit square vs itself rotated 45 degrees: the overlap is a regular octagon of area
# 2 (sqrt 2 - 1), so IoU = 2 (sqrt 2 - 1) / (2 - 2 (sqrt 2 - 1)) = 1 / sqrt 2.
KNOWN_BEV = [
    (box(), box(), 1.0),
    (box(), box(yaw=math.pi / 2), 1.0),
    (box(), box(yaw=math.pi / 4), 1.0 / math.sqrt(2.0)),
    (box(), box(x=0.5), 1.0 / 3.0),
    (box(), box(x=1.0), 0.0),  # touching edges
    (box(), box(x=5.0, y=-3.0), 0.0),
    (box(length=4.0, width=2.0), box(length=2.0, width=4.0), 4.0 / 12.0),
    (box(length=2.0, width=2.0), box(length=1.0, width=1.0, yaw=0.3), 0.25),  # contained
]


@pytest.mark.parametrize(("a", "b", "expected"), KNOWN_BEV)
def test_bev_iou_known_values(a, b, expected):
    assert bev_iou(a[None], b[None])[0, 0] == pytest.approx(expected, abs=TOL)


@pytest.mark.parametrize(("dz", "expected"), [(0.0, 1.0), (0.5, 1.0 / 3.0), (1.0, 0.0), (3.0, 0.0)])
def test_iou_3d_uses_height_overlap(dz, expected):
    assert iou_3d(box()[None], box(z=dz)[None])[0, 0] == pytest.approx(expected, abs=TOL)


def test_iou_3d_of_rotated_boxes_is_bev_area_times_height_overlap():
    a, b = box(height=2.0), box(yaw=math.pi / 4, z=1.0, height=2.0)
    inter = 2.0 * (math.sqrt(2.0) - 1.0) * 1.0  # octagon area x 1 m of height overlap
    assert iou_3d(a[None], b[None])[0, 0] == pytest.approx(inter / (4.0 - inter), abs=TOL)


boxes = st.builds(
    box,
    x=st.floats(-3, 3),
    y=st.floats(-3, 3),
    z=st.floats(-1, 1),
    length=st.floats(0.2, 5),
    width=st.floats(0.2, 5),
    height=st.floats(0.2, 3),
    yaw=st.floats(-math.pi, math.pi),
)


@settings(max_examples=200, deadline=None)
@given(a=boxes, b=boxes)
def test_bev_iou_matches_reference_and_is_symmetric_and_bounded(a, b):
    ab = bev_iou(a[None], b[None])[0, 0]
    assert ab == pytest.approx(bev_iou(b[None], a[None])[0, 0], abs=TOL)
    assert 0.0 <= ab <= 1.0
    assert ab == pytest.approx(reference_bev_iou(a, b), abs=1e-7)  # SH clipping rounding
    assert 0.0 <= iou_3d(a[None], b[None])[0, 0] <= ab + TOL  # 3D never exceeds BEV overlap


@settings(max_examples=50, deadline=None)
@given(a=boxes)
def test_iou_of_a_box_with_itself_is_one(a):
    assert bev_iou(a[None], a[None])[0, 0] == pytest.approx(1.0, abs=TOL)
    assert iou_3d(a[None], a[None])[0, 0] == pytest.approx(1.0, abs=TOL)


def test_pairwise_shapes_and_empty_inputs():
    a = np.stack([box(), box(x=0.5), box(x=9.0)])
    assert bev_iou(a, a[:2]).shape == (3, 2)
    assert bev_iou(np.zeros((0, 7)), a).shape == (0, 3)
    assert iou_3d(a, np.zeros((0, 7))).shape == (3, 0)


@pytest.mark.parametrize(
    "bad",
    [np.zeros((1, 6)), np.array([[0, 0, 0, 1, 0, 1, 0]]), np.array([[0, 0, np.nan, 1, 1, 1, 0]])],
)
def test_iou_rejects_malformed_boxes(bad):
    with pytest.raises(IoUError):
        bev_iou(bad, box()[None])
