"""The interference-aware wrapper and the policy registry."""

from __future__ import annotations

import numpy as np
import pytest

from offload.cluster.autoscaling import POLICIES, make_policy
from offload.cluster.autoscaling.calibration import ServiceModel, StartupModel
from offload.cluster.autoscaling.interface import AutoscalingError, Bounds, Observation, PodView
from offload.cluster.autoscaling.interference import (
    CpiModelPredictor,
    InterferenceAware,
    extra_from_agent_report,
    last_measured,
)
from offload.cluster.autoscaling.simulate import SimConfig, simulate
from offload.cluster.autoscaling.traces import synthetic


def obs(inflation: float | None = None, **extra) -> Observation:
    if inflation is not None:
        extra["cpi_inflation"] = inflation
    return Observation(
        t_s=5.0,
        replicas=4,
        pods=tuple(PodView(f"p{i}") for i in range(4)),
        interval_s=5.0,
        arrivals=50,
        service_time_s=0.4,
        service_cv2=0.2,
        slo_s=2.0,
        extra=extra,
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


def test_the_agents_predictions_come_first_and_combine_harmonically():
    report = {"predicted_inflation": {"p0": 1.0, "p1": 3.0}, "inflation": {"p0": 5.0}}
    extra = extra_from_agent_report(report)
    assert extra == {
        "predicted_inflation": {"p0": 1.0, "p1": 3.0},
        "measured_inflation": {"p0": 5.0},
    }
    predictor = CpiModelPredictor(model=False)  # no model needed: the agent already ran it
    # two replicas slowed 1x and 3x serve 1 + 1/3 replicas' worth: as two slowed 1.5x
    assert predictor(obs(**extra)) == pytest.approx(1.5)
    assert predictor.last_source == "agent_prediction"


def test_measured_inflation_is_the_fallback_without_model_inputs():
    predictor = CpiModelPredictor(model=False)
    assert predictor(obs(measured_inflation={"p0": 2.0, "p1": 2.0})) == pytest.approx(2.0)
    assert predictor.last_source == "measured"
    assert predictor(obs(1.7)) == pytest.approx(1.7)  # the simulation's single probe value
    assert predictor(obs()) == 1.0 and predictor.last_source == "none"
    # rows but no loadable model: the measured value still answers, no error
    broken = CpiModelPredictor(model="/nonexistent/cpi.txt")
    assert broken(obs(1.3, cpi_features={"p0": {}})) == pytest.approx(1.3)
    assert broken.load_error and broken.last_source == "measured"


def test_the_cpi_model_runs_on_feature_rows_and_raises_the_replica_count():
    from offload.cluster.features import FEATURES
    from offload.cluster.predictor import CpiPredictor

    # a tiny model of the cluster issue's kind: inflation = 1 + CPU of co-runners on its cpus
    rng = np.random.default_rng(0)
    X = rng.random((400, len(FEATURES)))
    k = FEATURES.index("same_cpu_cpu")
    X[:, k] = rng.uniform(0.0, 2.0, 400)
    model = CpiPredictor.train(X, 1.0 + X[:, k], seed=0, rounds=100)
    predictor = CpiModelPredictor(model)
    quiet = dict.fromkeys(FEATURES, 0.5) | {"same_cpu_cpu": 0.0}
    noisy = quiet | {"same_cpu_cpu": 1.0}
    assert predictor(obs(cpi_features={"p0": quiet})) == pytest.approx(1.0, abs=0.1)
    # 200 rows per unit of the feature: trees land within ~10% of 2
    assert predictor(obs(cpi_features={"p0": noisy})) == pytest.approx(2.0, rel=0.1)
    assert predictor.last_source == "model"
    inner = make_policy("queueing", bounds=Bounds(1, 100))
    aware = InterferenceAware(inner, predictor)
    blind_n = inner.decide(obs(cpi_features={"p0": noisy}), inner.initial_state())[0]
    aware_n = aware.decide(obs(cpi_features={"p0": noisy}), aware.initial_state())[0]
    assert aware_n >= 1.7 * blind_n


def test_plus_cpi_policies_use_the_shipped_cpi_model():
    from pathlib import Path

    from offload.cluster.features import FEATURES
    from offload.cluster.predictor import DEFAULT_MODEL

    if not Path(DEFAULT_MODEL).exists():
        pytest.skip(f"no shipped CPI model at {DEFAULT_MODEL}")
    aware = make_policy("queueing+cpi")
    assert isinstance(aware.predictor, CpiModelPredictor)
    row = dict.fromkeys(FEATURES, 0.0) | {"last_inflation": 1.5, "be_limit_frac": 1.0}
    f = aware.predictor(obs(cpi_features={"p0": row}))
    assert aware.predictor.last_source == "model" and np.isfinite(f) and f > 0
