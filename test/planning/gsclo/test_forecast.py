"""Forecasts of L_t and the channel gain for the receding-horizon scheduler."""

from __future__ import annotations

import math

import numpy as np
import pytest

from planning.gsclo.channel import FadingConfig, path_gain, simulate_channel_gain
from planning.gsclo.forecast import (
    ForecastConfig,
    ForecastError,
    ForecastState,
    forecast_channel_gain,
    forecast_discrepancy,
    observe,
    poses_along_path,
)

CFG = ForecastConfig()


def _fill(pairs: list[tuple[float, float]], gains=None, dist=None) -> ForecastState:
    state = ForecastState()
    for i, (cov, disc) in enumerate(pairs):
        g = 1e-9 if gains is None else float(gains[i])
        d = 20.0 if dist is None else float(dist[i])
        state = observe(state, CFG, cov, disc, g, d)
    return state


def test_discrepancy_falls_back_to_persistence_without_history() -> None:
    state = _fill([(0.5, 0.3)] * (CFG.min_samples - 1))
    np.testing.assert_array_equal(forecast_discrepancy(state, CFG, 0.42, np.ones(3)), 0.42)


def test_discrepancy_regression_recovers_a_linear_relation() -> None:
    rng = np.random.default_rng(0)
    cov = rng.uniform(0.2, 1.0, 60)
    state = _fill([(c, 0.1 + 0.5 * (1 - c)) for c in cov])
    # exact data: ridge 1e-3 against a feature variance of ~0.05 biases the slope by ~2%
    got = forecast_discrepancy(state, CFG, 0.0, np.array([1.0, 0.4]))
    np.testing.assert_allclose(got, [0.1, 0.4], atol=0.01)


def test_gain_forecast_under_iid_rayleigh_is_the_geometric_mean() -> None:
    dist = np.full(CFG.memory_frames, 30.0)
    gains = simulate_channel_gain(dist, FadingConfig(), seed=3)
    state = _fill([(1.0, 0.0)] * len(dist), gains, dist)
    got = forecast_channel_gain(state, CFG, None, np.array([30.0, 60.0]))
    want = path_gain(np.array([30.0, 60.0]), FadingConfig()) * math.exp(-0.5772)
    # 100 samples of ln Exp(1) (std 1.28): the mean's standard error is 0.13 (3 sigma = 0.4)
    np.testing.assert_allclose(np.log(got / want), 0.0, atol=0.4)
    assert got[1] < got[0]  # farther from the base station: less gain


def test_gain_forecast_follows_a_slow_fade() -> None:
    dist = np.full(60, 30.0)
    slow = FadingConfig(coherence_frames=20)
    gains = simulate_channel_gain(dist, slow, seed=5)
    state = _fill([(1.0, 0.0)] * 60, gains, dist)
    nxt = forecast_channel_gain(state, CFG, None, np.array([30.0]))[0]
    # within a coherence block the next gain is the current one: the forecast leans to it
    last = float(gains[-1])
    mean = float(np.exp(np.mean(np.log(gains))))
    assert abs(math.log(nxt / last)) < abs(math.log(mean / last))


@pytest.mark.parametrize(
    "bad", [(1.5, 0.1, 1e-9, 1.0), (0.5, 0.1, 0.0, 1.0), (0.5, math.nan, 1e-9, 1.0)]
)
def test_bad_observations_are_rejected(bad: tuple[float, ...]) -> None:
    with pytest.raises(ForecastError):
        observe(ForecastState(), CFG, *bad)


def test_poses_follow_the_path_or_go_straight() -> None:
    straight = poses_along_path(None, 1.0, 2.0, math.pi / 2, 2.0, 0.5, 3)
    np.testing.assert_allclose(straight[:, :2], [[1, 3], [1, 4], [1, 5]], atol=1e-12)
    path = np.array([[0.0, 0.0], [4.0, 0.0], [4.0, 4.0]])
    ahead = poses_along_path(path, 0.0, 0.0, 0.0, 2.0, 1.0, 4)
    np.testing.assert_allclose(ahead[:, :2], [[2, 0], [4, 0], [4, 2], [4, 4]], atol=1e-12)
    np.testing.assert_allclose(ahead[2:, 2], math.pi / 2)
