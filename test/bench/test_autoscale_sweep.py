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
