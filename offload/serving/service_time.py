"""Per-model service-time models fitted online: how long a batch takes to run.

Formulation: the service time of a batch of n requests with total cost U units on one path is
modelled as t = a + b U + c n (a: per-batch overhead, b: per unit, c: per request), fitted by
recursive least squares with exponential forgetting (factor ``forgetting``, so the fit follows a
machine whose speed drifts, e.g. under interference) from every completed batch. Until
``min_samples`` batches are seen, the prior (``ServiceTimePrior``, from the model's warm-up or
a calibration run) answers, scaled by the mean ratio of observed to prior-predicted times so far
(one sample already corrects a prior measured on a busier or quieter machine). Predictions are
clamped to >= ``floor_s``. Pure numpy, no clock.

BucketServe (arXiv 2507.17120) uses such a model to compute each request's slack
(deadline - now - predicted service time) and to size batches that still meet their deadlines.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


class ServiceTimeError(ValueError):
    """A service-time setting or observation is invalid."""


@dataclass(frozen=True)
class ServiceTimePrior:
    """Initial coefficients: t = overhead_s + per_unit_s * U + per_item_s * n."""

    overhead_s: float = 0.0
    per_unit_s: float = 0.0
    per_item_s: float = 0.05

    def __post_init__(self) -> None:
        for name in ("overhead_s", "per_unit_s", "per_item_s"):
            value = getattr(self, name)
            if not np.isfinite(value) or value < 0:
                raise ServiceTimeError(f"{name}={value} must be finite and >= 0")

    def predict(self, units: float, items: int) -> float:
        return self.overhead_s + self.per_unit_s * units + self.per_item_s * items


class ServiceTimeModel:
    """Online least-squares fit of t = a + b U + c n for one (model, path).

    Args:
        prior: coefficients used until ``min_samples`` observations.
        unit_scale: units are divided by this before fitting (conditioning), > 0.
        forgetting: RLS forgetting factor in (0.9, 1]; 1 keeps everything.
        min_samples: observations before the fit replaces the prior, >= 3.
        floor_s: smallest prediction (s), >= 0.
    """

    def __init__(
        self,
        prior: ServiceTimePrior | None = None,
        unit_scale: float = 1.0,
        forgetting: float = 0.995,
        min_samples: int = 8,
        floor_s: float = 1e-4,
    ) -> None:
        if not unit_scale > 0:
            raise ServiceTimeError(f"unit_scale={unit_scale} must be > 0")
        if not 0.9 < forgetting <= 1.0:
            raise ServiceTimeError(f"forgetting={forgetting} must be in (0.9, 1]")
        if min_samples < 3:
            raise ServiceTimeError(f"min_samples={min_samples} must be >= 3")
        self.prior = prior or ServiceTimePrior()
        self.unit_scale = unit_scale
        self.forgetting = forgetting
        self.min_samples = min_samples
        self.floor_s = floor_s
        self.samples = 0
        self._theta = np.array(
            [self.prior.overhead_s, self.prior.per_unit_s * unit_scale, self.prior.per_item_s]
        )
        self._P = np.eye(3) * 1e3  # large initial covariance: the data take over quickly
        self._residual_var = 0.0
        self._ratio_sum = 0.0  # sum of observed / prior-predicted times

    def _x(self, units: float, items: int) -> np.ndarray:
        return np.array([1.0, units / self.unit_scale, float(items)])

    def observe(self, units: float, items: int, seconds: float) -> None:
        """Adds one completed batch (total units, requests, measured seconds).

        Raises:
            ServiceTimeError: a negative or non-finite value, or items < 1.
        """
        if items < 1 or not (np.isfinite(units) and units >= 0):
            raise ServiceTimeError(f"bad batch: units={units}, items={items}")
        if not (np.isfinite(seconds) and seconds >= 0):
            raise ServiceTimeError(f"bad service time {seconds}")
        x = self._x(units, items)
        err = seconds - float(x @ self._theta)
        px = self._P @ x
        gain = px / (self.forgetting + float(x @ px))
        self._theta = self._theta + gain * err
        self._P = (self._P - np.outer(gain, px)) / self.forgetting
        self._residual_var = 0.95 * self._residual_var + 0.05 * err * err
        prior = self.prior.predict(units, items)
        self._ratio_sum += seconds / prior if prior > 0 else 1.0
        self.samples += 1

    def predict(self, units: float, items: int) -> float:
        """Predicted seconds for a batch of ``items`` requests totalling ``units``."""
        if items <= 0:
            return 0.0
        if self.samples < self.min_samples:
            scale = self._ratio_sum / self.samples if self.samples else 1.0
            value = self.prior.predict(units, items) * scale
        else:
            value = float(self._x(units, items) @ self._theta)
        # an extrapolation far outside the observed batches can go negative
        return max(value, self.floor_s)

    @property
    def residual_std_s(self) -> float:
        """Running standard deviation of the prediction error (s)."""
        return float(np.sqrt(self._residual_var))

    def coefficients(self) -> dict[str, float]:
        """Current (a, b per unit, c per item) in seconds."""
        a, b, c = (float(v) for v in self._theta)
        if self.samples < self.min_samples:
            p = self.prior
            return {
                "overhead_s": p.overhead_s,
                "per_unit_s": p.per_unit_s,
                "per_item_s": p.per_item_s,
            }
        return {"overhead_s": a, "per_unit_s": b / self.unit_scale, "per_item_s": c}
