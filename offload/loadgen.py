"""Arrival processes for load tests: a replayed trace, Poisson, and bursty on/off.

Every generator returns :class:`Arrivals`: arrival times (s, from 0, sorted) and a size rank in
[0, 1) per request, which a benchmark maps to a request of that quantile of its size pool (so
a trace's heavy requests stay heavy).

- ``trace_arrivals``: the Azure LLM inference trace format (CSV columns TIMESTAMP,
  ContextTokens, GeneratedTokens; Patel et al., "Splitwise", ISCA 2024, dataset 2023). The
  inter-arrival times are scaled by one factor so the mean rate is ``rate_hz``: burstiness and
  ordering are the trace's own. The size rank is the rank of ContextTokens.
- ``poisson_arrivals``: exponential inter-arrival times at ``rate_hz``.
- ``bursty_arrivals``: a two-state Markov-modulated Poisson process with deterministic phases:
  ``on_s`` at ``burst_factor`` x the mean rate, then ``off_s`` at the rate that keeps the mean
  at ``rate_hz`` (0 if the bursts alone exceed it).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np


class LoadgenError(ValueError):
    """A bad trace file or generator setting (the message names the line or field)."""


@dataclass(frozen=True)
class Arrivals:
    times_s: np.ndarray  # [N] float64, sorted, from 0
    size_rank: np.ndarray  # [N] float64 in [0, 1)

    def __len__(self) -> int:
        return len(self.times_s)

    @property
    def rate_hz(self) -> float:
        return len(self) / float(self.times_s[-1]) if len(self) > 1 else 0.0


def _check(rate_hz: float, duration_s: float) -> None:
    if not (np.isfinite(rate_hz) and rate_hz > 0):
        raise LoadgenError(f"rate_hz={rate_hz} must be > 0")
    if not (np.isfinite(duration_s) and duration_s > 0):
        raise LoadgenError(f"duration_s={duration_s} must be > 0")


def read_azure_trace(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(arrival times s from the first request, ContextTokens, GeneratedTokens) of a trace CSV.

    Raises:
        LoadgenError: missing file or columns, a malformed row (named by its line number), or
            fewer than two requests.
    """
    path = Path(path)
    try:
        rows = list(csv.DictReader(path.open(newline="")))
    except OSError as err:
        raise LoadgenError(f"cannot read the trace {path}: {err.strerror}") from err
    need = {"TIMESTAMP", "ContextTokens", "GeneratedTokens"}
    if not rows or not need <= set(rows[0]):
        raise LoadgenError(f"{path}: needs the columns {sorted(need)} (Azure LLM trace format)")
    times, context, generated = [], [], []
    for line, row in enumerate(rows, start=2):
        try:
            times.append(_timestamp(row["TIMESTAMP"]))
            context.append(int(row["ContextTokens"]))
            generated.append(int(row["GeneratedTokens"]))
        except (ValueError, TypeError) as err:
            raise LoadgenError(f"{path}:{line}: malformed row ({err})") from err
    if len(times) < 2:
        raise LoadgenError(f"{path}: needs at least two requests")
    t = np.asarray(times, dtype=np.float64)
    order = np.argsort(t, kind="stable")
    return t[order] - t[order[0]], np.asarray(context)[order], np.asarray(generated)[order]


def _timestamp(text: str) -> float:
    """Seconds since the epoch of ``2023-11-16 18:15:46.6805900`` (any fractional digits)."""
    base, _, frac = text.strip().partition(".")
    seconds = datetime.strptime(base, "%Y-%m-%d %H:%M:%S").timestamp()
    return seconds + (float(f"0.{frac}") if frac else 0.0)


def trace_arrivals(
    path: str | Path, rate_hz: float, duration_s: float, offset: float = 0.0
) -> Arrivals:
    """The trace scaled to ``rate_hz``, the window of ``duration_s`` starting at the fraction
    ``offset`` in [0, 1) of the trace (wrapping around), times from 0.

    Raises:
        LoadgenError: see :func:`read_azure_trace`, or bad settings.
    """
    _check(rate_hz, duration_s)
    if not 0.0 <= offset < 1.0:
        raise LoadgenError(f"offset={offset} must be in [0, 1)")
    t, context, _ = read_azure_trace(path)
    scale = (len(t) / t[-1]) / rate_hz  # trace seconds -> scaled seconds
    span = t[-1] * scale
    if duration_s > span:
        raise LoadgenError(f"duration {duration_s} s exceeds the scaled trace ({span:.0f} s)")
    scaled = t * scale
    start = offset * span
    shifted = np.where(scaled >= start, scaled - start, scaled + span - start)
    keep = shifted < duration_s
    order = np.argsort(shifted[keep], kind="stable")
    rank = np.argsort(np.argsort(context, kind="stable"), kind="stable") / len(context)
    return Arrivals(shifted[keep][order], rank[keep][order])


def poisson_arrivals(rate_hz: float, duration_s: float, seed: int) -> Arrivals:
    """Poisson arrivals at ``rate_hz`` for ``duration_s`` (uniform size ranks)."""
    _check(rate_hz, duration_s)
    rng = np.random.default_rng(seed)
    gaps = rng.exponential(1.0 / rate_hz, int(rate_hz * duration_s * 1.5) + 20)
    times = np.cumsum(gaps)
    times = times[times < duration_s]
    return Arrivals(times, rng.random(len(times)))


def bursty_arrivals(
    rate_hz: float,
    duration_s: float,
    seed: int,
    on_s: float = 5.0,
    off_s: float = 15.0,
    burst_factor: float = 3.0,
) -> Arrivals:
    """On/off modulated Poisson arrivals with mean rate ``rate_hz`` (see the module docstring).

    Raises:
        LoadgenError: non-positive phases or a burst factor below 1.
    """
    _check(rate_hz, duration_s)
    if on_s <= 0 or off_s <= 0 or burst_factor < 1:
        raise LoadgenError("on_s and off_s must be > 0 and burst_factor >= 1")
    frac = on_s / (on_s + off_s)
    high = rate_hz * burst_factor
    low = max(rate_hz - frac * high, 0.0) / (1 - frac)
    rng = np.random.default_rng(seed)
    times: list[np.ndarray] = []
    start, on = 0.0, True
    while start < duration_s:
        length, rate = (on_s, high) if on else (off_s, low)
        n = rng.poisson(rate * length)
        times.append(start + np.sort(rng.uniform(0.0, length, n)))
        start, on = start + length, not on
    t = np.concatenate(times)
    t = t[t < duration_s]
    return Arrivals(t, rng.random(len(t)))
