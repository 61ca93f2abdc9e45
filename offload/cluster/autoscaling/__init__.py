"""Autoscalers for the serving cluster, behind one interface, and how to build them by name.

``make_policy(name, target_utilization, scale_down_window_s, bounds)`` gives every policy the
same two knobs, so a sweep tunes each one as fairly as the others: the target utilisation (HPA:
CPU target; KPA: share of the container concurrency; queueing and predictive: utilisation cap)
and the scale-down window (HPA: scale-down stabilisation window; the others: scale-down delay).
The model-based policies (queueing, predictive) have a third knob of their own, the tail target
``target_violation`` (allowed P(latency > SLO) of their M/G/c model): their replica count is set
by it, not by the utilisation cap, once the cap is loose. The learned policy has no utilisation
knob (its headroom is what it learned).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from offload.cluster.autoscaling.hpa import (
    DEFAULT_SCALE_DOWN,
    DEFAULT_SCALE_UP,
    HpaConfig,
    HpaPolicy,
)
from offload.cluster.autoscaling.interface import AutoscalingError, Bounds, Observation, Policy
from offload.cluster.autoscaling.kpa import KpaConfig, KpaPolicy
from offload.cluster.autoscaling.predictive import PredictiveConfig, PredictivePolicy
from offload.cluster.autoscaling.queueing import QueueingConfig, QueueingPolicy

POLICIES = ("hpa", "kpa", "queueing", "predictive-hw", "predictive-lstm", "rl")
MODEL_BASED = ("queueing", "predictive-hw", "predictive-lstm")  # the ones with a tail target

__all__ = [
    "MODEL_BASED",
    "POLICIES",
    "AutoscalingError",
    "Bounds",
    "Observation",
    "Policy",
    "make_policy",
]


def make_policy(
    name: str,
    target_utilization: float = 0.7,
    scale_down_window_s: float = 300.0,
    bounds: Bounds | None = None,
    rl_weights: str | Path | None = None,
    target_violation: float = 0.01,
) -> Any:
    """A policy by name (``POLICIES``; a ``+cpi`` suffix wraps it interference-aware).
    ``target_violation`` is used by the ``MODEL_BASED`` policies only.

    Raises:
        AutoscalingError: an unknown name or a knob out of range.
    """
    bounds = bounds or Bounds()
    if name.endswith("+cpi"):
        from offload.cluster.autoscaling.interference import CpiModelPredictor, InterferenceAware

        inner = make_policy(
            name[:-4], target_utilization, scale_down_window_s, bounds, rl_weights, target_violation
        )
        return InterferenceAware(inner, CpiModelPredictor())
    if not 0 < target_utilization < 1:
        raise AutoscalingError(f"target_utilization={target_utilization} must be in (0, 1)")
    if scale_down_window_s < 0:
        raise AutoscalingError(f"scale_down_window_s={scale_down_window_s} must be >= 0")
    queueing = QueueingConfig(
        bounds=bounds,
        target_violation=target_violation,
        max_utilization=target_utilization,
        scale_down_delay_s=scale_down_window_s,
    )
    if name == "hpa":
        down = replace(DEFAULT_SCALE_DOWN, stabilization_window_s=scale_down_window_s)
        cfg = HpaConfig(
            bounds=bounds,
            target_utilization_pct=round(100 * target_utilization),
            behavior=(DEFAULT_SCALE_UP, down),
        )
        return HpaPolicy(cfg)
    if name == "kpa":
        cfg_k = KpaConfig(
            bounds=bounds,
            target_utilization=target_utilization,
            scale_down_delay_s=scale_down_window_s,
        )
        return KpaPolicy(cfg_k)
    if name == "queueing":
        return QueueingPolicy(queueing)
    if name in ("predictive-hw", "predictive-lstm"):
        forecaster = "holt-winters" if name == "predictive-hw" else "lstm"
        return PredictivePolicy(PredictiveConfig(queueing, forecaster=forecaster), name=name)
    if name == "rl":
        from offload.cluster.autoscaling.rl import DEFAULT_WEIGHTS, RlConfig, RlPolicy

        cfg_r = RlConfig(bounds=bounds, scale_down_delay_s=scale_down_window_s)
        return RlPolicy.load(rl_weights or DEFAULT_WEIGHTS, cfg_r)
    raise AutoscalingError(f"unknown policy {name!r} (one of {', '.join(POLICIES)}, NAME+cpi)")
