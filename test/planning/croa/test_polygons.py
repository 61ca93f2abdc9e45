"""Exact polygon geometry and the OBCA dual: property tests against independent solvers."""

from __future__ import annotations

import cvxpy as cp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planning.croa.collision import ObstacleSet
from planning.croa.kinematics import base_to_rear
from planning.croa.polygons import (
    PolygonError,
    convex_hull,
    halfspaces_to_polygon,
    polygon_halfspaces,
    rectangle_vertices,
    separating_axis,
    signed_distance,
    support_weights,
)
from planning.croa.robot import RobotModel
from planning.croa.types import Polytope

coord = st.floats(-6.0, 6.0)
angle = st.floats(-np.pi, np.pi)
size = st.floats(0.3, 5.0)


def _box(x: float, y: float, yaw: float, length: float, width: float) -> np.ndarray:
    return rectangle_vertices(np.array([x, y]), np.array(yaw), length, width)


def _body_duals(yaw: float, u: np.ndarray) -> np.ndarray:
    """mu >= 0 with G^T mu = -R^T u for the footprint box (G rows +x, +y, -x, -y): g^T mu is
    then the footprint's support in direction -u."""
    c, s = np.cos(yaw), np.sin(yaw)
    w = -np.array([c * u[0] + s * u[1], -s * u[0] + c * u[1]])
    return np.concatenate([np.maximum(w, 0.0), np.maximum(-w, 0.0)])


def _primal_distance(p: np.ndarray, q: np.ndarray) -> float:
    """min |z - y| over z in P, y in Q (cvxpy, CLARABEL)."""
    ap, bp = polygon_halfspaces(p)
    aq, bq = polygon_halfspaces(q)
    z, y = cp.Variable(2), cp.Variable(2)
    prob = cp.Problem(cp.Minimize(cp.norm(z - y)), [ap @ z <= bp, aq @ y <= bq])
    prob.solve(solver="CLARABEL")
    return float(prob.value)


@settings(max_examples=40, deadline=None)
@given(st.tuples(coord, coord, angle, size, size), st.tuples(coord, coord, angle, size, size))
def test_signed_distance_matches_primal_qp(geometry_reference, a: tuple, b: tuple) -> None:
    p, q = _box(*a), _box(*b)
    sd, u = signed_distance(p, q)
    primal = _primal_distance(p, q)
    # CLARABEL's default 1e-8 gaps give distances to ~1e-7; 1e-6 leaves room.
    assert max(float(sd), 0.0) == pytest.approx(primal, abs=1e-6)
    assert np.linalg.norm(u) == pytest.approx(1.0, abs=1e-12)
    gap = geometry_reference.polygon_gap(p, q)
    assert max(float(sd), 0.0) == pytest.approx(gap, abs=1e-9)  # float round-off only


@settings(max_examples=40, deadline=None)
@given(coord, coord, angle, coord, coord, angle, size, size)
def test_obca_dual_optimum_equals_exact_distance(
    rx: float, ry: float, ryaw: float, ox: float, oy: float, oyaw: float, ol: float, ow: float
) -> None:
    """max (A t - b)^T lam - g^T mu s.t. G^T mu + R^T A^T lam = 0, ||A^T lam|| <= 1, lam, mu >= 0
    (solved by cvxpy) equals the primal distance; the closed-form duals reach it too."""
    robot = RobotModel()
    rear = base_to_rear(np.array([rx, ry, ryaw, 0.0]), robot)
    footprint = rectangle_vertices(np.array([rx, ry]), np.array(ryaw), robot.length_m,
                                   robot.width_m)  # fmt: skip
    obstacle = _box(ox, oy, oyaw, ol, ow)
    a, b = polygon_halfspaces(obstacle)
    g_mat, g = robot.body_halfspaces()
    c, s = np.cos(rear[2]), np.sin(rear[2])
    rot = np.array([[c, -s], [s, c]])
    lam, mu = cp.Variable(4, nonneg=True), cp.Variable(4, nonneg=True)
    dual = cp.Problem(
        cp.Maximize((a @ rear[:2] - b) @ lam - g @ mu),
        [g_mat.T @ mu + rot.T @ a.T @ lam == 0, cp.norm(a.T @ lam) <= 1],
    )
    dual.solve(solver="CLARABEL")
    primal = _primal_distance(footprint, obstacle)
    sd, u = signed_distance(footprint, obstacle)
    # Both are CLARABEL optima at 1e-8 gaps: 1e-6 on metres.
    assert dual.value == pytest.approx(primal, abs=1e-6)
    lam_cf = support_weights(obstacle, a, u)  # the planner's closed-form lower level
    mu_cf = _body_duals(float(rear[2]), u)
    assert np.allclose(g_mat.T @ mu_cf + rot.T @ a.T @ lam_cf, 0.0, atol=1e-9)
    assert np.linalg.norm(a.T @ lam_cf) <= 1.0 + 1e-9
    value = (a @ rear[:2] - b) @ lam_cf - g @ mu_cf
    assert value == pytest.approx(sd, abs=1e-9)  # the dual objective reaches the distance


