"""The autoscaling sweep: forked workers give the same points; the selection rule."""

from __future__ import annotations

import numpy as np
import pytest

from bench.autoscale_sweep import Point, SweepSettings, select, sweep_trace
from offload.cluster.autoscaling.calibration import ServiceModel, StartupModel
from offload.cluster.autoscaling.traces import synthetic


def test_forked_workers_give_the_same_points_as_one_process():
    s = SweepSettings(
        ServiceModel.constant(0.1, 0.3), StartupModel.constant(5.0), utilizations=(0.6, 0.8),
        windows_s=(60.0,), seeds=2,
    )  # fmt: skip

    def traces(seed):
        return synthetic("step", 4.0, 300.0, seed)

    one, kept1 = sweep_trace(traces, ["hpa", "queueing"], s, keep=lambda *a: True)
    two, kept2 = sweep_trace(traces, ["hpa", "queueing"], s, keep=lambda *a: True, jobs=2)
    assert [(p.policy, p.utilization, p.window_s) for p in one] == [
        (p.policy, p.utilization, p.window_s) for p in two
    ]
    np.testing.assert_equal([p.values for p in one], [p.values for p in two])  # NaN == NaN
    assert len(one) == 4 and all(len(p.values["replica_seconds"]) == 2 for p in one)
    assert set(kept1) == set(kept2) and all(r.timeline for r in kept2.values())


def point(policy, u, viol, cost):
    return Point(policy, u, 60.0, {"slo_violation_rate": [viol], "replica_seconds": [cost]})


def test_hpa_reference_is_its_cheapest_setting_within_the_slo_target():
    pts = [
        point("hpa", 0.9, 0.05, 80.0),  # cheapest, misses the 1% target
        point("hpa", 0.8, 0.008, 100.0),  # the reference
        point("hpa", 0.6, 0.001, 140.0),
        point("kpa", 0.7, 0.004, 99.0),  # within HPA's cost, fewer violations: best
        point("kpa", 0.5, 0.0, 150.0),
        point("queueing", 0.9, 0.0, 120.0),  # never as cheap: not comparable
    ]
    sel = select(pts, slo_target=0.01)
    assert (sel.hpa.utilization, sel.best, sel.claim_holds) == (0.8, "kpa", True)
    assert sel.chosen["kpa"].utilization == 0.7 and not sel.comparable["queueing"]
    assert sel.chosen["queueing"].mean("replica_seconds") == pytest.approx(120.0)


def test_only_model_based_policies_sweep_their_tail_target():
    from bench.autoscale_sweep import grid

    s = SweepSettings(
        ServiceModel.constant(0.1, 0.3), StartupModel.constant(5.0), utilizations=(0.6, 0.8),
        windows_s=(15.0, 60.0), violation_targets=(0.01, 0.05),
    )  # fmt: skip
    assert len(grid("hpa", s)) == 4 and {v for *_, v in grid("hpa", s)} == {None}
    assert len(grid("rl", s)) == 2
    assert {v for *_, v in grid("queueing", s)} == {0.01, 0.05}
    assert len(grid("predictive-hw+cpi", s)) == 8
    # the knob reaches the policy: a looser tail target never needs more replicas
    from bench.autoscale_sweep import build
    from offload.cluster.autoscaling.queueing import replicas_for_slo

    tight, loose = build("queueing", (0.9, 15.0, 0.01), s), build("queueing", (0.9, 15.0, 0.05), s)
    assert (tight.config.target_violation, loose.config.target_violation) == (0.01, 0.05)
    assert replicas_for_slo(50.0, 0.1, 0.3, 0.3, 0.05, 0.9, 100) < replicas_for_slo(
        50.0, 0.1, 0.3, 0.3, 0.01, 0.9, 100
    )


def test_chosen_settings_are_confirmed_on_fresh_seeds():
    from bench.autoscale_sweep import CONFIRM_SEED_OFFSET, confirm, confirmed_claim

    s = SweepSettings(
        ServiceModel.constant(0.1, 0.3), StartupModel.constant(5.0), utilizations=(0.6, 0.8),
        windows_s=(60.0,), seeds=2,
    )  # fmt: skip
    drawn = []

    def traces(seed):
        drawn.append(seed)
        return synthetic("step", 4.0, 300.0, seed)

    points, _ = sweep_trace(traces, ["hpa", "kpa"], s)
    sel = select(points, slo_target=0.5)
    drawn.clear()
    fresh = confirm(traces, sel, s)
    assert set(fresh) == {"hpa", "kpa"} and min(drawn) >= CONFIRM_SEED_OFFSET
    assert fresh["hpa"].knobs == sel.hpa.knobs
    assert all(len(p.values["replica_seconds"]) == 2 for p in fresh.values())
    fake = {"hpa": point("hpa", 0.8, 0.01, 100.0), "kpa": point("kpa", 0.7, 0.005, 101.0)}
    sel.best = "kpa"
    assert not confirmed_claim(sel, fake)  # fewer violations but more replica-seconds
    fake["kpa"] = point("kpa", 0.7, 0.005, 100.0)
    assert confirmed_claim(sel, fake)
