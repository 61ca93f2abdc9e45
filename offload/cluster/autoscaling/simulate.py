"""Discrete-event simulation of the serving cluster under an autoscaler.

The same cluster the local backend runs, on a virtual clock: a router sends each request to the
ready replica with the fewest outstanding requests (ties round-robin) or, while none is ready,
holds it (as Knative's activator does); each replica serves one request at a time, first come
first served, and drops a request that can no longer start before its deadline (the serving
issue's ``none`` policy: HTTP 429), and refuses arrivals beyond ``max_queue`` outstanding. A new
replica serves after a start-up delay drawn from the measured ones (``StartupModel``); a
removed one stops receiving requests, finishes its queue, then ends (starting ones end at
once); replica-seconds count every replica from its creation to its end. Service times come
from the calibrated ``ServiceModel`` (one draw per request, shared by every policy on the same
trace and seed: common random numbers), multiplied by the interference inflation in force
when the request starts.

Every ``policy.period_s`` the policy gets an :class:`~offload.cluster.autoscaling.interface.
Observation` (the pods with CPU use over the interval as the metrics API reports it, a starting
replica at ``startup_cpu`` cores; arrivals, completions, SLO violations and mean concurrency of
the interval) and its answer is applied at once. ``extra["cpi_inflation"]`` carries the
inflation measured over the interval, what a CPI probe would report.
"""

from __future__ import annotations

import heapq
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from offload.cluster.autoscaling.calibration import ServiceModel, StartupModel
from offload.cluster.autoscaling.interface import (
    AutoscalingError,
    Observation,
    PodView,
    Policy,
)
from offload.cluster.autoscaling.traces import Trace

OK, EXPIRED, REJECTED = 0, 1, 2


@dataclass(frozen=True)
class SimConfig:
    """Attributes:
    service: per-request service times.
    startup: replica start-up delays.
    slo_s: latency objective (s).
    deadline_s: a request not started by arrival + this is dropped (s; default 4 x SLO).
    initial_replicas: replicas serving at t = 0 (>= 1).
    max_queue: outstanding requests per replica beyond which arrivals are refused.
    startup_cpu: cores a starting replica uses (loading), as the metrics API reports it.
    interference: (start_s, end_s, inflation >= 1) episodes slowing every replica.
    seed: draws of service times and start-up delays.
    """

    service: ServiceModel
    startup: StartupModel
    slo_s: float
    deadline_s: float | None = None
    initial_replicas: int = 2
    max_queue: int = 64
    startup_cpu: float = 1.0
    interference: tuple[tuple[float, float, float], ...] = ()
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.slo_s > 0 or self.initial_replicas < 1 or self.max_queue < 1:
            raise AutoscalingError("need slo_s > 0, initial_replicas >= 1, max_queue >= 1")
        for start, end, inflation in self.interference:
            if not (end > start and inflation >= 1):
                raise AutoscalingError(f"bad interference episode {(start, end, inflation)}")

    @property
    def deadline(self) -> float:
        return self.deadline_s if self.deadline_s is not None else 4.0 * self.slo_s

    def inflation(self, t_s: float) -> float:
        return max([f for a, b, f in self.interference if a <= t_s < b], default=1.0)


@dataclass
class SimRun:
    """One run: per-request outcomes and the cluster's course."""

    policy: str
    trace: str
    latency_s: np.ndarray  # [N] arrival to answer (s); inf when dropped or refused
    status: np.ndarray  # [N] int8: OK, EXPIRED, REJECTED
    slo_s: float
    duration_s: float
    replica_seconds: float
    timeline: list[tuple[float, int, int, int, float]] = field(default_factory=list)
    decisions: list[tuple[float, int, int]] = field(default_factory=list)  # (t, from, to)
    states: list[Any] = field(default_factory=list)  # the policy state after each decision

    @property
    def slo_violation_rate(self) -> float:
        """Share of requests not answered within the SLO (dropped and refused ones included)."""
        return float(np.mean(self.latency_s > self.slo_s)) if len(self.latency_s) else 0.0

    def p99_ms(self) -> float:
        """99th percentile latency of the answered requests (ms; NaN if none)."""
        ok = self.latency_s[self.status == OK]
        return float(np.percentile(ok, 99) * 1e3) if len(ok) else float("nan")

    @property
    def scaling_actions(self) -> int:
        return sum(1 for _, a, b in self.decisions if a != b)

    @property
    def drop_rate(self) -> float:
        return float(np.mean(self.status != OK)) if len(self.status) else 0.0


