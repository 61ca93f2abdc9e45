"""What the cluster simulation is calibrated from: service times and replica start-up delays
measured on real replica processes.

- :class:`ServiceModel`: the service time of a request of size quantile r in [0, 1) is
  ``median(r) x exp(N(0, log_std^2))``, with ``median(r)`` piecewise linear through the medians
  of the measured times in ``bins`` size-quantile bins and ``log_std`` the spread of
  log(measured / median(r)). ``scaled(k)`` multiplies every time by k (the long-trace
  experiments set the load level this way: a heavier model on the same trace clock).
- :class:`StartupModel`: start-up delays (request to ``/readyz`` 200) drawn from the measured
  ones (bootstrap), or a constant.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from offload.cluster.autoscaling.interface import AutoscalingError


@dataclass(frozen=True)
class ServiceModel:
    """Attributes:
    knots_rank: [K] size quantiles of the knots, ascending in [0, 1].
    knots_s: [K] median service time at each knot (s, > 0).
    log_std: multiplicative noise (std of the log), >= 0.
    """

    knots_rank: tuple[float, ...]
    knots_s: tuple[float, ...]
    log_std: float = 0.0

    def __post_init__(self) -> None:
        if len(self.knots_rank) != len(self.knots_s) or not self.knots_s:
            raise AutoscalingError("knots_rank and knots_s need the same, non-zero length")
        if min(self.knots_s) <= 0 or self.log_std < 0:
            raise AutoscalingError("service times must be > 0 and log_std >= 0")

    @classmethod
    def constant(cls, seconds: float, log_std: float = 0.0) -> ServiceModel:
        return cls((0.0, 1.0), (seconds, seconds), log_std)

    @classmethod
    def from_samples(
        cls, size_rank: np.ndarray, seconds: np.ndarray, bins: int = 5
    ) -> ServiceModel:
        """Fits the model to measured (size quantile, service time) pairs.

        Raises:
            AutoscalingError: fewer than 2 samples or a non-positive time.
        """
        rank, t = np.asarray(size_rank, float), np.asarray(seconds, float)
        if len(t) < 2 or len(rank) != len(t) or np.any(~np.isfinite(t)) or np.any(t <= 0):
            raise AutoscalingError(f"need >= 2 positive service times, got {len(t)}")
        bins = max(1, min(bins, len(t) // 2))
        edges = np.quantile(rank, np.linspace(0, 1, bins + 1))
        centres, medians = [], []
        for lo, hi in itertools.pairwise(edges):
            inside = (rank >= lo) & (rank <= hi)
            if inside.any():
                centres.append(float(np.median(rank[inside])))
                medians.append(float(np.median(t[inside])))
        order = np.argsort(centres)
        model = cls(tuple(np.asarray(centres)[order]), tuple(np.asarray(medians)[order]))
        resid = np.log(t / model.median_s(rank))
        return cls(model.knots_rank, model.knots_s, float(np.std(resid)))

    def median_s(self, rank: np.ndarray | float) -> np.ndarray:
        return np.interp(rank, self.knots_rank, self.knots_s)

    def sample(self, rank: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """[N] service times (s) for requests of size quantiles ``rank``."""
        noise = rng.normal(0.0, self.log_std, len(rank)) if self.log_std > 0 else 0.0
        return self.median_s(rank) * np.exp(noise)

    def moments(self, samples: int = 20_000, seed: int = 0) -> tuple[float, float]:
        """(mean s, squared coefficient of variation) over uniform size quantiles."""
        rng = np.random.default_rng(seed)
        t = self.sample(rng.random(samples), rng)
        return float(t.mean()), float(t.var() / t.mean() ** 2)

    def scaled(self, factor: float) -> ServiceModel:
        if not factor > 0:
            raise AutoscalingError(f"service scale factor={factor} must be > 0")
        return ServiceModel(self.knots_rank, tuple(s * factor for s in self.knots_s), self.log_std)


@dataclass(frozen=True)
class StartupModel:
    """Start-up delays (s): a bootstrap over measured ones."""

    samples_s: tuple[float, ...]

    def __post_init__(self) -> None:
        if not self.samples_s or min(self.samples_s) < 0:
            raise AutoscalingError("start-up delays must be a non-empty list of values >= 0")

    @classmethod
    def constant(cls, seconds: float) -> StartupModel:
        return cls((seconds,))

    @property
    def mean_s(self) -> float:
        return float(np.mean(self.samples_s))

    def sample(self, rng: np.random.Generator) -> float:
        return float(self.samples_s[int(rng.integers(len(self.samples_s)))])
