"""Oriented boxes: corners, point membership, half-spaces, validation."""

from __future__ import annotations

import numpy as np
import pytest

from geometry.boxes import (
    Box3D,
    BoxError,
    bev_corners,
    box_corners,
    box_halfspaces,
    points_in_box_mask,
    points_in_boxes,
)


def test_axis_aligned_box_corners() -> None:
    c = box_corners(np.array([[0.0, 0.0, 1.0, 4.0, 2.0, 2.0, 0.0]]))[0]
    np.testing.assert_allclose(c.min(axis=0), [-2, -1, 0])
    np.testing.assert_allclose(c.max(axis=0), [2, 1, 2])


def test_rotated_box_corners_rotate_about_the_centre() -> None:
    c = bev_corners(np.array([[1.0, 1.0, 0.0, 4.0, 2.0, 1.0, np.pi / 2]]))[0]
    # length now runs along y: x spans the width, y the length
    np.testing.assert_allclose(c[:, 0].min(), 0.0, atol=1e-12)
    np.testing.assert_allclose(c[:, 1].max(), 3.0, atol=1e-12)


def test_points_inside_and_halfspaces_agree() -> None:
    box = np.array([2.0, -1.0, 0.5, 4.0, 2.0, 1.0, 0.7])
    pts = np.random.default_rng(0).uniform(-4, 6, (2000, 3))
    inside = points_in_box_mask(pts, box)
    a, b = box_halfspaces(box)
    np.testing.assert_array_equal(inside, np.all(pts @ a.T <= b + 1e-12, axis=1))
    assert 0 < inside.sum() < len(pts)


def test_points_in_boxes_assigns_the_first_owner() -> None:
    boxes = np.array([[0, 0, 0, 2, 2, 2, 0], [0.5, 0, 0, 2, 2, 2, 0], [10, 0, 0, 1, 1, 1, 0.0]])
    pts = np.array([[0.2, 0, 0], [1.3, 0, 0], [5, 5, 5], [10, 0, 0]])
    np.testing.assert_array_equal(points_in_boxes(pts, boxes), [0, 1, -1, 2])


@pytest.mark.parametrize(
    "bad",
    [np.zeros((1, 6)), np.array([[0, 0, 0, 1, 0, 1, 0]]), np.array([[np.nan, 0, 0, 1, 1, 1, 0]])],
)
def test_bad_boxes_are_rejected(bad: np.ndarray) -> None:
    with pytest.raises(BoxError):
        box_corners(bad)


def test_box3d_array_round_trip() -> None:
    box = Box3D((1.0, 2.0, 0.5), (4.0, 1.8, 1.5), 0.3, "van", 0.7)
    assert Box3D.from_array(box.as_array(), "van", 0.7) == box
