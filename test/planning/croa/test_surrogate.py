"""The occlusion surrogate: DC structure, CCP majorization, shadows versus exact rays."""

from __future__ import annotations

import math

import cvxpy as cp
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from planning.croa.config import CroaConfig, SurrogateConfig
from planning.croa.occlusion import segments_blocked, stack_prisms
from planning.croa.polygons import polygon_halfspaces
from planning.croa.problem import TrajectoryProblem
from planning.croa.surrogate import (
    ShadowSet,
    build_shadows,
    convex_part_expression,
    shadow_polygon,
    target_samples,
)
from planning.croa.types import Polytope

SENSOR_Z = 1.8
TARGET = np.array([14.0, -3.4, 0.75, 4.5, 1.9, 1.5, 0.0])
OCCLUDERS = [
    Polytope.from_box(np.array([7.0, -1.5, 1.15, 5.2, 2.1, 2.3, 0.1])),
    Polytope.from_box(np.array([9.0, 2.0, 1.7, 8.0, 2.5, 3.4, 0.0])),
    Polytope.from_box(np.array([4.0, -4.0, 0.75, 4.5, 1.9, 1.5, -0.2])),
]
PROBES = np.random.default_rng(0).uniform([-5.0, -6.0], [10.0, 6.0], (60, 2))
xy = st.tuples(st.floats(-8.0, 12.0), st.floats(-8.0, 8.0))


@pytest.fixture(scope="module")
def shadows() -> ShadowSet:
    return build_shadows(TARGET, OCCLUDERS, SENSOR_Z, SurrogateConfig(), 60.0, PROBES)


def test_every_occluder_that_blocks_a_probe_gets_a_slot(shadows: ShadowSet) -> None:
    per_slot = shadows.active.reshape(SurrogateConfig().occluder_slots, -1).any(axis=1)
    assert per_slot.sum() == len(OCCLUDERS)  # the bound test below relies on all three


def test_convex_part_is_dcp_convex(shadows: ShadowSet) -> None:
    p = cp.Variable(2)
    expr = convex_part_expression(p, shadows)
    assert expr.is_convex() and expr.is_dcp()
    p.value = np.array([3.0, 1.0])
    # cvxpy's log_sum_exp and numpy's logaddexp agree to round-off.
    assert expr.value == pytest.approx(shadows.convex_part(p.value[None])[0], rel=1e-9)


@pytest.mark.parametrize("mode", ["occlusion", "goal"])
def test_planner_program_is_dpp(mode: str) -> None:
    assert TrajectoryProblem(CroaConfig(), mode).problem.is_dcp(dpp=True)


@settings(max_examples=100, deadline=None)
@given(xy, xy)
def test_tangent_is_a_global_upper_bound_of_the_concave_part(
    shadows: ShadowSet, p: tuple, p_bar: tuple
) -> None:
    q, qb = np.array(p), np.array(p_bar)
    grad, h_bar = shadows.concave_tangent(qb)
    # -H(p) <= -H(p_bar) - grad.(p - p_bar); 1e-9 absorbs round-off of log-sum-exps ~ 10.
    assert shadows.concave_part(q[None])[0] <= -h_bar - grad @ (q - qb) + 1e-9
    assert shadows.concave_part(qb[None])[0] == pytest.approx(-h_bar, abs=1e-12)


@settings(max_examples=30, deadline=None)
@given(xy)
def test_tangent_gradient_matches_finite_differences(shadows: ShadowSet, p: tuple) -> None:
    q, step = np.array(p), 1e-6
    grad, _ = shadows.concave_tangent(q)
    minus_h = shadows.concave_part
    fd = [(minus_h((q + step * e)[None])[0] - minus_h((q - step * e)[None])[0]) / (2 * step)
          for e in np.eye(2)]  # fmt: skip
    # Central differences: O(step^2 * curvature / tau) truncation plus ~1e-10 round-off.
    assert -grad == pytest.approx(np.array(fd), abs=1e-5)


@settings(max_examples=100, deadline=None)
@given(xy)
def test_smooth_surrogate_is_close_to_its_clipped_limit(shadows: ShadowSet, p: tuple) -> None:
    q = np.array(p)[None]
    value, limit = shadows.value(q)[0], shadows.limit_value(q)[0]
    rows = shadows.rows.shape[1]
    # Each active slot moves by at most tau log(rows + 1) / eps (surrogate.py docstring).
    bound = (
        shadows.active.sum()
        / shadows.num_samples
        * (shadows.smoothing_m * math.log(rows + 1) / shadows.transition_m)
    )
    assert abs(value - limit) <= bound + 1e-12
    assert 0.0 <= value <= shadows.active.sum() / shadows.num_samples + 1e-12


@settings(max_examples=60, deadline=None)
@given(xy)
def test_clipped_limit_upper_bounds_the_blocked_fraction_of_samples(
    shadows: ShadowSet, p: tuple
) -> None:
    ranked = [OCCLUDERS[i] for i in range(len(OCCLUDERS))]
    samples = target_samples(TARGET, SurrogateConfig().sample_height_fractions)
    origin = np.array([[*p, SENSOR_Z]])
    blocked = segments_blocked(origin, samples, *stack_prisms(ranked))[0]
    assert shadows.limit_value(np.array(p)[None])[0] >= blocked.mean() - 1e-12


@settings(max_examples=150, deadline=None)
@given(
    st.tuples(st.floats(-3, 3), st.floats(-3, 3), st.floats(0.5, 5), st.floats(0.5, 3),
              st.floats(0.3, 4), st.floats(-math.pi, math.pi)),
    st.tuples(st.floats(-8, 8), st.floats(-8, 8), st.floats(0.0, 3.0)),
    st.floats(0.5, 3.0),
    xy,
)  # fmt: skip
def test_shadow_is_exactly_the_set_of_blocked_viewpoints(
    box: tuple, q: tuple, sensor_z: float, p: tuple
) -> None:
    x, y, length, width, height, yaw = box
    occluder = Polytope.from_box(np.array([x, y, 0.5 * height, length, width, height, yaw]))
    sample, view = np.array(q), np.array(p)
    assume(np.max(occluder.A @ sample[:2] - occluder.b) > 0.05)  # sample outside the occluder
    poly = shadow_polygon(sample, occluder, sensor_z, far_m=100.0)
    if poly is None:
        inside = False
    else:
        a, b = polygon_halfspaces(poly)
        margin = float(np.max(a @ view - b))
        assume(abs(margin) > 1e-3)  # not on the shadow's edge, where round-off decides
        inside = margin < 0.0
    origin = np.array([[*view, sensor_z]])
    a3, b3 = occluder.halfspaces_3d()
    assume(np.min(np.abs(a3 @ origin[0] - b3)) > 1e-3)
    assert inside == segments_blocked(origin, sample[None], *stack_prisms([occluder]))[0, 0]
