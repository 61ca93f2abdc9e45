"""A Knative-style pod autoscaler (KPA): concurrency over a stable and a panic window.

Port of Knative Serving's decider (``pkg/autoscaler/scaling/autoscaler.go``, ``Scale``) for the
concurrency metric, with Knative's defaults (config-autoscaler): every ``tick_s`` (2 s) the mean
total concurrency over the stable window (60 s) and over the panic window (10% of it, 6 s) give
``dspc = ceil(stable / target)`` and ``dppc = ceil(panic / target)``, both kept within
``[floor(ready / max_scale_down_rate), ceil(max_scale_up_rate x ready)]`` (ready >= 1); the
target per pod is ``container_concurrency x target_utilization`` (one request at a time here,
so 0.7 by default). Panic starts when ``dppc / ready >= panic_threshold`` (200%), lasts while it
holds and until a stable window has passed without it; in panic the count never decreases
(``maxPanicPods``). ``scale_down_delay_s`` keeps the highest count of that window (Knative's
delay window). Bounds last: ``min_replicas`` (min-scale, may be 0) and ``max_replicas``; going
to zero waits ``scale_to_zero_grace_s`` (30 s) of zero demand, as the KPA reconciler does.

Taxonomy (arXiv 2507.17128): reactive rule-based horizontal scaling with two time scales;
objective: a concurrency (queue length) target per replica; behaviour model: none beyond
windowed means (panic mode is a burst detector).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from offload.cluster.autoscaling.interface import (
    AutoscalingError,
    Bounds,
    Observation,
    check_positive,
)


@dataclass(frozen=True)
class KpaConfig:
    """Knative config-autoscaler settings (defaults are Knative's).

    Attributes:
        bounds: min-scale (0 allows scale to zero) and max-scale.
        container_concurrency: requests a replica serves at once (1 here).
        target_utilization: share of ``container_concurrency`` to aim for, (0, 1].
        stable_window_s: stable window (60 s).
        panic_window_pct: panic window as a share of the stable window (10%).
        panic_threshold_pct: panic when the panic-window demand reaches this % of ready pods
            (200%).
        max_scale_up_rate: at most this x ready pods per decision (1000).
        max_scale_down_rate: at least ready / this pods per decision (2).
        tick_s: decision period (2 s).
        scale_down_delay_s: keep the highest count of this window before scaling down (0).
        scale_to_zero_grace_s: zero demand for this long before the last pod goes (30 s).
    """

    bounds: Bounds = field(default_factory=Bounds)
    container_concurrency: float = 1.0
    target_utilization: float = 0.7
    stable_window_s: float = 60.0
    panic_window_pct: float = 10.0
    panic_threshold_pct: float = 200.0
    max_scale_up_rate: float = 1000.0
    max_scale_down_rate: float = 2.0
    tick_s: float = 2.0
    scale_down_delay_s: float = 0.0
    scale_to_zero_grace_s: float = 30.0

    def __post_init__(self) -> None:
        check_positive(
            container_concurrency=self.container_concurrency,
            stable_window_s=self.stable_window_s,
            tick_s=self.tick_s,
        )
        if not 0 < self.target_utilization <= 1:
            raise AutoscalingError(f"target_utilization={self.target_utilization}: in (0, 1]")
        if not 1 <= self.panic_window_pct <= 100 or self.panic_threshold_pct < 110:
            raise AutoscalingError("panic_window_pct in [1, 100], panic_threshold_pct >= 110")
        if self.max_scale_up_rate <= 1 or self.max_scale_down_rate <= 1:
            raise AutoscalingError("max_scale_up_rate and max_scale_down_rate must be > 1")

    @property
    def panic_window_s(self) -> float:
        return self.stable_window_s * self.panic_window_pct / 100

    @property
    def target(self) -> float:
        return self.container_concurrency * self.target_utilization


@dataclass(frozen=True)
class KpaState:
    """Concurrency samples (t_end_s, interval_s, mean), panic bookkeeping, delay window."""

    samples: tuple[tuple[float, float, float], ...] = ()
    panic_since_s: float | None = None
    max_panic_pods: int = 0
    delay: tuple[tuple[float, int], ...] = ()
    zero_since_s: float | None = None
    panicking: bool = False


def window_mean(samples: tuple[tuple[float, float, float], ...], now_s: float, w_s: float) -> float:
    """Time-weighted mean of the samples overlapping (now - w, now]."""
    total = weight = 0.0
    for end, length, value in samples:
        overlap = min(end, now_s) - max(end - length, now_s - w_s)
        if overlap > 0:
            total += overlap * value
            weight += overlap
    return total / weight if weight > 0 else 0.0


@dataclass(frozen=True)
class KpaPolicy:
    """KPA as a :class:`~offload.cluster.autoscaling.interface.Policy`; ``capacity_factor``
    scales the per-pod target (a slowed replica holds each request longer)."""

    config: KpaConfig = field(default_factory=KpaConfig)
    name: str = "kpa"

    @property
    def period_s(self) -> float:
        return self.config.tick_s

    def initial_state(self) -> KpaState:
        return KpaState()

    def decide(self, obs: Observation, state: KpaState) -> tuple[int, KpaState]:
        cfg, now = self.config, obs.t_s
        keep = now - max(cfg.stable_window_s, cfg.scale_down_delay_s) - obs.interval_s
        samples = tuple(s for s in state.samples if s[0] > keep)
        samples = (*samples, (now, obs.interval_s, obs.concurrency))
        stable = window_mean(samples, now, cfg.stable_window_s)
        panic = window_mean(samples, now, cfg.panic_window_s)
        ready = max(1.0, float(obs.ready_replicas))
        target = cfg.target * obs.capacity_factor
        max_up = math.ceil(cfg.max_scale_up_rate * ready)
        max_down = math.floor(ready / cfg.max_scale_down_rate)
        dspc = math.ceil(stable / target - 1e-9)  # 1e-9: a float mean of exact multiples
        dppc = math.ceil(panic / target - 1e-9)
        desired_stable = int(min(max(dspc, max_down), max_up))
        desired_panic = int(min(max(dppc, max_down), max_up))
        over = dppc / ready >= cfg.panic_threshold_pct / 100
        panic_since, max_panic = state.panic_since_s, state.max_panic_pods
        if over:
            panic_since = now  # start, or extend, the panic
        elif panic_since is not None and panic_since + cfg.stable_window_s < now:
            panic_since, max_panic = None, 0
        desired = desired_stable
        if panic_since is not None:
            desired = max(desired, desired_panic)
            max_panic = max(max_panic, desired)  # never decrease while panicking
            desired = max_panic
        delay = state.delay
        if cfg.scale_down_delay_s > 0:
            cut = now - cfg.scale_down_delay_s
            delay = (*tuple(d for d in delay if d[0] > cut), (now, desired))
            desired = max(v for _, v in delay)
        zero_since = state.zero_since_s
        if desired == 0:
            zero_since = now if zero_since is None else zero_since
            if now - zero_since < cfg.scale_to_zero_grace_s:
                desired = 1
        else:
            zero_since = None
        new_state = KpaState(
            samples, panic_since, max_panic, delay, zero_since, panic_since is not None
        )
        return cfg.bounds.clamp(desired), new_state
