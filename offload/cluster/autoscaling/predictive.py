"""Predictive autoscaling: size for the arrival rate forecast one scale-up lag ahead.

A replica asked for now serves only after the scale-up lag L (start-up delay + one decision
period), so the policy sizes the cluster (the M/G/c rule of ``queueing``) for
``max(current rate, forecast rate at t + L)``: the current replicas cover now, the new ones the
forecast. Arrivals are binned (``bin_s``); the forecaster (Holt-Winters or the LSTM of
``forecast``) is fitted on the bins seen so far only, refitted every ``refit_every`` bins, and
predicts ``h = ceil(L / bin_s)`` bins ahead. Each forecast is scored when its bin is observed
(absolute error relative to max(actual, 0.5 x mean rate)); while the mean of the last
``error_window`` errors exceeds ``max_error``, or before ``min_history`` bins exist, the policy
falls back to the reactive rule (the current rate alone). Scale-downs wait ``scale_down_delay_s``
as in ``queueing``.

Taxonomy (arXiv 2507.17128): proactive (time-series prediction) horizontal scaling with a
model-based sizing rule; objective: a latency SLO percentile at the least replicas; behaviour
model: statistical (Holt-Winters) or learned (LSTM, SealOS+) load model plus an M/G/c queue.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from offload.cluster.autoscaling.forecast import HoltWinters, Lstm, make_forecaster
from offload.cluster.autoscaling.interface import AutoscalingError, Observation, check_positive
from offload.cluster.autoscaling.queueing import (
    QueueingConfig,
    RateState,
    estimate_rate,
    hold_down,
    push_arrivals,
    size_for,
)


@dataclass(frozen=True)
class PredictiveConfig:
    """Attributes:
    queueing: the sizing rule, rate window, scale-down delay and period.
    forecaster: "holt-winters" or "lstm".
    bin_s: forecast resolution (s), a multiple of the period.
    min_history: bins before the first forecast is used.
    refit_every: bins between refits.
    error_window: forecasts averaged for the fallback test.
    max_error: mean relative error above which the policy is reactive.
    """

    queueing: QueueingConfig = field(default_factory=QueueingConfig)
    forecaster: str = "holt-winters"
    bin_s: float = 10.0
    min_history: int = 30
    refit_every: int = 30
    error_window: int = 12
    max_error: float = 0.35

    def __post_init__(self) -> None:
        check_positive(bin_s=self.bin_s, max_error=self.max_error)
        ratio = self.bin_s / self.queueing.period_s
        if abs(ratio - round(ratio)) > 1e-9 or ratio < 1:
            raise AutoscalingError(f"bin_s={self.bin_s} must be a multiple of the period")
        if self.min_history < 2 or self.refit_every < 1 or self.error_window < 1:
            raise AutoscalingError("min_history >= 2, refit_every >= 1, error_window >= 1")


@dataclass(frozen=True)
class PredictiveState:
    rate: RateState = field(default_factory=RateState)
    bins: tuple[float, ...] = ()  # arrival rate of each closed bin
    partial: tuple[int, int] = (0, 0)  # (arrivals, intervals) of the open bin
    model: Any = None
    fitted_at: int = -1  # len(bins) at the last fit
    horizon: int = 0
    pending: tuple[tuple[int, float], ...] = ()  # (bin index, forecast rate)
    errors: tuple[float, ...] = ()
    error_sum: float = 0.0  # every scored forecast of the run, for reports
    error_count: int = 0
    forecast_hz: float = math.nan  # the last forecast used (NaN: none)
    reactive: bool = True  # fell back on the reactive rule at the last decision

    @property
    def mean_error(self) -> float:
        """Mean relative error of the last ``error_window`` scored forecasts."""
        return float(np.mean(self.errors)) if self.errors else math.nan

    @property
    def run_error(self) -> float:
        """Mean relative error of every forecast scored so far (NaN if none)."""
        return self.error_sum / self.error_count if self.error_count else math.nan


@dataclass(frozen=True)
class PredictivePolicy:
    """See the module docstring."""

    config: PredictiveConfig = field(default_factory=PredictiveConfig)
    name: str = "predictive"

    @property
    def period_s(self) -> float:
        return self.config.queueing.period_s

    def initial_state(self) -> PredictiveState:
        return PredictiveState()

    def _forecaster(self) -> HoltWinters | Lstm:
        return make_forecaster(self.config.forecaster)

    def decide(self, obs: Observation, state: PredictiveState) -> tuple[int, PredictiveState]:
        cfg, q = self.config, self.config.queueing
        arrivals = push_arrivals(state.rate, obs, q.rate_window_s + obs.interval_s)
        rate_now = estimate_rate(arrivals, obs.t_s, q)
        state = _close_bins(state, obs, round(cfg.bin_s / q.period_s), cfg)
        horizon = max(1, math.ceil((obs.startup_s + q.period_s) / cfg.bin_s))
        bins = np.asarray(state.bins)
        forecast, model, fitted_at = math.nan, state.model, state.fitted_at
        if len(bins) >= cfg.min_history:
            forecaster = self._forecaster()
            if (
                model is None
                or horizon != state.horizon
                or len(bins) - fitted_at >= cfg.refit_every
            ):
                model, fitted_at = forecaster.fit(bins, horizon, model), len(bins)
            if model is not None:
                forecast = forecaster.predict(model, bins)
        pending = state.pending
        if not math.isnan(forecast):
            pending = (*pending, (len(bins) - 1 + horizon, forecast))
        mean_err = float(np.mean(state.errors)) if state.errors else math.inf
        reactive = math.isnan(forecast) or len(state.errors) < 3 or mean_err > cfg.max_error
        plan = rate_now if reactive else max(rate_now, forecast)
        desired, delay = hold_down(
            state.rate.delay, obs.t_s, q.scale_down_delay_s, size_for(obs, plan, q)
        )
        new = PredictiveState(
            rate=RateState(arrivals, delay),
            bins=state.bins,
            partial=state.partial,
            model=model,
            fitted_at=fitted_at,
            horizon=horizon,
            pending=pending,
            errors=state.errors,
            error_sum=state.error_sum,
            error_count=state.error_count,
            forecast_hz=forecast,
            reactive=reactive,
        )
        return q.bounds.clamp(desired), new


def _close_bins(
    state: PredictiveState, obs: Observation, per_bin: int, cfg: PredictiveConfig
) -> PredictiveState:
    """Adds the interval to the open bin; on closing it, scores the forecasts made for it."""
    count, intervals = state.partial[0] + obs.arrivals, state.partial[1] + 1
    if intervals < per_bin:
        return replace(state, partial=(count, intervals))
    rate = count / cfg.bin_s
    bins = (*state.bins, rate)
    index = len(bins) - 1
    floor = 0.5 * float(np.mean(bins))
    scored = [abs(v - rate) / max(rate, floor, 1e-9) for t, v in state.pending if t == index]
    pending = tuple(p for p in state.pending if p[0] > index)
    return replace(
        state,
        bins=bins,
        partial=(0, 0),
        pending=pending,
        errors=(*state.errors, *scored)[-cfg.error_window :],
        error_sum=state.error_sum + sum(scored),
        error_count=state.error_count + len(scored),
    )
