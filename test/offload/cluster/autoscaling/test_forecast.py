"""Forecasters on synthetic periodic series, and the predictive policy's use of them."""

from __future__ import annotations

import math

import numpy as np
import pytest

from offload.cluster.autoscaling.forecast import HoltWinters, HoltWintersConfig, Lstm, LstmConfig
from offload.cluster.autoscaling.interface import Bounds, Observation, PodView
from offload.cluster.autoscaling.predictive import PredictiveConfig, PredictivePolicy
from offload.cluster.autoscaling.queueing import QueueingConfig


def periodic(n: int, period: int, noise: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return 10 + 5 * np.sin(2 * np.pi * t / period) + rng.normal(0, noise, n)


def walk_forward_mape(forecaster, y: np.ndarray, start: int, horizon: int, refit: int) -> float:
    """Forecasts each point from the past only (refitting every ``refit`` points)."""
    errors, model = [], None
    for t in range(start, len(y) - horizon):
        if model is None or (t - start) % refit == 0:
            model = forecaster.fit(y[: t + 1], horizon, model)
        pred = forecaster.predict(model, y[: t + 1])
        errors.append(abs(pred - y[t + horizon]) / y[t + horizon])
    return float(np.mean(errors))


def test_holt_winters_with_season_tracks_a_periodic_series():
    y = periodic(240, 40, noise=0.3)
    mape = walk_forward_mape(HoltWinters(HoltWintersConfig(season_bins=40)), y, 120, 3, 20)
    # noise alone is 0.3 / 10 = 3% of the level; the bound allows the model 2x that
    assert mape < 0.06


def test_holt_winters_beats_persistence_on_a_trend():
    y = np.linspace(5, 20, 120)
    hw = walk_forward_mape(HoltWinters(), y, 40, 4, 10)
    persistence = float(np.mean(np.abs(y[40:-4] - y[44:]) / y[44:]))
    assert hw < 0.25 * persistence


def test_lstm_trained_on_the_past_learns_the_period():
    y = periodic(200, 24, noise=0.2, seed=1)
    lstm = Lstm(LstmConfig(window=24, hidden=12, epochs=200, lr=2e-2))
    mape = walk_forward_mape(lstm, y, 140, 3, 100)
    mean_forecast = float(np.mean(np.abs(y[143:] - y[:140].mean()) / y[143:]))
    # a periodic series the mean cannot follow (about 30% error): the LSTM must be well below
    assert mape < 0.12 and mape < 0.5 * mean_forecast


def test_lstm_needs_enough_history():
    assert Lstm(LstmConfig(window=24)).fit(np.ones(20), 3) is None


def feed(policy, rates, period=5.0):
    state, out = policy.initial_state(), []
    for k, r in enumerate(rates):
        o = Observation(
            t_s=period * (k + 1),
            replicas=4,
            pods=(PodView("p"),),
            interval_s=period,
            arrivals=round(r * period),
            service_time_s=0.5,
            service_cv2=0.25,
            slo_s=2.0,
            startup_s=20.0,
        )
        n, state = policy.decide(o, state)
        out.append((n, state))
    return out


def test_predictive_sizes_for_the_forecast_on_a_ramp():
    cfg = PredictiveConfig(QueueingConfig(bounds=Bounds(1, 100)), min_history=10, refit_every=5)
    policy = PredictivePolicy(cfg)
    reactive = PredictivePolicy(cfg).config.queueing
    rates = list(np.linspace(4, 40, 160))  # steady growth: the lag-ahead rate is higher
    out = feed(policy, rates)
    n, state = out[-1]
    assert not state.reactive and state.forecast_hz > rates[-1]
    from offload.cluster.autoscaling.queueing import QueueingPolicy

    q_out = feed(QueueingPolicy(reactive), rates)
    assert n > q_out[-1][0]


def test_predictive_falls_back_to_reactive_when_forecasts_are_poor():
    cfg = PredictiveConfig(QueueingConfig(bounds=Bounds(1, 100)), min_history=10, refit_every=5)
    rng = np.random.default_rng(0)
    rates = list(rng.choice([1.0, 30.0], 200))  # no forecaster can follow this
    out = feed(PredictivePolicy(cfg), rates)
    _, state = out[-1]
    assert state.mean_error > cfg.max_error and state.reactive


def test_bin_must_be_a_multiple_of_the_period():
    from offload.cluster.autoscaling.interface import AutoscalingError

    with pytest.raises(AutoscalingError, match="multiple"):
        PredictiveConfig(QueueingConfig(period_s=4.0), bin_s=10.0)
    assert math.isnan(PredictivePolicy().initial_state().forecast_hz)
