"""Interference-aware autoscaling: any policy, with per-replica capacity discounted by the
predicted CPI inflation.

C-Koordinator (arXiv 2507.18005) predicts the CPI of latency-sensitive workloads from node
metrics; a replica whose CPI rises by a factor f retires instructions f times slower, so it
serves 1/f of its uncontended load. The wrapper asks an injected predictor for f over the next
interval (``predict(observation) -> f >= 1``; the cluster issue's CPI model, or
:func:`last_measured`, the persistence baseline on the probe's measurement in
``observation.extra["cpi_inflation"]``) and hands the inner policy the observation with
``capacity_factor`` divided by f. Each policy documents how it uses the factor (HPA and KPA
lower their per-pod targets, the model-based policies lengthen the service time).

Taxonomy (arXiv 2507.17128): a modifier of any scaling method: the behaviour model gains an
interference (co-location) term; objective unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from offload.cluster.autoscaling.interface import Observation, Policy


def last_measured(obs: Observation) -> float:
    """Persistence: the inflation measured over the last interval (1 if none was measured)."""
    return float(obs.extra.get("cpi_inflation", 1.0))


@dataclass(frozen=True)
class InterferenceAware:
    """``inner`` with capacity discounted by ``predictor`` (see the module docstring)."""

    inner: Policy
    predictor: Callable[[Observation], float] = last_measured
    max_inflation: float = 10.0  # a runaway prediction is clamped, never trusted without limit

    @property
    def name(self) -> str:
        return f"{self.inner.name}+cpi"

    @property
    def period_s(self) -> float:
        return self.inner.period_s

    def initial_state(self) -> Any:
        return self.inner.initial_state()

    def decide(self, obs: Observation, state: Any) -> tuple[int, Any]:
        predicted = self.predictor(obs)
        inflation = min(max(predicted, 1.0), self.max_inflation) if predicted == predicted else 1.0
        discounted = replace(obs, capacity_factor=obs.capacity_factor / inflation)
        return self.inner.decide(discounted, state)
