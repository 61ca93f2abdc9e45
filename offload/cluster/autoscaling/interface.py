"""What every autoscaler sees and the one interface it implements.

An autoscaler is a pure control law ``decide(observation, state) -> (replicas, state)``: the
replica count it wants now, and its new state. It keeps no clock, no thread and no client; the
harness calls it every ``period_s`` seconds with what happened since its previous call
(:class:`Observation`), on the discrete-event simulation (``offload.cluster.autoscaling.
simulate``) or on a live cluster (``offload.cluster.autoscaling.live``), and applies the answer
through a backend. Immutable inputs: a law never mutates the observation or the state it was
given.

Place in the auto-scaling survey's taxonomy (arXiv 2507.17128: infrastructure, architecture,
scaling method, optimisation objective, behaviour model): every policy here scales one stateless
service horizontally (replicas) on one cluster; each policy module states its scaling method,
objective and behaviour model in its docstring.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

S = TypeVar("S")


class AutoscalingError(ValueError):
    """A bad policy setting or observation (the message names the field and the limit)."""


@dataclass(frozen=True)
class PodView:
    """One replica (pod) as the Kubernetes API and the metrics API show it.

    Attributes:
        name: pod name.
        phase: "Pending" (scheduled or starting, no container running yet), "Running" or
            "Failed".
        ready: the pod's Ready condition (the readiness probe, ``/readyz``, answers 200).
        start_s: when the pod started (``status.startTime``), on the observation's clock (s).
        ready_transition_s: last change of the Ready condition (``lastTransitionTime``) (s).
        deleting: the pod is terminating (``deletionTimestamp`` set): draining, no new requests.
        cpu_millicores: CPU the pod used over the metric window (millicores; one busy core is
            1000), None when the metrics API has no sample for it.
        cpu_request_millicores: the pod's CPU request (millicores, > 0).
        metric_timestamp_s: end of the metric window (s), None without a sample.
        metric_window_s: length of the window the sample averages (s).
        in_flight: mean number of requests in the pod (queued + running) over the interval.
    """

    name: str
    phase: str = "Running"
    ready: bool = True
    start_s: float = -1e9
    ready_transition_s: float = -1e9
    deleting: bool = False
    cpu_millicores: float | None = None
    cpu_request_millicores: float = 1000.0
    metric_timestamp_s: float | None = None
    metric_window_s: float = 15.0
    in_flight: float = 0.0

    @property
    def serving(self) -> bool:
        """Running, ready and not terminating: receives requests."""
        return self.phase == "Running" and self.ready and not self.deleting


@dataclass(frozen=True)
class Observation:
    """What happened since the policy's previous call.

    Attributes:
        t_s: now (s, any origin; monotonic).
        replicas: the replica count currently asked for (the scale subresource's spec.replicas).
        pods: every pod of the service, starting, serving and terminating.
        interval_s: time since the policy's previous call (s, > 0).
        arrivals: requests that arrived in the interval.
        completed: requests answered in the interval.
        violations: requests of the interval that missed the SLO (answered late, rejected or
            dropped).
        concurrency: mean number of requests in the system (router queue + every pod) over the
            interval.
        busy_s: replica-seconds spent serving requests in the interval (the CPU time the
            metrics API integrates over the serving pods); busy_s / completed is the measured
            mean service time.
        service_time_s: mean service time of one request on an uncontended replica (s), from
            calibration and updated from measurements.
        service_cv2: squared coefficient of variation of the service time (0: deterministic,
            1: exponential).
        slo_s: the latency objective (s).
        startup_s: current estimate of the scale-up lag: time from asking for a replica to
            its serving (s), from measured cold starts.
        capacity_factor: a replica's capacity relative to an uncontended one, in (0, 1]; 1
            unless an interference-aware wrapper discounts it by the predicted CPI inflation.
    """

    t_s: float
    replicas: int
    pods: tuple[PodView, ...]
    interval_s: float
    arrivals: int = 0
    completed: int = 0
    violations: int = 0
    concurrency: float = 0.0
    busy_s: float = 0.0
    service_time_s: float = 0.1
    service_cv2: float = 1.0
    slo_s: float = 1.0
    startup_s: float = 10.0
    capacity_factor: float = 1.0
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if self.replicas < 0:
            raise AutoscalingError(f"replicas={self.replicas} must be >= 0")
        if not self.interval_s > 0:
            raise AutoscalingError(f"interval_s={self.interval_s} must be > 0")
        if not (self.service_time_s > 0 and math.isfinite(self.service_time_s)):
            raise AutoscalingError(f"service_time_s={self.service_time_s} must be > 0")
        if not 0 < self.capacity_factor <= 1.0:
            raise AutoscalingError(f"capacity_factor={self.capacity_factor} must be in (0, 1]")

    @property
    def arrival_rate_hz(self) -> float:
        """Requests per second over the interval."""
        return self.arrivals / self.interval_s

    @property
    def ready_replicas(self) -> int:
        """Pods that receive requests now."""
        return sum(1 for p in self.pods if p.serving)

    @property
    def offered_load(self) -> float:
        """Arrival rate x service time: busy replicas the load needs at 100% utilisation,
        per uncontended replica; divide by ``capacity_factor`` for the discounted ones."""
        return self.arrival_rate_hz * self.service_time_s / self.capacity_factor


class Policy(Protocol[S]):
    """An autoscaler: ``name``, its control period and the pure law.

    Contract: the harness calls ``initial_state()`` once, then ``decide`` every ``period_s``
    seconds (the first call one period after the start); the answer is the desired replica
    count (>= 0), which the harness applies at once; the state is the law's own memory (windows,
    forecasters, recommendations), returned new, never mutated.
    """

    name: str
    period_s: float

    def initial_state(self) -> S: ...

    def decide(self, obs: Observation, state: S) -> tuple[int, S]: ...


@dataclass(frozen=True)
class Bounds:
    """Replica limits every policy applies last: ``min_replicas <= n <= max_replicas``."""

    min_replicas: int = 1
    max_replicas: int = 16

    def __post_init__(self) -> None:
        if self.min_replicas < 0 or self.max_replicas < max(self.min_replicas, 1):
            raise AutoscalingError(
                f"need 0 <= min_replicas <= max_replicas, max_replicas >= 1; got "
                f"{self.min_replicas}, {self.max_replicas}"
            )

    def clamp(self, n: float) -> int:
        return int(min(max(n, self.min_replicas), self.max_replicas))


def check_positive(**values: float) -> None:
    """Raises AutoscalingError naming the first value that is not finite and > 0."""
    for name, value in values.items():
        if not (math.isfinite(value) and value > 0):
            raise AutoscalingError(f"{name}={value} must be finite and > 0")
