"""Live replay: a trace segment against real replica processes under an autoscaler.

The same cluster the simulation (``simulate``) models, with real parts: replicas are
``offload.serving`` processes serving the detector over HTTP, forked from the warm template of
``coldstart`` (the three-level artifact cache), so a scale-up pays the measured cold start; a
router in this process (asyncio, httpx) sends each request, at its arrival time on the
wall clock, to the ready replica with the fewest outstanding requests, or holds it while none is
ready (as Knative's activator does); a request not answered within the deadline counts as
dropped. Every ``policy.period_s`` the policy gets an :class:`Observation` with each pod's CPU
use over the interval read from ``/proc/<pid>/stat`` (what the metrics API reports), and its
answer is applied at once: new replicas are forked; removed ones stop receiving requests, finish
what they hold, then get SIGTERM. Replica-seconds count each replica from fork to end.

THIN GLUE (issue 17): until the cluster's backend lands on main, this module is its own
backend (template forks + an in-process router); swapping in the cluster's ``scale_to`` is the
only change the cluster needs here.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from offload.cluster.autoscaling.interface import AutoscalingError, Observation, PodView, Policy
from offload.cluster.autoscaling.traces import Trace

_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


@dataclass
class LiveReplica:
    name: str
    pid: int
    ready_file: Path
    created: float
    url: str = ""
    state: str = "starting"  # starting, ready, draining, gone
    ready_at: float = -1.0
    ended: float | None = None
    outstanding: int = 0
    cpu_mark: float = 0.0
    area: float = 0.0  # integral of outstanding over time (for in_flight)
    area_mark: float = 0.0
    last_change: float = 0.0

    def touch(self, now: float, delta: int) -> None:
        self.area += self.outstanding * (now - self.last_change)
        self.last_change = now
        self.outstanding += delta


@dataclass
class LiveRun:
    """Per-request outcomes and the cluster's course (fields as ``SimRun``'s)."""

    policy: str
    latency_s: np.ndarray
    ok: np.ndarray
    slo_s: float
    duration_s: float
    replica_seconds: float = 0.0
    startup_s: list[float] = field(default_factory=list)
    timeline: list[tuple[float, int, int, int, float]] = field(default_factory=list)
    decisions: list[tuple[float, int, int]] = field(default_factory=list)
    # the harness's own event-loop lag: (time, seconds a 50 ms timer fired late); a stall here
    # delays requests in the router, which the simulation does not model
    loop_lag: list[tuple[float, float]] = field(default_factory=list)

    @property
    def slo_violation_rate(self) -> float:
        return float(np.mean(self.latency_s > self.slo_s)) if len(self.latency_s) else 0.0

    def p99_ms(self) -> float:
        ok = self.latency_s[self.ok]
        return float(np.percentile(ok, 99) * 1e3) if len(ok) else float("nan")

    @property
    def scaling_actions(self) -> int:
        return sum(1 for _, a, b in self.decisions if a != b)


class _Live:
    def __init__(self, template: Any, folder: Path, slo_s: float, deadline_s: float) -> None:
        self.template, self.folder = template, folder
        self.slo_s, self.deadline_s = slo_s, deadline_s
        self.pods: list[LiveReplica] = []
        self.t0 = time.perf_counter()
        self.count = 0
        self.arrivals = self.completed = self.violations = 0
        self.startups: list[float] = []

    def now(self) -> float:
        return time.perf_counter() - self.t0

    def fork(self) -> None:
        k = self.count
        self.count += 1
        ready, log = self.folder / f"replica-{k}.json", self.folder / f"replica-{k}.log"
        pid = self.template.fork(ready, log)
        pod = LiveReplica(f"replica-{k}", pid, ready, self.now(), last_change=self.now())
        self.pods.append(pod)
        asyncio.get_running_loop().create_task(self._await_ready(pod))

    async def _await_ready(self, pod: LiveReplica) -> None:
        async with httpx.AsyncClient(timeout=httpx.Timeout(2.0)) as http:
            while pod.state == "starting":
                if not pod.url and pod.ready_file.exists() and pod.ready_file.read_text().strip():
                    pod.url = json.loads(pod.ready_file.read_text())["url"]
                if pod.url:
                    try:
                        if (await http.get(pod.url + "/readyz")).status_code == 200:
                            pod.state, pod.ready_at = "ready", self.now()
                            pod.cpu_mark = cpu_seconds(pod.pid)
                            self.startups.append(pod.ready_at - pod.created)
                            return
                    except httpx.HTTPError:
                        pass
                await asyncio.sleep(0.05)

    def scale_to(self, n: int) -> None:
        active = [p for p in self.pods if p.state in ("starting", "ready")]
        for _ in range(n - len(active)):
            self.fork()
        # remove starting ones first (they serve nothing yet), then the newest ready ones
        victims = sorted(active, key=lambda p: (p.state != "starting", -p.created))
        for pod in victims[: max(len(active) - n, 0)]:
            if pod.state == "starting":
                self._end(pod)
            else:
                pod.state = "draining"
                if pod.outstanding == 0:
                    self._end(pod)

    def _end(self, pod: LiveReplica) -> None:
        from offload.cluster.autoscaling.coldstart import _end

        pod.state, pod.ended = "gone", self.now()
        _end(pod.pid)

    async def request(self, http: httpx.AsyncClient, body: bytes) -> tuple[float, bool]:
        arrived = self.now()
        self.arrivals += 1
        while True:
            ready = [p for p in self.pods if p.state == "ready"]
            if ready:
                break
            if self.now() - arrived > self.deadline_s:
                return np.inf, False
            await asyncio.sleep(0.01)
        pod = min(ready, key=lambda p: p.outstanding)
        pod.touch(self.now(), +1)
        ok = False
        try:
            left = max(self.deadline_s - (self.now() - arrived), 0.01)
            resp = await http.post(pod.url + "/v1/detect", content=body, timeout=left)
            ok = resp.status_code == 200
        except httpx.HTTPError:
            ok = False
        pod.touch(self.now(), -1)
        latency = self.now() - arrived if ok else np.inf
        self.completed += ok
        self.violations += latency > self.slo_s
        if pod.state == "draining" and pod.outstanding == 0:
            self._end(pod)
        return latency, ok

    def observe(self, interval: float, replicas: int, service: tuple[float, float]) -> Observation:
        now = self.now()
        pods = []
        for p in self.pods:
            if p.state == "gone":
                continue
            p.touch(now, 0)
            cpu = cpu_seconds(p.pid)
            used, p.cpu_mark = cpu - p.cpu_mark, cpu
            in_flight, p.area_mark = (p.area - p.area_mark) / interval, p.area
            phase = "Running" if p.state != "starting" or p.url else "Pending"
            pods.append(
                PodView(
                    p.name,
                    phase=phase,
                    ready=p.state in ("ready", "draining"),
                    start_s=p.created,
                    ready_transition_s=p.ready_at if p.ready_at >= 0 else p.created,
                    deleting=p.state == "draining",
                    cpu_millicores=1000.0 * used / interval,
                    metric_timestamp_s=now,
                    metric_window_s=interval,
                    in_flight=in_flight,
                )
            )
        obs = Observation(
            now, replicas, tuple(pods), interval, self.arrivals, self.completed, self.violations,
            concurrency=sum(p.in_flight for p in pods), service_time_s=service[0],
            service_cv2=service[1], slo_s=self.slo_s,
            startup_s=float(np.mean(self.startups)) if self.startups else 5.0,
        )  # fmt: skip
        self.arrivals = self.completed = self.violations = 0
        return obs


async def _replay(live: _Live, trace: Trace, policy: Policy, bodies: list[bytes],
                  initial: int, service: tuple[float, float], run: LiveRun) -> None:  # fmt: skip
    for _ in range(initial):
        live.fork()
    while sum(p.state == "ready" for p in live.pods) < initial:
        await asyncio.sleep(0.05)
    live.t0 = time.perf_counter()  # the replay's clock starts with the initial replicas ready
    for p in live.pods:
        p.created = p.last_change = 0.0
    index = np.minimum((trace.size_rank * len(bodies)).astype(int), len(bodies) - 1)
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=64)
    async with httpx.AsyncClient(limits=limits) as http:

        async def one(t: float, body: bytes) -> tuple[float, bool]:
            await asyncio.sleep(max(t - live.now(), 0.0))
            return await live.request(http, body)

        async def control() -> None:
            state, replicas, last = policy.initial_state(), initial, 0.0
            while live.now() < trace.duration_s:
                await asyncio.sleep(max(last + policy.period_s - live.now(), 0.0))
                now = live.now()
                obs = live.observe(now - last, replicas, service)
                desired, state = policy.decide(obs, state)
                run.decisions.append((now, replicas, int(desired)))
                if desired != replicas:
                    live.scale_to(int(desired))
                    replicas = int(desired)
                active = [p for p in live.pods if p.state in ("starting", "ready")]
                ready = sum(p.state == "ready" for p in active)
                run.timeline.append((now, replicas, len(active), ready, obs.arrival_rate_hz))
                last = now

        async def watch_loop(tick_s: float = 0.05) -> None:
            while live.now() < trace.duration_s:
                before = live.now()
                await asyncio.sleep(tick_s)
                run.loop_lag.append((before, max(live.now() - before - tick_s, 0.0)))

        loop = asyncio.get_running_loop()
        ctl, watch = loop.create_task(control()), loop.create_task(watch_loop())
        results = await asyncio.gather(
            *(one(float(t), bodies[i]) for t, i in zip(trace.times_s, index, strict=True))
        )
        ctl.cancel()
        watch.cancel()
    run.latency_s = np.array([lat for lat, _ in results])
    run.ok = np.array([ok for _, ok in results], bool)


def replay(
    trace: Trace,
    policy: Policy,
    bodies: list[bytes],
    template: Any,
    folder: Path,
    slo_s: float,
    service: tuple[float, float],
    initial_replicas: int = 1,
) -> LiveRun:
    """Replays ``trace`` (wall clock) against replicas forked from ``template`` under
    ``policy``; request k carries ``bodies[rank_k x len(bodies)]``. ``service``: (mean s, cv^2)
    of the calibrated service time, what the policy is told."""
    live = _Live(template, folder, slo_s, 4.0 * slo_s)
    run = LiveRun(policy.name, np.zeros(0), np.zeros(0, bool), slo_s, trace.duration_s)
    try:
        asyncio.run(_replay(live, trace, policy, bodies, initial_replicas, service, run))
    finally:
        end = live.now()
        for p in live.pods:
            if p.state != "gone":
                live._end(p)
        run.replica_seconds = sum(
            min(p.ended if p.ended is not None else end, trace.duration_s) - max(p.created, 0.0)
            for p in live.pods
            if p.created < trace.duration_s
        )
        run.startup_s = list(live.startups)
    return run


def detector_bodies(sizes: tuple[int, ...] = (2000, 6000, 12000, 20000), seed: int = 0):
    """Detector requests of increasing point count (random clouds within 40 m), the size pool
    a trace's size rank picks from."""
    from offload.serving.wire import encode

    rng = np.random.default_rng(seed)
    out = []
    for n in sizes:
        xyz = rng.uniform([-40, -40, -2], [40, 40, 2], (n, 3))
        cloud = np.concatenate([xyz, rng.random((n, 2))], axis=1).astype(np.float32)
        # the router enforces the deadline; the replica must not reject on its own estimate
        out.append(encode({"deadline_ms": 60000.0}, {"points": cloud}))
    return out


