"""The interference-aware wrapper and the policy registry."""

from __future__ import annotations

import pytest

from offload.cluster.autoscaling import POLICIES, make_policy
from offload.cluster.autoscaling.calibration import ServiceModel, StartupModel
from offload.cluster.autoscaling.interface import AutoscalingError, Bounds, Observation, PodView
from offload.cluster.autoscaling.interference import InterferenceAware, last_measured
from offload.cluster.autoscaling.simulate import SimConfig, simulate
from offload.cluster.autoscaling.traces import synthetic


def obs(inflation: float) -> Observation:
    return Observation(
        t_s=5.0,
        replicas=4,
        pods=tuple(PodView(f"p{i}") for i in range(4)),
        interval_s=5.0,
        arrivals=50,
        service_time_s=0.4,
        service_cv2=0.2,
        slo_s=2.0,
        extra={"cpi_inflation": inflation},
    )


def test_predicted_inflation_discounts_capacity():
    inner = make_policy("queueing", bounds=Bounds(1, 100))
    aware = InterferenceAware(inner)
    calm, _ = aware.decide(obs(1.0), aware.initial_state())
    slowed, _ = aware.decide(obs(2.0), aware.initial_state())
    assert calm == inner.decide(obs(2.0), inner.initial_state())[0]  # the inner one is blind
    assert slowed >= 2 * calm - 1  # twice the work per request: about twice the replicas


@pytest.mark.parametrize("bad", [0.2, float("nan")])
def test_implausible_predictions_never_shrink_the_cluster(bad):
    aware = InterferenceAware(
        make_policy("queueing", bounds=Bounds(1, 100)), predictor=lambda o: bad
    )
    plain = make_policy("queueing", bounds=Bounds(1, 100))
    assert (
        aware.decide(obs(1.0), aware.initial_state())[0]
        == plain.decide(obs(1.0), plain.initial_state())[0]
    )


def test_cpi_awareness_cuts_violations_under_a_co_runner():
    # a co-runner doubles service times for ten minutes; the probe reports it each interval
    service = ServiceModel((0.0, 1.0), (0.5, 0.7), log_std=0.2)
    cfg = SimConfig(
        service,
        StartupModel.constant(5.0),
        slo_s=2.0,
        initial_replicas=3,
        interference=((600.0, 1200.0, 2.0),),
    )
    trace = synthetic("diurnal", 6.0, 1800.0, seed=2)
    blind = simulate(trace, make_policy("queueing", bounds=Bounds(1, 40)), cfg)
    aware = simulate(trace, make_policy("queueing+cpi", bounds=Bounds(1, 40)), cfg)
    assert aware.slo_violation_rate < 0.5 * blind.slo_violation_rate
    assert last_measured(obs(1.7)) == 1.7


@pytest.mark.parametrize("name", [p for p in POLICIES if p != "rl"])
def test_every_policy_is_built_with_the_shared_knobs(name):
    p = make_policy(name, target_utilization=0.6, scale_down_window_s=120.0)
    assert p.period_s > 0 and p.initial_state() is not None


def test_unknown_policy_and_bad_knobs_are_clear_errors():
    with pytest.raises(AutoscalingError, match="unknown policy"):
        make_policy("magic")
    with pytest.raises(AutoscalingError, match="target_utilization"):
        make_policy("hpa", target_utilization=1.5)
