"""Rigid transforms and quaternions."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geometry.transforms import (
    TransformError,
    invert_transform,
    make_transform,
    matrix_to_quaternion,
    pose_to_transform,
    quaternion_to_matrix,
    quaternion_to_yaw,
    transform_points,
    wrap_angle,
    yaw_to_quaternion,
)

angles = st.floats(-10.0, 10.0, allow_nan=False)


@settings(max_examples=50, deadline=None)
@given(yaw=angles)
def test_yaw_quaternion_round_trip(yaw: float) -> None:
    assert quaternion_to_yaw(*yaw_to_quaternion(yaw)) == pytest.approx(wrap_angle(yaw), abs=1e-9)


@settings(max_examples=50, deadline=None)
@given(
    q=st.lists(st.floats(-1, 1), min_size=4, max_size=4).filter(lambda v: np.linalg.norm(v) > 0.1)
)
def test_matrix_quaternion_round_trip(q: list[float]) -> None:
    rot = quaternion_to_matrix(np.array(q))
    np.testing.assert_allclose(rot @ rot.T, np.eye(3), atol=1e-12)  # orthonormal
    np.testing.assert_allclose(quaternion_to_matrix(matrix_to_quaternion(rot)), rot, atol=1e-9)


def test_transform_inverse_and_points() -> None:
    t = pose_to_transform(1.0, 2.0, 0.5, np.pi / 2)
    np.testing.assert_allclose(
        transform_points(t, np.array([[1.0, 0.0, 0.0]])), [[1.0, 3.0, 0.5]], atol=1e-12
    )
    np.testing.assert_allclose(invert_transform(t) @ t, np.eye(4), atol=1e-12)
    np.testing.assert_allclose(make_transform(np.eye(3), [1, 2, 3])[:3, 3], [1, 2, 3])


@pytest.mark.parametrize("q", [[0, 0, 0, 0], [np.nan, 0, 0, 1]])
def test_degenerate_quaternion_is_an_error(q: list[float]) -> None:
    with pytest.raises(TransformError):
        quaternion_to_matrix(np.array(q))


def test_wrap_angle_range() -> None:
    wrapped = wrap_angle(np.array([-np.pi, np.pi, 3 * np.pi, 0.1]))
    np.testing.assert_allclose(wrapped, [-np.pi, -np.pi, -np.pi, 0.1])
