"""Interference-aware autoscaling: any policy, with per-replica capacity discounted by the
predicted CPI inflation.

C-Koordinator (arXiv 2507.18005) predicts the CPI of latency-sensitive workloads from node
metrics; a replica whose CPI rises by a factor f retires instructions f times slower, so it
serves 1/f of its uncontended load. The wrapper asks a predictor for f over the next interval
(``predict(observation) -> f >= 1``) and hands the inner policy the observation with
``capacity_factor`` divided by f. Each policy documents how it uses the factor (HPA and KPA
lower their per-pod targets, the model-based policies lengthen the service time).

The default predictor, :class:`CpiModelPredictor`, is the cluster issue's (issue 17) CPI model
(``offload.cluster.predictor.CpiPredictor``, LightGBM, shipped as ``models/cpi_predictor.txt``)
wherever its inputs exist, and the live measured inflation otherwise, in this order:

1. ``extra["predicted_inflation"]``: the cluster agent's report already ran the model on each
   replica's feature row (``offload.cluster.agent``; :func:`extra_from_agent_report`);
2. ``extra["cpi_features"]``: a feature row per replica (``offload.cluster.features.row``):
   the model runs here;
3. ``extra["measured_inflation"]`` (per replica, the agent's probe) or ``extra["cpi_inflation"]``
   (one value, what the simulation's probe reports): the last measurement, persisted (what a
   reactive controller assumes; the cluster issue's *last value* baseline);
4. none of these: 1 (no discount).

Per-replica values combine as the harmonic mean: n replicas slowed by f_i serve sum 1/f_i
uncontended replicas' worth, i.e. n replicas slowed by n / sum 1/f_i.

Taxonomy (arXiv 2507.17128): a modifier of any scaling method: the behaviour model gains an
interference (co-location) term; objective unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from offload.cluster.autoscaling.interface import Observation, Policy


def _harmonic(values: Any) -> float:
    """Harmonic mean of the finite positive values (NaN if none)."""
    ok = [float(v) for v in values if isinstance(v, float | int) and math.isfinite(v) and v > 0]
    return len(ok) / sum(1.0 / v for v in ok) if ok else math.nan


def measured(obs: Observation) -> float:
    """The inflation measured over the last interval: the agent's per-replica probe values, or
    the single probe value; NaN when nothing was measured."""
    per_replica = obs.extra.get("measured_inflation")
    if isinstance(per_replica, Mapping):
        f = _harmonic(per_replica.values())
        if f == f:
            return f
    value = obs.extra.get("cpi_inflation")
    return float(value) if isinstance(value, float | int) else math.nan


def last_measured(obs: Observation) -> float:
    """Persistence: the inflation measured over the last interval (1 if none was measured)."""
    f = measured(obs)
    return f if f == f else 1.0


def extra_from_agent_report(report: Mapping[str, Any]) -> dict[str, Any]:
    """What the cluster agent's report (``offload.cluster.agent.Agent.report``) tells an
    autoscaler: its model's predicted inflation and its probes' measured inflation per
    replica, as ``Observation.extra`` entries."""
    out: dict[str, Any] = {}
    if isinstance(report.get("predicted_inflation"), Mapping):
        out["predicted_inflation"] = dict(report["predicted_inflation"])
    if isinstance(report.get("inflation"), Mapping):
        out["measured_inflation"] = dict(report["inflation"])
    return out


class CpiModelPredictor:
    """Issue 17's CPI model where its inputs exist, the measured inflation otherwise (see the
    module docstring). ``model``: a ``CpiPredictor``, or a path to load one from when the
    first feature rows arrive (the shipped model by default); a model that cannot be loaded
    leaves the measured fallback. ``last_source`` says which input answered the last call."""

    def __init__(self, model: Any = None) -> None:
        self._model = model
        self.last_source = "none"
        self.load_error: str | None = None

    def model(self) -> Any:
        if self._model is None or isinstance(self._model, str | Path):
            from offload.cluster.predictor import DEFAULT_MODEL, CpiPredictor, PredictorError

            try:
                self._model = CpiPredictor.load(Path(self._model or DEFAULT_MODEL))
            except (PredictorError, OSError, ValueError) as err:
                self.load_error, self._model = str(err), False
        return self._model or None

    def __call__(self, obs: Observation) -> float:
        predicted = obs.extra.get("predicted_inflation")
        if isinstance(predicted, Mapping):
            f = _harmonic(predicted.values())
            if f == f:
                self.last_source = "agent_prediction"
                return f
        rows = obs.extra.get("cpi_features")
        if isinstance(rows, Mapping) and rows and self.model() is not None:
            import numpy as np

            from offload.cluster.features import vector

            X = np.array([vector(r) for r in rows.values()], dtype=float)
            f = _harmonic(self.model().predict(X).tolist())
            if f == f:
                self.last_source = "model"
                return f
        f = measured(obs)
        self.last_source = "measured" if f == f else "none"
        return f if f == f else 1.0


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