def calibrate_service(
    url: str, bodies: list[bytes], repeats: int = 5, gap_s: float = 0.0
) -> tuple[Any, list]:
    """Sequential requests (no queueing) of each body to one replica, ``gap_s`` apart (a
    replica answers back-to-back requests faster than ones after an idle gap): the fitted
    ``ServiceModel`` and the (size rank, seconds) samples."""
    if gap_s < 0:
        raise AutoscalingError(f"gap_s={gap_s} must be >= 0")
    from offload.client import quiet_httpx
    from offload.cluster.autoscaling.calibration import ServiceModel

    quiet_httpx()
    samples = []
    with httpx.Client(timeout=httpx.Timeout(60.0)) as http:
        http.post(url + "/v1/detect", content=bodies[0])  # warm-up
        for _ in range(repeats):
            for k, body in enumerate(bodies):
                time.sleep(gap_s)
                t0 = time.perf_counter()
                http.post(url + "/v1/detect", content=body).raise_for_status()
                samples.append(((k + 0.5) / len(bodies), time.perf_counter() - t0))
    rank, secs = (np.array(x) for x in zip(*samples, strict=True))
    return ServiceModel.from_samples(rank, secs, bins=len(bodies)), samples


def calibrate_concurrency(
    urls: list[str], bodies: list[bytes], repeats: int = 3
) -> tuple[Any, dict[int, list[list[float]]]]:
    """k = 1 .. len(urls) copies of each body at once, one per replica, through the same
    asyncio + httpx path the replay's router uses (its CPU is part of what the cores share):
    the fitted ``ConcurrencyCurve`` and the latencies ``[k][body] -> [seconds]``."""
    from offload.client import quiet_httpx
    from offload.cluster.autoscaling.calibration import ConcurrencyCurve

    quiet_httpx()

    async def measure() -> dict[int, list[list[float]]]:
        out: dict[int, list[list[float]]] = {}
        async with httpx.AsyncClient(timeout=httpx.Timeout(120.0)) as http:

            async def one(url: str, body: bytes) -> float:
                t0 = time.perf_counter()
                (await http.post(url + "/v1/detect", content=body)).raise_for_status()
                return time.perf_counter() - t0

            await asyncio.gather(*(one(u, bodies[0]) for u in urls))  # warm-up, each replica
            for _ in range(repeats):  # rounds interleave k, so slow drift hits every k alike
                for k in range(1, len(urls) + 1):
                    per_body = out.setdefault(k, [[] for _ in bodies])
                    for b, body in enumerate(bodies):
                        lat = await asyncio.gather(*(one(u, body) for u in urls[:k]))
                        per_body[b].extend(lat)
        return out

    latency = asyncio.run(measure())
    return ConcurrencyCurve.from_latencies(latency), latency


