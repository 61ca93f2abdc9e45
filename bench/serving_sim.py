"""The policy sweep of ``robomr bench serving``: every policy on the same arrivals, simulated.

For one model: arrivals of each pattern (trace, Poisson, bursty) at each offered load (a multiple
of the model's capacity, 1 / the service time of a median request alone) and seed; every policy
runs the very same arrivals through a fresh :class:`ModelScheduler` in the discrete-event
simulator (``offload.serving.simulate``) with service times from the calibrated fit. Policies:
BucketServe, its ablations (no admission control; one bucket, i.e. no split/merge), static
batching (Triton's max batch size and queue delay, both tuned per pattern over a grid: batch
sizes 1, 2, 4 and the memory cap of the largest request; the given delays), FIFO greedy, no
batching.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path as FilePath

import numpy as np

from bench.serving_workload import ServiceFit, ServiceTruth
from offload.loadgen import Arrivals, bursty_arrivals, poisson_arrivals, trace_arrivals
from offload.serving.brownout import BrownoutConfig
from offload.serving.bucket import BucketConfig, BucketPolicy
from offload.serving.model import PATHS, Path
from offload.serving.policy import (
    BatchPolicy,
    FifoGreedy,
    NoBatching,
    StaticBatching,
    static_max_batch,
)
from offload.serving.scheduler import ModelScheduler, ModelSpec, SchedulerConfig
from offload.serving.service_time import ServiceTimeModel, ServiceTimePrior
from offload.serving.simulate import SimRequest, SimResult, simulate

PATTERNS = ("trace", "poisson", "bursty")
POLICIES = ("bucket", "bucket-noadmit", "bucket-1bucket", "static", "fifo", "none")


@dataclass(frozen=True)
class Workload:
    """One model's load: its spec, request costs per path (sorted), service fits, SLO."""

    name: str
    spec: ModelSpec
    costs: dict[Path, np.ndarray]  # [P] cost of each pool request on each path, ascending
    fits: dict[Path, ServiceFit]
    slo_s: float
    memory_budget_bytes: float

    @property
    def capacity_hz(self) -> float:
        """Requests per second one replica serves alone at the median request size."""
        return 1.0 / self.fits["full"].predict(float(np.median(self.costs["full"])), 1)


def arrivals(
    pattern: str, rate_hz: float, duration_s: float, seed: int, trace: FilePath | None
) -> Arrivals:
    if pattern == "trace":
        if trace is None:
            raise ValueError("the trace pattern needs a trace CSV")
        return trace_arrivals(trace, rate_hz, duration_s, offset=(0.137 * seed) % 1.0)
    if pattern == "poisson":
        return poisson_arrivals(rate_hz, duration_s, seed)
    return bursty_arrivals(rate_hz, duration_s, seed)


def static_batch_cap(w: Workload) -> int:
    """The largest static batch whose worst case (the workload's largest request) fits."""
    worst = float(w.costs["full"][-1])
    return static_max_batch(w.spec.memory["full"], w.memory_budget_bytes, worst)


def make_policy(name: str, w: Workload, static: tuple[int, float] = (1, 0.0)) -> BatchPolicy:
    bucket = BucketConfig(bounds=(0,), max_cost=w.spec.max_cost)
    if name == "bucket":
        return BucketPolicy(bucket)
    if name == "bucket-noadmit":
        return BucketPolicy(replace(bucket, admission=False))
    if name == "bucket-1bucket":
        return BucketPolicy(replace(bucket, max_buckets=1))
    if name == "static":
        return StaticBatching(max_batch=static[0], max_delay_s=static[1])
    if name == "fifo":
        return FifoGreedy()
    if name == "none":
        return NoBatching()
    raise ValueError(f"unknown policy {name!r}")


def run_one(
    w: Workload,
    policy: str,
    arr: Arrivals,
    duration_s: float,
    seed: int,
    brownout: bool = False,
    static: tuple[int, float] = (1, 0.0),
    brownout_period_s: float = 5.0,
) -> SimResult:
    """One simulated run of ``policy`` on ``arr``."""
    median = float(np.median(w.costs["full"]))
    priors = {p: ServiceTimePrior(per_item_s=w.fits[p].predict(median, 1)) for p in PATHS}
    service = {p: ServiceTimeModel(priors[p], unit_scale=median) for p in PATHS}
    config = SchedulerConfig(
        slo_s=w.slo_s,
        memory_budget_bytes=w.memory_budget_bytes,
        brownout=BrownoutConfig(slo_s=w.slo_s, period_s=brownout_period_s) if brownout else None,
    )
    sched = ModelScheduler(w.spec, make_policy(policy, w, static), config, service)
    n = len(w.costs["full"])
    index = np.minimum((arr.size_rank * n).astype(int), n - 1)
    requests = [
        SimRequest(float(t), _cost_of(w.costs, int(i)))
        for t, i in zip(arr.times_s, index, strict=True)
    ]
    return simulate(requests, sched, ServiceTruth(w.fits, seed + 1), window_s=duration_s)


