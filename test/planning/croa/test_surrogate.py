"""The occlusion surrogate: shadows versus exact rays, the union over occluders, the visible
surface, the CCP majorant, and agreement with the exact occlusion."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy.stats import spearmanr

from planning.croa.config import CroaConfig, SurrogateConfig
from planning.croa.occlusion import exact_occlusion, segments_blocked, stack_prisms
from planning.croa.problem import TrajectoryProblem
from planning.croa.surrogate import (
    ShadowSet,
    build_shadows,
    rank_occluders,
    shadow_rows,
    target_surface,
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
ONE_SCAN = SurrogateConfig(scan_fractions=(1.0,), scan_weights=(1.0,))
xy = st.tuples(st.floats(-8.0, 12.0), st.floats(-8.0, 8.0))


@pytest.fixture(scope="module")
def shadows() -> ShadowSet:
    return build_shadows(TARGET, OCCLUDERS, ONE_SCAN, SENSOR_Z, 60.0, PROBES, np.array([0.0]))


def _views(p: tuple) -> np.ndarray:  # one viewpoint as [N=1, K=1, 2]
    return np.array(p, dtype=float).reshape(1, 1, 2)


def test_every_occluder_that_blocks_a_probe_gets_a_slot(shadows: ShadowSet) -> None:
    assert shadows.active.any(axis=(0, 1)).sum() == len(OCCLUDERS)


@pytest.mark.parametrize("mode", ["occlusion", "goal"])
def test_planner_program_is_dpp(mode: str) -> None:
    assert TrajectoryProblem(CroaConfig(), mode).problem.is_dcp(dpp=True)


def test_visible_surface_is_the_faces_that_face_the_sensor() -> None:
    surface = target_surface(TARGET, SurrogateConfig())
    w = surface.weights(np.array([[20.0, -3.4]]), SENSOR_Z)[0]  # straight behind the +x face
    facing = surface.normals[:, 0] > 0.5
    top = surface.normals[:, 2] > 0.5
    assert np.all(w[~(facing | top)] == 0.0) and np.all(w[facing] > 0.0)
    assert w.sum() == pytest.approx(1.0)
    assert np.count_nonzero(w) <= surface.max_facing


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
    normals, offsets, active = shadow_rows(sample[None], occluder, sensor_z, far_m=100.0)
    if not active[0]:
        inside = False
    else:
        margin = float(np.max(normals[0] @ view - offsets[0]))
        assume(abs(margin) > 1e-3)  # not on the shadow's edge, where round-off decides
        inside = margin < 0.0
    origin = np.array([[*view, sensor_z]])
    a3, b3 = occluder.halfspaces_3d()
    assume(np.min(np.abs(a3 @ origin[0] - b3)) > 1e-3)
    assert inside == segments_blocked(origin, sample[None], *stack_prisms([occluder]))[0, 0]


@settings(max_examples=100, deadline=None)
@given(xy)
def test_sharp_limit_is_the_exact_occlusion_of_the_samples(p: tuple) -> None:
    """eps -> 0 and beta = 0: the surrogate is the solid-angle-weighted blocked fraction of its
    own samples on the visible faces, a ray blocked by two occluders counted once."""
    cfg = SurrogateConfig(transition_m=1e-3, depth_gain=0.0, scan_fractions=(1.0,),
                          scan_weights=(1.0,))  # fmt: skip
    sh = build_shadows(TARGET, OCCLUDERS, cfg, SENSOR_Z, 60.0, PROBES, np.array([0.0]))
    view = np.array(p)
    surface = sh.surface
    w = surface.weights(view[None], SENSOR_Z)[0]
    blocked = segments_blocked(np.array([[*view, SENSOR_Z]]), surface.points,
                               *stack_prisms(OCCLUDERS))[0]  # fmt: skip
    phi = sh.phi(_views(p))[0, 0]
    assume(np.all(np.abs(phi[np.isfinite(phi)]) > 1e-3))  # off every shadow edge
    assert sh.value(_views(p))[0] == pytest.approx(float(w @ blocked), abs=1e-9)


@settings(max_examples=100, deadline=None)
@given(xy, xy)
def test_ccp_model_is_a_majorant_tight_at_its_point(
    shadows: ShadowSet, p: tuple, p_bar: tuple
) -> None:
    model = shadows.ccp_model(np.array([p_bar]))
    frozen = shadows.surface.weights(np.array([p_bar]), SENSOR_Z)[0]  # weights at p_bar
    true_at_p = float(frozen @ shadows.blocked(_views(p))[0, 0])
    # 1e-9: round-off of sums of O(10) terms
    assert model.value(_views(p))[0] >= true_at_p - 1e-9
    at_bar = shadows.value(_views(p_bar))[0]
    assert model.value(_views(p_bar))[0] == pytest.approx(at_bar, abs=1e-9)


def test_depth_term_points_out_of_a_deep_shadow() -> None:
    """Deep in a shadow the indicator is flat; the depth term decreases toward the exit."""
    sh = build_shadows(TARGET, OCCLUDERS[:1], ONE_SCAN, SENSOR_Z, 60.0, PROBES, np.array([0.0]))
    inside = np.array([0.0, 0.6])
    phi = sh.phi(_views(inside))[0, 0]
    assert np.nanmin(phi[np.isfinite(phi)]) < -1.0  # deep in at least one sample's shadow
    flat = sh.value(_views(inside), depth=False)[0]
    step = inside + np.array([0.0, -0.5])  # toward the shadow's edge (the occluder's y side)
    assert sh.value(_views(step), depth=False)[0] == pytest.approx(flat, abs=0.05)
    assert sh.value(_views(step))[0] != pytest.approx(sh.value(_views(inside))[0], abs=1e-6)


def test_overlapping_box_blocks_its_samples_from_everywhere() -> None:
    overlap = Polytope.from_box(np.array([TARGET[0] - 2.5, TARGET[1], 1.0, 2.0, 2.5, 2.0, 0.0]))
    sh = build_shadows(TARGET, [overlap], ONE_SCAN, SENSOR_Z, 60.0, PROBES, np.array([0.0]))
    behind = np.array([[TARGET[0] - 12.0, TARGET[1]]])  # sees only the -x face: all inside
    exact = exact_occlusion(np.array([[*behind[0], SENSOR_Z]]), TARGET, [overlap], 0.2)[0]
    assert exact > 0.9 and sh.value(behind[:, None])[0] > 0.9


def test_surrogate_ranks_viewpoints_like_the_exact_occlusion() -> None:
    """Over random viewpoints the default surrogate (no depth term) orders them as the exact
    slab-test occlusion does. Here Spearman is 0.88 and the MAE 0.02 (about 0.97 and 0.03 in
    bench croa's check on sim scenes): the bounds 0.85 and 0.05 fail on a real regression (a
    lost occluder or face moves them by more than 0.1), not on sampling noise."""
    rng = np.random.default_rng(3)
    views = rng.uniform([-6.0, -7.0], [12.0, 7.0], (150, 2))
    free = np.all([np.max(views @ o.A.T - o.b, axis=1) > 0.0 for o in OCCLUDERS], axis=0)
    views = views[free]
    cfg = SurrogateConfig(scan_fractions=(1.0,), scan_weights=(1.0,))
    sh = build_shadows(TARGET, OCCLUDERS, cfg, SENSOR_Z, 60.0, views, np.array([0.0]))
    sur = sh.scan_values(views[:, None], depth=False)[:, 0]
    exact = exact_occlusion(np.hstack([views, np.full((len(views), 1), SENSOR_Z)]), TARGET,
                            OCCLUDERS, 0.2)  # fmt: skip
    assert spearmanr(sur, exact).statistic > 0.85
    assert np.mean(np.abs(sur - exact)) < 0.05


def test_moving_occluder_casts_its_shadow_where_it_will_be() -> None:
    moving = Polytope.from_box(np.array([7.0, 8.0, 0.75, 4.5, 1.9, 1.5, -math.pi / 2]),
                               (0.0, -4.0))  # fmt: skip
    times = np.array([0.0, 2.0])  # at 2 s it stands between the robot and the target
    cfg = SurrogateConfig(scan_fractions=(0.5, 1.0), scan_weights=(0.5, 0.5))
    sh = build_shadows(TARGET, [moving], cfg, SENSOR_Z, 60.0, PROBES, times)
    here = np.array([[[0.0, -1.5], [0.0, -1.5]]])
    per_scan = sh.scan_values(here, depth=False)[0]
    assert per_scan[0] < 0.05 and per_scan[1] > 0.3


def test_occluders_are_ranked_by_the_rays_they_block_over_all_scans() -> None:
    """rank_occluders tests a static occluder once for all scans; the reference counts every
    occluder's blocked (probe, sample) rays at every scan time, one occluder at a time."""
    crossing = Polytope.from_box(np.array([7.0, 8.0, 0.75, 4.5, 1.9, 1.5, -math.pi / 2]),
                                 (0.0, -4.0))  # fmt: skip
    occluders = [*OCCLUDERS, crossing]
    samples = target_surface(TARGET, SurrogateConfig()).points
    origins = np.hstack([PROBES, np.full((len(PROBES), 1), SENSOR_Z)])
    times = np.array([0.0, 1.25, 2.5])
    counts = np.array([
        sum(segments_blocked(origins, samples, *stack_prisms([o.at_time(t)])).sum() for t in times)
        for o in occluders
    ])  # fmt: skip
    want = [int(i) for i in np.argsort(-counts, kind="stable") if counts[i] > 0]
    assert rank_occluders(samples, occluders, SENSOR_Z, PROBES, times) == want
    assert 3 in want  # the crossing car blocks rays at the later scans only
    static_only = rank_occluders(samples, OCCLUDERS, SENSOR_Z, PROBES, times)
    assert static_only == [i for i in want if i < len(OCCLUDERS)]
