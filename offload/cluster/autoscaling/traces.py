"""Load traces for the autoscaling harness: a CSV in the Azure LLM trace format, and synthetic
diurnal, bursty and step patterns.

A :class:`Trace` is arrival times (s from 0, on the trace's own clock) and a size rank in [0, 1)
per request (the rank of ContextTokens in a CSV; uniform in the synthetic ones), which the
service-time model maps to a request of that quantile. Synthetic traces are non-homogeneous
Poisson processes drawn by thinning (Lewis and Shedler 1979) from a rate function:

- ``diurnal``: ``mean (1 + a sin(2 pi t / period))``, a day compressed into ``period_s``;
- ``bursty``: a base rate with bursts of ``burst_factor`` x for 20-60 s at Poisson-spaced times
  (flash crowds);
- ``step``: a rate for a third, ``step_factor`` x it for a third, then back (mean as asked).

``segment`` cuts a window and ``time_scaled`` compresses it (the live replay's time-scaled
segments): inter-arrival times divided by the factor, so the rate is multiplied by it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from offload.cluster.autoscaling.interface import AutoscalingError
from offload.loadgen import LoadgenError, read_azure_trace

SYNTHETIC = ("diurnal", "bursty", "step")


@dataclass(frozen=True)
class Trace:
    """Arrivals of one trace.

    Attributes:
        name: label used in tables and JSON.
        times_s: [N] arrival times (s), sorted, from 0.
        size_rank: [N] size quantile of each request in [0, 1).
        duration_s: the span the trace covers (>= the last arrival).
    """

    name: str
    times_s: np.ndarray  # [N] float64
    size_rank: np.ndarray  # [N] float64
    duration_s: float

    def __len__(self) -> int:
        return len(self.times_s)

    @property
    def mean_rate_hz(self) -> float:
        return len(self) / self.duration_s

    def rate_series(self, bin_s: float) -> np.ndarray:
        """Arrivals per second in consecutive bins of ``bin_s`` (for plots and forecasters)."""
        edges = np.arange(0.0, self.duration_s + bin_s, bin_s)
        return np.histogram(self.times_s, bins=edges)[0] / bin_s

    def segment(self, start_s: float, length_s: float, name: str | None = None) -> Trace:
        """Arrivals in [start, start + length), times from 0."""
        if not (0 <= start_s < self.duration_s and length_s > 0):
            raise AutoscalingError(
                f"segment [{start_s}, {start_s + length_s}) outside the trace "
                f"(0..{self.duration_s})"
            )
        keep = (self.times_s >= start_s) & (self.times_s < start_s + length_s)
        length = min(length_s, self.duration_s - start_s)
        return Trace(
            name or f"{self.name}[{start_s:.0f}+{length:.0f}s]",
            self.times_s[keep] - start_s,
            self.size_rank[keep],
            length,
        )

    def time_scaled(self, factor: float) -> Trace:
        """The same arrivals ``factor`` x faster (rate x factor, duration / factor)."""
        if not factor > 0:
            raise AutoscalingError(f"time-scale factor={factor} must be > 0")
        return Trace(
            f"{self.name}/x{factor:g}",
            self.times_s / factor,
            self.size_rank,
            self.duration_s / factor,
        )


def azure_csv(path: str | Path, name: str | None = None) -> Trace:
    """A CSV in the Azure LLM inference trace format (TIMESTAMP, ContextTokens, GeneratedTokens).

    Raises:
        AutoscalingError: unreadable file or malformed rows (the message names the line).
    """
    try:
        times, context, _ = read_azure_trace(path)
    except LoadgenError as err:
        raise AutoscalingError(str(err)) from err
    rank = np.argsort(np.argsort(context, kind="stable"), kind="stable") / len(context)
    # the last arrival ends the trace; one mean gap more keeps the final rate bin honest
    duration = float(times[-1] + times[-1] / max(len(times) - 1, 1))
    return Trace(
        name or Path(path).stem, times.astype(np.float64), rank.astype(np.float64), duration
    )


def _thinning(
    rate: Callable[[np.ndarray], np.ndarray], peak_hz: float, duration_s: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = rng.poisson(peak_hz * duration_s)
    t = np.sort(rng.uniform(0.0, duration_s, n))
    keep = rng.uniform(0.0, peak_hz, n) < rate(t)
    t = t[keep]
    return t, rng.random(len(t))


def synthetic(
    kind: str,
    mean_rate_hz: float = 5.0,
    duration_s: float = 3600.0,
    seed: int = 0,
    period_s: float = 1800.0,
    amplitude: float = 0.6,
    burst_factor: float = 3.0,
    bursts_per_hour: float = 8.0,
    step_factor: float = 2.5,
) -> Trace:
    """One synthetic pattern (see the module docstring).

    Raises:
        AutoscalingError: an unknown kind or a bad setting.
    """
    if not (mean_rate_hz > 0 and duration_s > 0):
        raise AutoscalingError("mean_rate_hz and duration_s must be > 0")
    if kind == "diurnal":
        if not 0 <= amplitude < 1:
            raise AutoscalingError(f"amplitude={amplitude} must be in [0, 1)")

        def rate(t: np.ndarray) -> np.ndarray:
            return mean_rate_hz * (1 + amplitude * np.sin(2 * np.pi * t / period_s))

        peak = mean_rate_hz * (1 + amplitude)
    elif kind == "bursty":
        rng = np.random.default_rng(seed + 10_000)
        starts = np.cumsum(rng.exponential(3600.0 / bursts_per_hour, 64))
        starts = starts[starts < duration_s]
        lengths = rng.uniform(20.0, 60.0, len(starts))
        base = mean_rate_hz / (1 + (burst_factor - 1) * lengths.sum() / duration_s)

        def rate(t: np.ndarray) -> np.ndarray:
            inside = ((t[:, None] >= starts) & (t[:, None] < starts + lengths)).any(axis=1)
            return np.where(inside, base * burst_factor, base)

        peak = base * burst_factor
    elif kind == "step":
        low = 3 * mean_rate_hz / (2 + step_factor)  # the mean over the three thirds

        def rate(t: np.ndarray) -> np.ndarray:
            middle = (t >= duration_s / 3) & (t < 2 * duration_s / 3)
            return np.where(middle, low * step_factor, low)

        peak = low * max(step_factor, 1.0)
    else:
        raise AutoscalingError(f"unknown synthetic trace {kind!r} (one of {', '.join(SYNTHETIC)})")
    t, rank = _thinning(rate, peak, duration_s, seed)
    return Trace(f"{kind}", t, rank, duration_s)


def load_trace(spec: str, seed: int = 0, duration_s: float = 3600.0, rate_hz: float = 5.0) -> Trace:
    """A trace by name: a synthetic kind (``diurnal``, ``bursty``, ``step``) or a CSV path."""
    if spec in SYNTHETIC:
        return synthetic(spec, rate_hz, duration_s, seed)
    return azure_csv(spec)
