"""What the cluster simulation is calibrated from: service times and replica start-up delays
measured on real replica processes.

- :class:`ServiceModel`: the service time of a request of size quantile r in [0, 1) is
  ``median(r) x exp(N(0, log_std^2))``, with ``median(r)`` piecewise linear through the medians
  of the measured times in ``bins`` size-quantile bins and ``log_std`` the spread of
  log(measured / median(r)). ``scaled(k)`` multiplies every time by k (the long-trace
  experiments set the load level this way: a heavier model on the same trace clock).
- :class:`StartupModel`: start-up delays (request to ``/readyz`` 200) drawn from the measured
  ones (bootstrap), or a constant.
- :class:`ConcurrencyCurve`: the node's aggregate speed with k requests in service at once on
  different replicas, measured with k concurrent requests (``live.calibrate_concurrency``): the
  simulation's processor-sharing model of replicas that share the node's cores.
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


@dataclass(frozen=True)
class ConcurrencyCurve:
    """How the node's speed grows with the requests it serves at once (the simulation's
    ``node_speed``): ``speed[k - 1]`` is the aggregate speed, in uncontended requests per unit
    time, with k requests in service on different replicas (1 for k = 1; k with a free core for
    each; flat once the cores are saturated; the last value holds beyond the end).
    """

    speed: tuple[float, ...]

    def __post_init__(self) -> None:
        s = np.asarray(self.speed, float)
        if not len(s) or np.any(~np.isfinite(s)) or np.any(s <= 0):
            raise AutoscalingError(f"concurrency speeds {self.speed} must be positive values")

    @classmethod
    def cores(cls, n: float, up_to: int = 32) -> ConcurrencyCurve:
        """An ideal node of ``n`` cores: speed min(k, n)."""
        if not n > 0:
            raise AutoscalingError(f"cores={n} must be > 0")
        return cls(tuple(min(float(k), n) for k in range(1, up_to + 1)))

    @classmethod
    def from_latencies(cls, latency_s: dict[int, list[list[float]]]) -> ConcurrencyCurve:
        """Fits the curve to measured latencies: ``latency_s[k][b]`` are the latencies of
        request body b when k copies run at once (each on its own replica); k = 1 is required.
        speed(k) = k x mean over bodies of median_1(b) / median_k(b), at most k (a request
        cannot run faster than alone) and at least speed(k - 1) (sharing is work-conserving:
        one more request does not slow the node down; a dip is measurement noise).

        Raises:
            AutoscalingError: no k = 1 measurement, or non-positive latencies.
        """
        if 1 not in latency_s:
            raise AutoscalingError("the concurrency curve needs latencies at k = 1")
        base = [float(np.median(b)) for b in latency_s[1]]
        raw: list[float] = []
        for k in range(1, max(latency_s) + 1):
            if k not in latency_s:
                raise AutoscalingError(f"no latencies at concurrency {k}")
            meds = [float(np.median(b)) for b in latency_s[k]]
            if len(meds) != len(base) or min(meds + base) <= 0:
                raise AutoscalingError(f"latencies at k={k}: need positive values per body")
            raw.append(k * float(np.mean([b / m for b, m in zip(base, meds, strict=True)])))
        return cls(_work_conserving(raw))

    @classmethod
    def from_throughput(cls, rate_hz: dict[int, float]) -> ConcurrencyCurve:
        """Fits the curve to sustained throughputs: ``rate_hz[k]`` requests per second that k
        closed-loop clients, one per replica, completed together; speed(k) = rate(k) / rate(1),
        at most k and at least speed(k - 1) (as ``from_latencies``).

        Raises:
            AutoscalingError: no k = 1 measurement, a gap, or a non-positive rate.
        """
        if 1 not in rate_hz or not rate_hz[1] > 0:
            raise AutoscalingError("the sustained curve needs a positive rate at k = 1")
        for k in range(1, max(rate_hz) + 1):
            if not rate_hz.get(k, 0.0) > 0:
                raise AutoscalingError(f"no positive sustained rate at concurrency {k}")
        return cls(_work_conserving([rate_hz[k] / rate_hz[1] for k in range(1, max(rate_hz) + 1)]))

    def minus_load(self, cores: float) -> ConcurrencyCurve:
        """The curve with ``cores`` of the node taken by other work on it (e.g. the router's
        CPU at the replay's request rate): the aggregate speed is capped at the saturated
        speed minus that share, never below one request's (a lone request keeps a core).

        Raises:
            AutoscalingError: a negative share.
        """
        if not cores >= 0:
            raise AutoscalingError(f"cores={cores} taken by other work must be >= 0")
        cap = max(1.0, max(self.speed) - cores)
        return ConcurrencyCurve(tuple(min(v, cap) for v in self.speed))


def _work_conserving(raw: list[float]) -> tuple[float, ...]:
    """Measured speeds ``raw[k - 1]`` made a valid curve: 1 at k = 1, at most k (a request
    cannot run faster than alone) and at least speed(k - 1) (one more request does not slow
    the node down; a dip is measurement noise)."""
    speeds: list[float] = []
    for k, v in enumerate(raw, start=1):
        speeds.append(1.0 if k == 1 else float(np.clip(v, speeds[-1], k)))
    return tuple(speeds)
