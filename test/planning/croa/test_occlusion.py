"""Exact occlusion: hand-computed cases, the slab test against a sampled reference, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from planning.croa.occlusion import (
    OcclusionError,
    culled_prisms,
    exact_occlusion,
    segments_blocked,
    segments_hits,
    stack_prisms,
)
from planning.croa.types import Polytope

# A 4 x 2 x 3.6 m target 10 m ahead along +x, its -x face (y in [-1, 1], z in [0, 3.6]) facing
# a sensor at (0, 0, 1.8): only that face is visible (the side faces are edge-on, the top is
# above the sensor), and the scene is symmetric about y = 0 and about z = 1.8.
TARGET = np.array([12.0, 0.0, 1.8, 4.0, 2.0, 3.6, 0.0])
SENSOR = np.array([[0.0, 0.0, 1.8]])


def _wall(x: float, y: tuple[float, float], z: tuple[float, float]) -> Polytope:
    box = np.array([x, 0.5 * sum(y), 0.5 * sum(z), 0.2, y[1] - y[0], z[1] - z[0], 0.0])
    return Polytope.from_box(box)


@pytest.mark.parametrize(
    ("wall", "expected"),
    [
        # A tall wall covering y >= 0 at x = 5 hides the half y > 0 of the face.
        (_wall(5.0, (0.0, 5.0), (0.0, 10.0)), 0.5),
        # A wall whose top is at the sensor height hides every ray to a point below it (rays
        # to points below z = 1.8 stay below 1.8) and none above: the lower half.
        (_wall(5.0, (-5.0, 5.0), (0.0, 1.8)), 0.5),
        (_wall(5.0, (-5.0, 5.0), (0.0, 10.0)), 1.0),
        (_wall(5.0, (3.0, 5.0), (0.0, 10.0)), 0.0),  # beside the line of sight
    ],
)
def test_wall_hides_the_hand_computed_fraction(wall: Polytope, expected: float) -> None:
    # Symmetric sample grid and weights: the halves have equal solid angle exactly, so only
    # floating-point round-off separates the result from 0.5.
    occ = exact_occlusion(SENSOR, TARGET, [wall], spacing_m=0.2)
    assert occ[0] == pytest.approx(expected, abs=1e-12)


def test_no_obstacles_means_no_occlusion() -> None:
    views = np.array([[0.0, 0.0, 1.8], [12.0, 8.0, 1.8], [20.0, -5.0, 0.5]])
    assert np.array_equal(exact_occlusion(views, TARGET, []), np.zeros(3))


def test_viewpoint_inside_the_target_is_fully_occluded() -> None:
    assert exact_occlusion(np.array([[12.0, 0.0, 1.0]]), TARGET, [])[0] == 1.0


def test_obstacle_behind_the_target_does_not_occlude() -> None:
    assert exact_occlusion(SENSOR, TARGET, [_wall(20.0, (-5, 5), (0, 10))])[0] == 0.0


def _sampled_hit(o: np.ndarray, e: np.ndarray, poly: Polytope, samples: int) -> bool:
    t = (np.arange(samples) + 0.5) / samples
    pts = o + t[:, None] * (e - o)
    a3, b3 = poly.halfspaces_3d()
    return bool(np.any(np.all(pts @ a3.T <= b3, axis=1)))


@settings(max_examples=60, deadline=None)
@given(
    st.tuples(st.floats(-4, 4), st.floats(-4, 4), st.floats(0.2, 3.0)),
    st.tuples(st.floats(-4, 4), st.floats(-4, 4), st.floats(0.2, 3.0)),
    st.tuples(st.floats(-2, 2), st.floats(-2, 2), st.floats(0.5, 3), st.floats(0.5, 3),
              st.floats(0.5, 3), st.floats(-math.pi, math.pi)),
)  # fmt: skip
def test_slab_test_agrees_with_dense_sampling(o: tuple, e: tuple, b: tuple) -> None:
    x, y, length, width, height, yaw = b
    poly = Polytope.from_box(np.array([x, y, 0.5 * height, length, width, height, yaw]))
    o3, e3 = np.array(o), np.array(e)
    assume(np.linalg.norm(e3 - o3) > 0.1)
    a3, b3 = poly.halfspaces_3d()
    # Keep clear of grazing rays and of end points near the surface, where 4000 samples
    # (spacing < 3 mm) and the 1 cm end margin could legitimately disagree.
    assume(np.min(np.abs(a3 @ e3 - b3)) > 0.05 and np.min(np.abs(a3 @ o3 - b3)) > 0.05)
    t = np.linspace(0, 1, 4001)
    depth = np.max((o3 + t[:, None] * (e3 - o3)) @ a3.T - b3, axis=1)
    assume(np.all(np.abs(depth) > 0.01))
    got = segments_blocked(o3[None], e3[None], *stack_prisms([poly]))[0, 0]
    assert got == _sampled_hit(o3, e3, poly, 4000)


@pytest.mark.parametrize(
    ("views", "box", "match"),
    [
        (np.zeros((2, 2)), TARGET, "viewpoints must be"),
        (np.array([[np.nan, 0.0, 1.8]]), TARGET, "NaN"),
        (SENSOR, TARGET[:6], "target_box"),
    ],
)
def test_bad_inputs_raise_occlusion_error(views: np.ndarray, box: np.ndarray, match: str) -> None:
    with pytest.raises(OcclusionError, match=match):
        exact_occlusion(views, box, [])


def test_bad_spacing_raises() -> None:
    with pytest.raises(OcclusionError, match="spacing_m"):
        exact_occlusion(SENSOR, TARGET, [], spacing_m=0.0)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000))
def test_culling_the_obstacles_per_origin_changes_no_ray(seed: int) -> None:
    """culled_prisms drops only obstacles outside each origin's wedge: same hits as all."""
    rng = np.random.default_rng(seed)
    boxes = np.column_stack([rng.uniform(-15, 15, (12, 2)), np.full(12, 1.0),
                             rng.uniform(0.5, 6, (12, 2)), np.full(12, 2.0),
                             rng.uniform(-3, 3, 12)])  # fmt: skip
    prisms = [Polytope.from_box(b) for b in boxes]
    origins = np.column_stack([rng.uniform(-20, 20, (30, 2)), np.full(30, 1.8)])
    ends = np.column_stack([rng.uniform(5, 9, (25, 2)), rng.uniform(0, 1.5, 25)])
    a3, b3, index = culled_prisms(prisms, origins, ends)
    culled = segments_hits(origins, ends, a3, b3, reduce=True)
    assert np.array_equal(culled, segments_blocked(origins, ends, *stack_prisms(prisms)))
    assert index.shape[1] <= len(prisms)
