"""The Kubernetes HorizontalPodAutoscaler, exactly as the controller computes it.

Port of kube-controller-manager's HPA (``pkg/controller/podautoscaler``): the replica
calculator (``replica_calculator.go``: ``GetResourceReplicas`` for a CPU utilisation target,
``calcPlainMetricReplicas`` for a Pods metric with an average-value target, ``groupPods``) and
the reconcile loop (``horizontal.go``: ``reconcileAutoscaler``, ``normalizeDesiredReplicas``
without ``spec.behavior``, ``normalizeDesiredReplicasWithBehaviors``,
``stabilizeRecommendationWithBehaviors``, ``convertDesiredReplicasWithBehaviorRate``,
``calculateScale{Up,Down}Limit...``, ``storeScaleEvent``, ``markScaleEventsOutdated``), with
``time.Now()`` replaced by the observation's time. Integer arithmetic follows the Go code
(millicores, ``int32(metricsTotal * 100 / requestsTotal)`` percent, truncating divisions).

Ratio rule: ``desired = ceil(ready pods x current / target)``, unchanged while the usage ratio is
within the tolerance (0.1 each way). Pods being deleted or failed are ignored; pending pods and,
for CPU, pods not yet ready (or whose sample predates readiness within the 300 s CPU
initialisation period) are left out, and count as 0% when the ratio says scale up; pods without
a metric count as 100% of their request (the target, for a Pods metric) on a scale-down and 0%
on a scale-up; a recount that flips the direction cancels the change. Then the scale-down
stabilisation window (the highest recommendation of the last 300 s), the scale-up window (the
lowest of its window, 0 s by default), and per-direction rate limits: each policy bounds the
change over its period from the replica count at the period's start (Pods: +-value, Percent:
x (1 +- value/100), scale-up rounded up), the largest change wins (``selectPolicy: Max``).
Defaults are autoscaling/v2's: up 4 pods or 100% per 15 s; down 100% per 15 s; sync every 15 s.

Taxonomy (arXiv 2507.17128): reactive, rule-based (threshold/ratio) horizontal scaling;
objective: a utilisation target; behaviour model: none (the current metric only).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Literal

from offload.cluster.autoscaling.interface import (
    AutoscalingError,
    Bounds,
    Observation,
    PodView,
    check_positive,
)

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


class HpaMetricError(RuntimeError):
    """No usable metric this sync (the controller then leaves the scale unchanged)."""


@dataclass(frozen=True)
class ScalingPolicy:
    """``HPAScalingPolicy``: at most ``value`` pods or percent of change per ``period_s``
    (``kind`` is the API's ``type``)."""

    kind: Literal["Pods", "Percent"]
    value: int
    period_s: int

    def __post_init__(self) -> None:
        if self.kind not in ("Pods", "Percent") or self.value <= 0 or not self.period_s > 0:
            raise AutoscalingError(f"bad scaling policy {self}: type Pods|Percent, value > 0")


@dataclass(frozen=True)
class ScalingRules:
    """``HPAScalingRules`` of one direction."""

    stabilization_window_s: float
    policies: tuple[ScalingPolicy, ...]
    select_policy: Literal["Max", "Min", "Disabled"] = "Max"

    def __post_init__(self) -> None:
        if self.stabilization_window_s < 0 or self.select_policy not in ("Max", "Min", "Disabled"):
            raise AutoscalingError(f"bad scaling rules {self}")

    @property
    def longest_period_s(self) -> int:
        return max((p.period_s for p in self.policies), default=0)


# autoscaling/v2 defaults (SetDefaults_HorizontalPodAutoscalerBehavior; the scale-down window
# is the controller's --horizontal-pod-autoscaler-downscale-stabilization, 5 minutes)
DEFAULT_SCALE_UP = ScalingRules(
    0, (ScalingPolicy("Pods", 4, 15), ScalingPolicy("Percent", 100, 15))
)
DEFAULT_SCALE_DOWN = ScalingRules(300, (ScalingPolicy("Percent", 100, 15),))


@dataclass(frozen=True)
class HpaConfig:
    """An HPA object plus the controller's flags.

    Attributes:
        bounds: spec.minReplicas (default 1) and spec.maxReplicas.
        metric: "cpu" (Resource metric, Utilization target) or "pods" (a Pods metric with an
            AverageValue target: the mean in-flight requests per pod).
        target_utilization_pct: CPU utilisation target (% of the request), 1..1000.
        target_value: Pods-metric target per pod (> 0).
        tolerance_up, tolerance_down: usage-ratio dead band (0.1 each).
        sync_period_s: the controller's loop (--horizontal-pod-autoscaler-sync-period, 15 s).
        cpu_initialization_period_s: --horizontal-pod-autoscaler-cpu-initialization-period (300).
        initial_readiness_delay_s: --horizontal-pod-autoscaler-initial-readiness-delay (30).
        downscale_stabilization_s: --horizontal-pod-autoscaler-downscale-stabilization (300),
            used without ``behavior`` and when scale_down has no window of its own.
        behavior: spec.behavior as (scale_up, scale_down); None: the legacy path (no behavior:
            scale-up limited to max(2 x current, 4)).
    """

    bounds: Bounds = field(default_factory=Bounds)
    metric: Literal["cpu", "pods"] = "cpu"
    target_utilization_pct: int = 70
    target_value: float = 1.0
    tolerance_up: float = 0.1
    tolerance_down: float = 0.1
    sync_period_s: float = 15.0
    cpu_initialization_period_s: float = 300.0
    initial_readiness_delay_s: float = 30.0
    downscale_stabilization_s: float = 300.0
    behavior: tuple[ScalingRules, ScalingRules] | None = (DEFAULT_SCALE_UP, DEFAULT_SCALE_DOWN)

    def __post_init__(self) -> None:
        if self.metric not in ("cpu", "pods"):
            raise AutoscalingError(f"metric={self.metric!r} must be 'cpu' or 'pods'")
        if not 1 <= self.target_utilization_pct <= 1000:
            raise AutoscalingError(f"target_utilization_pct={self.target_utilization_pct}")
        check_positive(target_value=self.target_value, sync_period_s=self.sync_period_s)
        if not (0 <= self.tolerance_up < 1 and 0 <= self.tolerance_down < 1):
            raise AutoscalingError("tolerances must be in [0, 1)")


@dataclass(frozen=True)
class ScaleEvent:
    change: int
    t_s: float
    outdated: bool = False


@dataclass(frozen=True)
class HpaState:
    """The controller's memory for one HPA (recommendations and scale events), and why it
    decided what it did last (``reason``, the condition reason Kubernetes would set)."""

    recommendations: tuple[tuple[int, float], ...] = ()  # (replicas, t_s), unstabilised
    up_events: tuple[ScaleEvent, ...] = ()
    down_events: tuple[ScaleEvent, ...] = ()
    reason: str = ""


def _within(ratio: float, cfg: HpaConfig) -> bool:
    return (1.0 - cfg.tolerance_down) <= ratio <= (1.0 + cfg.tolerance_up)


def group_pods(
    pods: tuple[PodView, ...], metrics: dict[str, int], cfg: HpaConfig, now_s: float
) -> tuple[int, set[str], set[str], set[str]]:
    """``groupPods``: (ready count, unready, missing, ignored) pod names."""
    unready, missing, ignored = set(), set(), set()
    ready = 0
    for pod in pods:
        if pod.deleting or pod.phase == "Failed":
            ignored.add(pod.name)
            continue
        if pod.phase == "Pending":
            unready.add(pod.name)
            continue
        if pod.name not in metrics:
            missing.add(pod.name)
            continue
        if cfg.metric == "cpu":
            if pod.start_s + cfg.cpu_initialization_period_s > now_s:
                # within the initialisation period: unready, or a sample from before readiness
                stamp = pod.metric_timestamp_s if pod.metric_timestamp_s is not None else -math.inf
                late = stamp < pod.ready_transition_s + pod.metric_window_s
                is_unready = (not pod.ready) or late
            else:
                # unready and never ready since start
                start_plus_delay = pod.start_s + cfg.initial_readiness_delay_s
                is_unready = (not pod.ready) and start_plus_delay > pod.ready_transition_s
            if is_unready:
                unready.add(pod.name)
                continue
        ready += 1
    return ready, unready, missing, ignored


def _resource_ratio(
    metrics: dict[str, int], requests: dict[str, int], target_pct: int
) -> tuple[float, int]:
    """``GetResourceUtilizationRatio``: (usage ratio, utilisation %)."""
    total = sum(metrics[n] for n in metrics if n in requests)
    req = sum(requests[n] for n in metrics if n in requests)
    if req == 0:
        raise HpaMetricError("no metrics returned matched known pods")
    utilization = (total * 100) // req
    return utilization / target_pct, utilization


def _plain_ratio(metrics: dict[str, int], target_milli: int) -> tuple[float, int]:
    """``GetMetricUsageRatio``: (usage ratio, mean usage in milli-units)."""
    usage = sum(metrics.values()) // len(metrics)
    return usage / target_milli, usage


def pod_metrics(pods: tuple[PodView, ...], cfg: HpaConfig) -> dict[str, int]:
    """What the metrics API returns: per pod millicores (cpu) or milli-requests (pods)."""
    if cfg.metric == "cpu":
        return {p.name: round(p.cpu_millicores) for p in pods if p.cpu_millicores is not None}
    return {p.name: round(p.in_flight * 1000) for p in pods if p.phase == "Running"}


def metric_replicas(current: int, pods: tuple[PodView, ...], cfg: HpaConfig, now_s: float) -> int:
    """The replica calculator for the configured metric (see the module docstring).

    Raises:
        HpaMetricError: no pods, or no metric for any targeted pod.
    """
    if not pods:
        raise HpaMetricError("no pods returned by selector while calculating replica count")
    metrics = pod_metrics(pods, cfg)
    ready, unready, missing, ignored = group_pods(pods, metrics, cfg, now_s)
    for name in ignored | unready:
        metrics.pop(name, None)
    if not metrics:
        raise HpaMetricError("did not receive metrics for targeted pods (pods might be unready)")
    cpu = cfg.metric == "cpu"
    requests = {p.name: round(p.cpu_request_millicores) for p in pods}
    target_milli = round(cfg.target_value * 1000)

    def ratio_of(m: dict[str, int]) -> float:
        if cpu:
            return _resource_ratio(m, requests, cfg.target_utilization_pct)[0]
        return _plain_ratio(m, target_milli)[0]

    ratio = ratio_of(metrics)
    up_with_unready = bool(unready) and ratio > 1.0
    if not up_with_unready and not missing:
        if _within(ratio, cfg):
            return current
        return math.ceil(ratio * ready)
    if missing:
        if ratio < 1.0:
            # scale-down: missing pods use 100% of their request (or the target if higher)
            for name in missing:
                if cpu:
                    metrics[name] = requests[name] * max(100, cfg.target_utilization_pct) // 100
                else:
                    metrics[name] = target_milli
        elif ratio > 1.0:
            for name in missing:  # scale-up: missing pods use nothing
                metrics[name] = 0
    if up_with_unready:
        for name in unready:
            metrics[name] = 0
    new_ratio = ratio_of(metrics)
    if _within(new_ratio, cfg) or (ratio < 1.0 < new_ratio) or (ratio > 1.0 > new_ratio):
        return current  # too small, or the recount would reverse the direction
    new = math.ceil(new_ratio * len(metrics))
    if (new_ratio < 1.0 and new > current) or (new_ratio > 1.0 and new < current):
        return current
    return new


def _change_in_period(period_s: int, events: tuple[ScaleEvent, ...], now_s: float) -> int:
    cutoff = now_s - period_s
    return sum(e.change for e in events if e.t_s > cutoff)


def scale_up_limit(current: int, state: HpaState, rules: ScalingRules, now_s: float) -> int:
    """``calculateScaleUpLimitWithScalingRules``."""
    if rules.select_policy == "Disabled":
        return current
    pick, result = (min, INT32_MAX) if rules.select_policy == "Min" else (max, INT32_MIN)
    for p in rules.policies:
        start = (
            current
            - _change_in_period(p.period_s, state.up_events, now_s)
            + _change_in_period(p.period_s, state.down_events, now_s)
        )
        # Percent is rounded up so that a small replica count can still grow
        proposed = start + p.value if p.kind == "Pods" else math.ceil(start * (1 + p.value / 100))
        result = pick(result, proposed)
    return result


def scale_down_limit(current: int, state: HpaState, rules: ScalingRules, now_s: float) -> int:
    """``calculateScaleDownLimitWithBehaviors``."""
    if rules.select_policy == "Disabled":
        return current
    pick, result = (max, INT32_MIN) if rules.select_policy == "Min" else (min, INT32_MAX)
    for p in rules.policies:
        start = (
            current
            - _change_in_period(p.period_s, state.up_events, now_s)
            + _change_in_period(p.period_s, state.down_events, now_s)
        )
        # Percent: Go's int32() truncates
        proposed = start - p.value if p.kind == "Pods" else int(start * (1 - p.value / 100))
        result = pick(result, proposed)
    return result


def _record(recs: tuple[tuple[int, float], ...], old: int | None, value: int, now_s: float):
    """Replaces the last outdated recommendation (``oldSampleIndex``) or appends."""
    if old is None:
        return (*recs, (value, now_s))
    return (*recs[:old], (value, now_s), *recs[old + 1 :])


def _stabilize_with_behaviors(
    cfg: HpaConfig, state: HpaState, current: int, desired: int, now_s: float
) -> tuple[int, HpaState]:
    up_rules, down_rules = cfg.behavior  # type: ignore[misc]
    up_cut = now_s - up_rules.stabilization_window_s
    down_cut = now_s - down_rules.stabilization_window_s
    up_rec, down_rec, old = desired, desired, None
    for i, (value, t) in enumerate(state.recommendations):
        if t > up_cut:
            up_rec = min(value, up_rec)
        if t > down_cut:
            down_rec = max(value, down_rec)
        if t < up_cut and t < down_cut:
            old = i
    rec = min(max(current, up_rec), down_rec)
    recs = _record(state.recommendations, old, desired, now_s)
    return rec, replace(state, recommendations=recs)


def _rate_limit(cfg: HpaConfig, state: HpaState, current: int, desired: int, now_s: float) -> int:
    """``convertDesiredReplicasWithBehaviorRate``."""
    up_rules, down_rules = cfg.behavior  # type: ignore[misc]
    b = cfg.bounds
    if desired > current:
        limit = max(scale_up_limit(current, state, up_rules, now_s), current)
        return min(desired, b.max_replicas, limit)
    if desired < current:
        limit = min(scale_down_limit(current, state, down_rules, now_s), current)
        return max(desired, b.min_replicas, limit)
    return desired


def _normalize_legacy(
    cfg: HpaConfig, state: HpaState, current: int, desired: int, now_s: float
) -> tuple[int, HpaState]:
    """``normalizeDesiredReplicas`` (no spec.behavior)."""
    cutoff = now_s - cfg.downscale_stabilization_s
    best, old = desired, None
    for i, (value, t) in enumerate(state.recommendations):
        if t < cutoff:
            old = i
        elif value > best:
            best = value
    state = replace(state, recommendations=_record(state.recommendations, old, desired, now_s))
    up_limit = max(2 * current, 4)  # scaleUpLimitFactor 2, scaleUpLimitMinimum 4
    b = cfg.bounds
    if best < b.min_replicas:
        return b.min_replicas, state
    return min(best, min(b.max_replicas, up_limit)), state


def _store_event(
    cfg: HpaConfig, state: HpaState, previous: int, new: int, now_s: float
) -> HpaState:
    """``storeScaleEvent`` with ``markScaleEventsOutdated``."""
    if cfg.behavior is None:
        return state
    up = new > previous
    rules = cfg.behavior[0] if up else cfg.behavior[1]
    events = state.up_events if up else state.down_events
    cutoff = now_s - rules.longest_period_s
    events = tuple(replace(e, outdated=e.outdated or e.t_s < cutoff) for e in events)
    old = None
    for i, e in enumerate(events):
        if e.outdated:
            old = i
    event = ScaleEvent(abs(new - previous), now_s)
    events = (*events, event) if old is None else (*events[:old], event, *events[old + 1 :])
    return replace(state, up_events=events) if up else replace(state, down_events=events)


@dataclass(frozen=True)
class HpaPolicy:
    """The HPA as a :class:`~offload.cluster.autoscaling.interface.Policy`.

    ``capacity_factor`` < 1 (interference-aware wrapper) lowers the target in proportion: a
    replica that serves less per core must run at a lower utilisation for the same latency.
    """

    config: HpaConfig = field(default_factory=HpaConfig)
    name: str = "hpa"

    @property
    def period_s(self) -> float:
        return self.config.sync_period_s

    def initial_state(self) -> HpaState:
        return HpaState()

    def decide(self, obs: Observation, state: HpaState) -> tuple[int, HpaState]:
        cfg, now, current = self.config, obs.t_s, obs.replicas
        if obs.capacity_factor < 1.0:
            cfg = replace(
                cfg,
                target_utilization_pct=max(
                    1, int(cfg.target_utilization_pct * obs.capacity_factor)
                ),
                target_value=cfg.target_value * obs.capacity_factor,
            )
        if not state.recommendations:  # recordInitialRecommendation
            state = replace(state, recommendations=((current, now),))
        b = cfg.bounds
        if current == 0 and b.min_replicas != 0:
            return 0, replace(state, reason="ScalingDisabled")
        if current > b.max_replicas:
            desired, reason = b.max_replicas, "TooManyReplicas"
        elif current < b.min_replicas:
            desired, reason = b.min_replicas, "TooFewReplicas"
        else:
            try:
                desired = max(0, metric_replicas(current, obs.pods, cfg, now))
            except HpaMetricError as err:
                return current, replace(state, reason=f"FailedGetMetric: {err}")
            if cfg.behavior is None:
                desired, state = _normalize_legacy(cfg, state, current, desired, now)
            else:
                stable, state = _stabilize_with_behaviors(cfg, state, current, desired, now)
                desired = _rate_limit(cfg, state, current, stable, now)
            reason = "DesiredWithinRange" if desired != current else "ReadyForNewScale"
        if desired != current:
            state = _store_event(cfg, state, current, desired, now)
        return desired, replace(state, reason=reason)