def _cost_of(costs: dict[Path, np.ndarray], i: int) -> Callable[[Path], int]:
    return lambda path: int(costs[path][i])


@dataclass
class Sweep:
    """goodput/attainment [seed] per (pattern, policy, load factor), and run details."""

    goodput: dict[tuple[str, str, float], list[float]]
    attainment: dict[tuple[str, str, float], list[float]]
    latency_ms: dict[tuple[str, str, float], list[tuple[float, float, float]]]
    peak_memory_mb: dict[tuple[str, str, float], list[float]]
    batch_mean: dict[tuple[str, str, float], list[float]]
    static: dict[str, tuple[int, float]]  # pattern -> tuned (max batch, max delay s)


def sweep(
    w: Workload,
    loads: Sequence[float],
    seeds: int,
    duration_s: float,
    trace: FilePath | None,
    static_delays_s: Sequence[float],
    patterns: Sequence[str] = PATTERNS,
    progress: Callable[[str], None] | None = None,
) -> Sweep:
    """Every policy on every (pattern, load, seed); static tuned per pattern first."""
    out = Sweep({}, {}, {}, {}, {}, {})
    for pattern in patterns:
        out.static[pattern] = _tune_static(w, loads, duration_s, trace, pattern, static_delays_s)
        for load in loads:
            if progress:
                progress(f"{w.name}: {pattern} at {load:.2f} x capacity")
            for seed in range(seeds):
                arr = arrivals(pattern, load * w.capacity_hz, duration_s, seed, trace)
                for policy in POLICIES:
                    r = run_one(w, policy, arr, duration_s, seed, False, out.static[pattern])
                    key = (pattern, policy, load)
                    out.goodput.setdefault(key, []).append(r.goodput_hz(w.slo_s))
                    out.attainment.setdefault(key, []).append(r.attainment(w.slo_s))
                    lat = tuple(r.percentile_ms(q) for q in (50, 90, 99))
                    out.latency_ms.setdefault(key, []).append(lat)  # type: ignore[arg-type]
                    out.peak_memory_mb.setdefault(key, []).append(r.peak_memory_bytes / 2**20)
                    mean_batch = float(np.mean(r.batch_sizes)) if r.batch_sizes else 0.0
                    out.batch_mean.setdefault(key, []).append(mean_batch)
    return out


def _tune_static(
    w: Workload,
    loads: Sequence[float],
    duration_s: float,
    trace: FilePath | None,
    pattern: str,
    delays_s: Sequence[float],
) -> tuple[int, float]:
    """The static (max batch, delay) with the best mean goodput over the loads (seed 0):
    tuned as fairly as the method it is compared with."""
    cap = static_batch_cap(w)  # never a batch that could overflow the memory budget
    sizes = sorted({s for s in (1, 2, 4) if s <= cap} | {cap})
    best: tuple[float, int, float] = (-1.0, 1, 0.0)
    for size in sizes:
        for delay in delays_s:
            total = 0.0
            for load in loads:
                arr = arrivals(pattern, load * w.capacity_hz, duration_s, 0, trace)
                r = run_one(w, "static", arr, duration_s, 0, False, (size, delay))
                total += r.goodput_hz(w.slo_s)
            best = max(best, (total, size, delay))
    return best[1], best[2]


def load_at_attainment(loads: Sequence[float], attainment: Sequence[float], level: float) -> float:
    """The largest offered load at which attainment is still >= ``level``, interpolated
    linearly between swept loads (0 if even the lightest misses it)."""
    a = np.asarray(attainment)
    if a[0] < level:
        return 0.0
    for i in range(1, len(loads)):
        if a[i] < level:
            frac = (a[i - 1] - level) / max(a[i - 1] - a[i], 1e-12)
            return float(loads[i - 1] + frac * (loads[i] - loads[i - 1]))
    return float(loads[-1])
