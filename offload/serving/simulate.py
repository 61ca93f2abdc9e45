"""Discrete-event simulation of one replica: the real schedulers on a virtual clock.

The very :class:`~offload.serving.scheduler.ModelScheduler` (admission, batching policy,
brownout law, online service-time fit) that the asyncio server runs is driven here by a virtual
clock, with each batch's duration drawn from ``service_time(path, costs)`` (in benchmarks: a
model fitted to batches measured on the real model on this machine). One model runs one batch
at a time, as in the server. Event order at equal times: completions, brownout control,
arrivals, then dispatch.

Outcomes per request: ``ok`` with its latency (arrival to completion), ``rejected`` (not
admitted: HTTP 429/413) or ``expired`` (dropped by the policy before running). Memory: each
batch's bytes from the model's memory model; the peak over the run is reported.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from offload.serving.model import Path
from offload.serving.policy import QueuedRequest
from offload.serving.scheduler import ModelScheduler, Rejection


@dataclass(frozen=True)
class SimRequest:
    arrival_s: float
    cost: Callable[[Path], int]  # the request's cost on each path
    budget_s: float | None = None  # latency budget (None: the scheduler's SLO)


@dataclass
class SimResult:
    """Per-request outcomes of a run (arrays in request order)."""

    status: np.ndarray  # [N] str: "ok", "rejected", "expired"
    latency_s: np.ndarray  # [N] float64: inf unless ok
    path: np.ndarray  # [N] str: path taken ("" if never admitted)
    batch_sizes: list[int] = field(default_factory=list)
    peak_memory_bytes: float = 0.0
    tau: list[tuple[float, float]] = field(default_factory=list)  # (time s, tau) per change
    duration_s: float = 0.0

    def attainment(self, slo_s: float) -> float:
        """Share of all requests answered within ``slo_s`` (rejected ones count as misses)."""
        return float(np.mean(self.latency_s <= slo_s)) if len(self.latency_s) else 0.0

    def goodput_hz(self, slo_s: float) -> float:
        """Requests answered within ``slo_s`` per second of the run."""
        return float(np.sum(self.latency_s <= slo_s)) / self.duration_s if self.duration_s else 0.0

    def percentile_ms(self, q: float) -> float:
        """q-th latency percentile over every request (inf when beyond the answered ones; NaN
        without requests)."""
        if not len(self.latency_s):
            return float("nan")
        return float(np.percentile(self.latency_s, q, method="higher") * 1e3)

    def mean_tau(self) -> float:
        """Time-weighted mean of tau over the run."""
        if not self.tau:
            return 1.0
        times = [t for t, _ in self.tau] + [self.duration_s]
        values = [v for _, v in self.tau]
        weights = np.diff(np.clip(times, 0.0, self.duration_s))
        return float(np.dot(weights, values) / max(weights.sum(), 1e-12))


def simulate(
    requests: Sequence[SimRequest],
    scheduler: ModelScheduler,
    service_time: Callable[[Path, list[int]], float],
    window_s: float | None = None,
    drain_s: float = 30.0,
) -> SimResult:
    """Runs ``requests`` (sorted by arrival) through ``scheduler`` (see the module docstring);
    the run ends when every request is answered or ``drain_s`` after the last arrival.
    ``window_s``: the span the arrivals were generated over (goodput is per second of it;
    default: the last arrival time)."""
    n = len(requests)
    status = np.full(n, "rejected", dtype=object)
    latency = np.full(n, np.inf)
    path = np.full(n, "", dtype=object)
    result = SimResult(status, latency, path, tau=[(0.0, scheduler.tau)])
    index: dict[int, int] = {}  # queued request id -> position in requests
    events: list[tuple[float, int, str]] = []  # (time, order, kind)
    period = scheduler.control_period_s
    if period:
        heapq.heappush(events, (period, 1, "control"))
    for i, r in enumerate(requests):
        heapq.heappush(events, (r.arrival_s, 2, f"a{i}"))
    end = (requests[-1].arrival_s if n else 0.0) + drain_s
    running: tuple[QueuedRequest, ...] = ()
    running_since = 0.0
    wake: float | None = None
    now = 0.0
    while events:
        now, _, kind = heapq.heappop(events)
        if now > end:
            break
        if kind == "done":
            scheduler.finished(running, now, now - running_since)
            for q in running:
                status[index[q.id]], latency[index[q.id]] = "ok", now - q.arrival_s
            running = ()
        elif kind == "control":
            decision = scheduler.control(now)
            if decision is not None and decision.action != "hold":
                result.tau.append((now, decision.tau))
            if any(e[2].startswith("a") for e in events) or running or len(scheduler.policy):
                heapq.heappush(events, (now + period, 1, "control"))
        elif kind.startswith("a"):
            i = int(kind[1:])
            admitted = scheduler.admit(requests[i].cost, now, requests[i].budget_s)
            if not isinstance(admitted, Rejection):
                index[admitted.id] = i
                path[i] = admitted.path
        if running or (kind == "wake" and wake != now):
            continue
        d = scheduler.next_dispatch(now)
        for q in d.expired:
            status[index[q.id]] = "expired"
        if d.batch:
            running, running_since = d.batch, now
            scheduler.started(running, now)
            costs = [q.cost for q in running]
            memory = scheduler.spec.memory[running[0].path].batch_bytes(costs)
            result.peak_memory_bytes = max(result.peak_memory_bytes, memory)
            result.batch_sizes.append(len(running))
            heapq.heappush(events, (now + service_time(running[0].path, costs), 0, "done"))
        elif d.wake_at_s is not None and d.wake_at_s != wake:
            wake = d.wake_at_s
            heapq.heappush(events, (wake, 3, "wake"))
    result.duration_s = window_s or (requests[-1].arrival_s if n else 0.0)
    return result