class _Pod:
    __slots__ = (
        "area",
        "area_mark",
        "busy",
        "busy_mark",
        "busy_since",
        "busy_total",
        "created",
        "ended",
        "last",
        "n",
        "name",
        "queue",
        "ready_at",
        "state",
    )

    def __init__(self, name: str, created: float) -> None:
        self.name, self.created = name, created
        self.state = "starting"  # starting, ready, draining, gone
        self.ready_at = created
        self.ended: float | None = None
        self.queue: deque[int] = deque()
        self.busy: int | None = None
        self.busy_since = self.busy_total = self.busy_mark = 0.0
        self.n = 0  # outstanding (queued + running)
        self.area = self.area_mark = 0.0
        self.last = created

    def touch(self, now: float, delta: int) -> None:
        self.area += self.n * (now - self.last)
        self.last, self.n = now, self.n + delta


class _Cluster:
    """The event loop state (see the module docstring)."""

    def __init__(self, trace: Trace, cfg: SimConfig) -> None:
        self.cfg, self.trace = cfg, trace
        rng = np.random.default_rng(cfg.seed)
        self.service_s = cfg.service.sample(trace.size_rank, rng)
        self.startups = [cfg.startup.sample(rng) for _ in range(4096)]
        self.arrival = trace.times_s
        n = len(trace)
        self.latency = np.full(n, np.inf)
        self.status = np.full(n, REJECTED, dtype=np.int8)
        self.events: list[tuple[float, int, str, Any]] = []
        self.seq = 0
        self.pods: list[_Pod] = []
        self.router: deque[int] = deque()
        self.rr = 0
        self.in_system = 0
        self.sys_area = self.sys_last = self.sys_mark = 0.0
        self.counts = {"arrivals": 0, "completed": 0, "violations": 0}
        self.started = 0

    def push(self, t: float, kind: str, data: Any) -> None:
        self.seq += 1
        heapq.heappush(self.events, (t, self.seq, kind, data))

    def system(self, now: float, delta: int) -> None:
        self.sys_area += self.in_system * (now - self.sys_last)
        self.sys_last, self.in_system = now, self.in_system + delta

    def add_pod(self, now: float, ready: bool = False) -> None:
        pod = _Pod(f"replica-{len(self.pods)}", now)
        self.pods.append(pod)
        if ready:
            pod.state, pod.ready_at = "ready", now
        else:
            delay = self.startups[self.started % len(self.startups)]
            self.started += 1
            self.push(now + delay, "ready", pod)

    def active(self) -> list[_Pod]:
        return [p for p in self.pods if p.state in ("starting", "ready")]

    def scale_to(self, now: float, desired: int) -> None:
        active = self.active()
        for _ in range(desired - len(active)):
            self.add_pod(now)
        surplus = len(active) - desired
        if surplus <= 0:
            return
        starting = [p for p in active if p.state == "starting"][::-1]
        ready = sorted((p for p in active if p.state == "ready"), key=lambda p: (p.n, -p.created))
        for pod in (starting + ready)[:surplus]:
            if pod.state == "starting" or pod.n == 0:
                pod.state, pod.ended = "gone", now
            else:
                pod.state = "draining"

    def pick(self) -> _Pod | None:
        ready = [p for p in self.pods if p.state == "ready"]
        if not ready:
            return None
        best = min(p.n for p in ready)
        ties = [p for p in ready if p.n == best]
        self.rr += 1
        return ties[self.rr % len(ties)]

    def arrive(self, now: float, i: int) -> None:
        self.counts["arrivals"] += 1
        pod = self.pick()
        if pod is None:
            self.system(now, +1)
            self.router.append(i)
            return
        if pod.n >= self.cfg.max_queue:
            self.status[i] = REJECTED
            self.counts["violations"] += 1
            return
        self.system(now, +1)
        self.assign(now, pod, i)

    def assign(self, now: float, pod: _Pod, i: int) -> None:
        pod.touch(now, +1)
        pod.queue.append(i)
        if pod.busy is None:
            self.start_next(now, pod)

    def start_next(self, now: float, pod: _Pod) -> None:
        while pod.queue:
            i = pod.queue.popleft()
            if now > self.arrival[i] + self.cfg.deadline:
                self.status[i] = EXPIRED
                self.counts["violations"] += 1
                pod.touch(now, -1)
                self.system(now, -1)
                continue
            pod.busy, pod.busy_since = i, now
            self.push(now + self.service_s[i] * self.cfg.inflation(now), "done", pod)
            return
        pod.busy = None
        if pod.state == "draining" and pod.n == 0:
            pod.state, pod.ended = "gone", now

    def done(self, now: float, pod: _Pod) -> None:
        i = pod.busy
        self.latency[i] = now - self.arrival[i]
        self.status[i] = OK
        self.counts["completed"] += 1
        if self.latency[i] > self.cfg.slo_s:
            self.counts["violations"] += 1
        pod.busy_total += now - pod.busy_since
        pod.touch(now, -1)
        self.system(now, -1)
        self.start_next(now, pod)

    def ready(self, now: float, pod: _Pod) -> None:
        if pod.state != "starting":
            return
        pod.state, pod.ready_at = "ready", now
        while self.router:
            target = self.pick()
            if target is None:
                break
            self.assign(now, target, self.router.popleft())

    def observe(self, now: float, interval: float, replicas: int) -> Observation:
        cfg = self.cfg
        self.system(now, 0)
        pods, busy_s = [], 0.0
        for p in self.pods:
            if p.state == "gone":
                continue
            p.touch(now, 0)
            busy = p.busy_total + (now - p.busy_since if p.busy is not None else 0.0)
            window = min(interval, now - p.created) or interval
            busy_s += busy - p.busy_mark
            cpu = (busy - p.busy_mark) / window if p.state != "starting" else cfg.startup_cpu
            in_flight = (p.area - p.area_mark) / interval
            p.busy_mark, p.area_mark = busy, p.area
            pods.append(
                PodView(
                    p.name,
                    ready=p.state == "ready",
                    start_s=p.created,
                    ready_transition_s=p.ready_at if p.state != "starting" else p.created,
                    deleting=p.state == "draining",
                    cpu_millicores=1000.0 * cpu,
                    metric_timestamp_s=now,
                    metric_window_s=interval,
                    in_flight=in_flight,
                )
            )
        concurrency = (self.sys_area - self.sys_mark) / interval
        self.sys_mark = self.sys_area
        counts, self.counts = self.counts, {"arrivals": 0, "completed": 0, "violations": 0}
        return Observation(
            t_s=now,
            replicas=replicas,
            pods=tuple(pods),
            interval_s=interval,
            concurrency=concurrency,
            busy_s=busy_s,
            service_time_s=self.mean_s,
            service_cv2=self.cv2,
            slo_s=cfg.slo_s,
            startup_s=cfg.startup.mean_s,
            extra={"cpi_inflation": cfg.inflation(now - interval / 2)},
            **counts,
        )


