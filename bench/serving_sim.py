"""The policy sweep of ``robomr bench serving``: every policy on the same arrivals, simulated.

For one model: arrivals of each pattern (trace, Poisson, bursty) at each offered load (a multiple
of the model's capacity, 1 / the service time of a median request alone) and seed; every policy
runs the very same arrivals through a fresh :class:`ModelScheduler` in the discrete-event
simulator (``offload.serving.simulate``) with service times from the calibrated fit. Policies:
BucketServe, its ablations (no admission control; one bucket, i.e. no split/merge), static
batching (Triton's max batch size, queue delay and queue-policy timeout, tuned per pattern over
a grid: batch sizes 1 to 8, powers of two and the memory cap of the largest request; the given
delays; the given timeouts as shares of the SLO), the
same grid tuned separately at each offered load (``static-perload``: an oracle an operator
could not run, the upper bound of static batching), FIFO greedy, no batching.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
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
POLICIES = (
    "bucket",
    "bucket-noadmit",
    "bucket-1bucket",
    "static",
    "static-perload",
    "fifo",
    "none",
)


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


def make_policy(name: str, w: Workload, static: tuple[float, ...] = (1, 0.0)) -> BatchPolicy:
    """A fresh policy; ``static`` = (max batch, max delay s[, queue timeout as a share of the
    SLO, 0: none]) for the static policies."""
    bucket = BucketConfig(bounds=(0,), max_cost=w.spec.max_cost)
    if name == "bucket":
        return BucketPolicy(bucket)
    if name == "bucket-noadmit":
        return BucketPolicy(replace(bucket, admission=False))
    if name == "bucket-1bucket":
        return BucketPolicy(replace(bucket, max_buckets=1))
    if name in ("static", "static-perload"):
        timeout = static[2] * w.slo_s if len(static) > 2 and static[2] > 0 else None
        return StaticBatching(
            max_batch=int(static[0]), max_delay_s=static[1], queue_timeout_s=timeout
        )
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
    static: tuple[float, ...] = (1, 0.0),
    brownout_period_s: float = 5.0,
    brownout_factor: float = 0.8,
    brownout_rescue: bool = False,
    brownout_law: str = "paper",
    brownout_headroom: float = 1.0,
) -> SimResult:
    """One simulated run of ``policy`` on ``arr``."""
    median = float(np.median(w.costs["full"]))
    priors = {p: ServiceTimePrior(per_item_s=w.fits[p].predict(median, 1)) for p in PATHS}
    service = {p: ServiceTimeModel(priors[p], unit_scale=median) for p in PATHS}
    config = SchedulerConfig(
        slo_s=w.slo_s,
        memory_budget_bytes=w.memory_budget_bytes,
        brownout=(
            BrownoutConfig(
                slo_s=w.slo_s, period_s=brownout_period_s, decrease_factor=brownout_factor
            )
            if brownout
            else None
        ),
        brownout_rescue=brownout_rescue,
        brownout_law=brownout_law,
        brownout_headroom=brownout_headroom,
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
    # pattern -> tuned (max batch, max delay s, queue timeout x SLO; 0: none)
    static: dict[str, tuple[int, float, float]]
    static_perload: dict[tuple[str, float], tuple[int, float, float]] = field(default_factory=dict)
    # static_grid[pattern][(max batch, delay s, timeout)] = mean goodput over the loads (seed 0)
    static_grid: dict[str, dict[tuple[int, float, float], float]] = field(default_factory=dict)


def sweep(
    w: Workload,
    loads: Sequence[float],
    seeds: int,
    duration_s: float,
    trace: FilePath | None,
    static_delays_s: Sequence[float],
    patterns: Sequence[str] = PATTERNS,
    progress: Callable[[str], None] | None = None,
    static_timeouts: Sequence[float] = (0.0,),
) -> Sweep:
    """Every policy on every (pattern, load, seed); static tuned per pattern first."""
    out = Sweep({}, {}, {}, {}, {}, {})
    for pattern in patterns:
        if progress:
            progress(f"{w.name}: tuning static batching on {pattern}")
        grid = _static_grid(w, loads, duration_s, trace, pattern, static_delays_s, static_timeouts)
        out.static_grid[pattern] = {k: float(np.mean(v)) for k, v in grid.items()}
        out.static[pattern] = max(grid, key=lambda k: (np.mean(grid[k]), -k[1], k))
        for j, load in enumerate(loads):
            out.static_perload[(pattern, load)] = max(grid, key=lambda k: (grid[k][j], -k[1], k))
        for load in loads:
            if progress:
                progress(f"{w.name}: {pattern} at {load:.2f} x capacity")
            for seed in range(seeds):
                arr = arrivals(pattern, load * w.capacity_hz, duration_s, seed, trace)
                for policy in POLICIES:
                    static = (
                        out.static_perload[(pattern, load)]
                        if policy == "static-perload"
                        else out.static[pattern]
                    )
                    r = run_one(w, policy, arr, duration_s, seed, False, static)
                    key = (pattern, policy, load)
                    out.goodput.setdefault(key, []).append(r.goodput_hz(w.slo_s))
                    out.attainment.setdefault(key, []).append(r.attainment(w.slo_s))
                    lat = tuple(r.percentile_ms(q) for q in (50, 90, 99))
                    out.latency_ms.setdefault(key, []).append(lat)  # type: ignore[arg-type]
                    out.peak_memory_mb.setdefault(key, []).append(r.peak_memory_bytes / 2**20)
                    mean_batch = float(np.mean(r.batch_sizes)) if r.batch_sizes else 0.0
                    out.batch_mean.setdefault(key, []).append(mean_batch)
    return out


def _static_grid(
    w: Workload,
    loads: Sequence[float],
    duration_s: float,
    trace: FilePath | None,
    pattern: str,
    delays_s: Sequence[float],
    timeouts: Sequence[float] = (0.0,),
) -> dict[tuple[int, float, float], list[float]]:
    """(max batch, delay, queue timeout) -> goodput at each load (seed 0) for every static
    setting on the grid: batch sizes 1..8, powers of two up to the memory cap and the cap (never
    a batch that could overflow the budget), the given delays, the given queue timeouts (shares
    of the SLO; 0: drop only past the deadline): static is tuned as fairly as bucket batching."""
    cap = static_batch_cap(w)
    sizes = sorted({*range(1, min(cap, 8) + 1), *(2**i for i in range(cap.bit_length())), cap})
    out: dict[tuple[int, float, float], list[float]] = {}
    arrs = [arrivals(pattern, load * w.capacity_hz, duration_s, 0, trace) for load in loads]
    for size, delay, timeout in itertools.product(sizes, delays_s, timeouts):
        key = (size, delay, timeout)
        runs = [run_one(w, "static", arr, duration_s, 0, False, key) for arr in arrs]
        out[key] = [r.goodput_hz(w.slo_s) for r in runs]
    return out


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