def test_signed_distance_is_negative_penetration_when_overlapping() -> None:
    p = _box(0.0, 0.0, 0.0, 2.0, 2.0)
    q = _box(1.5, 0.0, 0.0, 2.0, 2.0)  # overlaps p by 0.5 m along x
    sd, u = signed_distance(p, q)
    assert sd == pytest.approx(-0.5, abs=1e-12)
    assert u == pytest.approx(np.array([-1.0, 0.0]), abs=1e-12)


def test_signed_distance_broadcasts_over_leading_axes() -> None:
    rng = np.random.default_rng(0)
    p = rectangle_vertices(rng.uniform(-3, 3, (5, 1, 2)), rng.uniform(-3, 3, (5, 1)), 2.0, 1.0)
    q = rectangle_vertices(rng.uniform(-3, 3, (1, 6, 2)), rng.uniform(-3, 3, (1, 6)), 1.5, 1.5)
    sd, _ = signed_distance(p, q)
    one_by_one = [[signed_distance(p[i, 0], q[0, j])[0] for j in range(6)] for i in range(5)]
    assert sd.shape == (5, 6)
    assert np.array_equal(sd, np.array(one_by_one))


@settings(max_examples=60, deadline=None)
@given(st.tuples(coord, coord, angle, size, size), st.tuples(coord, coord, angle, size, size))
def test_separating_axis_bounds_the_distance_and_is_exact_on_overlap(a: tuple, b: tuple) -> None:
    p, q = _box(*a), _box(*b)
    sat, axis = separating_axis(p, q)
    sd, _ = signed_distance(p, q)
    assert np.linalg.norm(axis) == pytest.approx(1.0, abs=1e-12)
    # the separation along the axis is what the axis claims
    assert float(np.min(p @ axis) - np.max(q @ axis)) == pytest.approx(float(sat), abs=1e-12)
    if sd <= 0.0:
        assert float(sat) == pytest.approx(float(sd), abs=1e-12)
    else:
        assert 0.0 < float(sat) <= float(sd) + 1e-12


def test_obstacle_set_exact_below_threshold_and_a_lower_bound_above() -> None:
    rng = np.random.default_rng(3)
    boxes = [
        Polytope.from_box(np.array([*rng.uniform(-8, 8, 2), 0.75, *rng.uniform(1, 5, 2), 1.5,
                                    rng.uniform(-np.pi, np.pi)]))
        for _ in range(12)
    ]  # fmt: skip
    obstacles = ObstacleSet(boxes, max_faces=4)
    robots = rectangle_vertices(rng.uniform(-8, 8, (300, 2)), rng.uniform(-3, 3, 300), 2.0, 1.0)
    exact, _ = obstacles.signed_distances(robots)
    threshold = 0.5
    sd, u = obstacles.signed_distances(robots, threshold)
    near = exact <= threshold
    assert np.count_nonzero(near) > 20 and np.count_nonzero(~near) > 20
    np.testing.assert_allclose(sd[near], exact[near], atol=1e-12)
    assert np.all(sd[~near] > threshold) and np.all(sd[~near] <= exact[~near] + 1e-12)
    np.testing.assert_allclose(np.linalg.norm(u, axis=-1), 1.0, atol=1e-12)


def test_halfspaces_to_polygon_drops_redundant_rows() -> None:
    a = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0], [1.0, 1.0]])
    b = np.array([1.0, 1.0, 1.0, 1.0, 5.0])  # the last row cuts nothing off the unit square
    vertices = halfspaces_to_polygon(a, b)
    assert len(vertices) == 4
    assert np.allclose(np.sort(np.abs(vertices).ravel()), 1.0)


@pytest.mark.parametrize(
    ("a", "b", "why"),
    [
        (np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]), np.ones(3), "do not bound"),
        (np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]]),
         np.array([-1.0, -1.0, 1.0, 1.0]), "no area"),
        (np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]), np.ones(3), "zero length"),
    ],
)  # fmt: skip
def test_halfspaces_to_polygon_rejects_bad_sets(a: np.ndarray, b: np.ndarray, why: str) -> None:
    with pytest.raises(PolygonError, match=why):
        halfspaces_to_polygon(a, b)


def test_convex_hull_rejects_collinear_points() -> None:
    with pytest.raises(PolygonError, match="collinear"):
        convex_hull(np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]]))


def test_rectangles_with_their_own_sizes_equal_the_one_at_a_time_corners() -> None:
    rng = np.random.default_rng(3)
    centres, yaws = rng.uniform(-10, 10, (50, 2)), rng.uniform(-4, 4, 50)
    lengths, widths = rng.uniform(0.1, 12, 50), rng.uniform(0.1, 3, 50)
    rows = zip(centres, yaws, lengths, widths, strict=True)
    each = np.stack([rectangle_vertices(c, np.array(y), float(a), float(b)) for c, y, a, b in rows])
    assert np.array_equal(rectangle_vertices(centres, yaws, lengths, widths), each)