def simulate(trace: Trace, policy: Policy, cfg: SimConfig, keep_states: bool = False) -> SimRun:
    """Replays ``trace`` through the simulated cluster under ``policy``."""
    if not len(trace):
        raise AutoscalingError(f"trace {trace.name!r} has no requests")
    c = _Cluster(trace, cfg)
    c.mean_s, c.cv2 = cfg.service.moments()
    for _ in range(cfg.initial_replicas):
        c.add_pod(0.0, ready=True)
    period = policy.period_s
    c.push(period, "tick", None)
    state = policy.initial_state()
    replicas, last_tick = cfg.initial_replicas, 0.0
    run = SimRun(policy.name, trace.name, c.latency, c.status, cfg.slo_s, trace.duration_s, 0.0)
    n, i = len(trace), 0
    end = trace.duration_s + cfg.deadline + 60.0
    while True:
        t_next = c.arrival[i] if i < n else np.inf
        if c.events and c.events[0][0] <= t_next:
            now, _, kind, data = heapq.heappop(c.events)
        elif i < n:
            now, kind, data = t_next, "arrive", i
            i += 1
        else:
            break
        if now > end:
            break
        if kind == "arrive":
            c.arrive(now, data)
        elif kind == "done":
            c.done(now, data)
        elif kind == "ready":
            c.ready(now, data)
        elif kind == "tick" and now <= trace.duration_s:
            obs = c.observe(now, now - last_tick, replicas)
            desired, state = policy.decide(obs, state)
            desired = max(int(desired), 0)
            run.decisions.append((now, replicas, desired))
            if keep_states:
                run.states.append(state)
            if desired != replicas:
                c.scale_to(now, desired)
                replicas = desired
            active = c.active()
            ready = sum(1 for p in active if p.state == "ready")
            run.timeline.append((now, desired, len(active), ready, obs.arrival_rate_hz))
            last_tick = now
            c.push(now + period, "tick", None)
    run.replica_seconds = sum(
        min(p.ended if p.ended is not None else trace.duration_s, trace.duration_s) - p.created
        for p in c.pods
        if p.created < trace.duration_s
    )
    return run