def calibrate_sustained(
    urls: list[str], bodies: list[bytes], seconds_per_k: float = 4.0
) -> tuple[Any, dict[int, float]]:
    """k = 1 .. len(urls) closed-loop clients, one per replica, each sending the bodies in
    turn back to back for ``seconds_per_k`` through the replay router's asyncio + httpx path:
    the node's speed under sustained load (``ConcurrencyCurve.from_throughput``) and the
    throughputs ``{k: requests per second}``. Unlike ``calibrate_concurrency`` (k identical
    requests at once, a few rounds) it includes what only sustained load shows: the router's
    CPU at that rate, and the replicas' contention over seconds rather than one request."""
    from offload.client import quiet_httpx
    from offload.cluster.autoscaling.calibration import ConcurrencyCurve

    if not seconds_per_k > 0:
        raise AutoscalingError(f"seconds_per_k={seconds_per_k} must be > 0")
    quiet_httpx()

    async def measure() -> dict[int, float]:
        out: dict[int, float] = {}
        async with httpx.AsyncClient(timeout=httpx.Timeout(120.0)) as http:

            async def client(url: str, first: int, stop: float) -> int:
                done = 0
                while time.perf_counter() < stop:
                    body = bodies[(first + done) % len(bodies)]
                    (await http.post(url + "/v1/detect", content=body)).raise_for_status()
                    done += 1
                return done

            await asyncio.gather(*(client(u, 0, time.perf_counter() + 0.5) for u in urls))
            for k in range(1, len(urls) + 1):
                t0 = time.perf_counter()
                stop = t0 + seconds_per_k
                counts = await asyncio.gather(*(client(u, j, stop) for j, u in enumerate(urls[:k])))
                out[k] = sum(counts) / (time.perf_counter() - t0)
        return out

    rate = asyncio.run(measure())
    return ConcurrencyCurve.from_throughput(rate), rate


def router_cpu_per_request_s(url: str, body: bytes, requests: int = 40) -> float:
    """CPU seconds this process spends per request on the replay router's own path (asyncio +
    httpx, sequential, so the replica's time is not in it): what the router takes from the
    node's cores at a given request rate."""
    from offload.client import quiet_httpx

    quiet_httpx()

    async def run() -> float:
        async with httpx.AsyncClient(timeout=httpx.Timeout(120.0)) as http:
            (await http.post(url + "/v1/detect", content=body)).raise_for_status()  # warm-up
            t0 = time.process_time()
            for _ in range(requests):
                (await http.post(url + "/v1/detect", content=body)).raise_for_status()
            return (time.process_time() - t0) / requests

    return asyncio.run(run())
