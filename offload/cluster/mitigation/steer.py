"""Steer requests away from replicas with high predicted CPI (C-Koordinator's prediction used
by the router).

The router sends a request to the replica with the least ``(outstanding + 1) / weight``
(:mod:`offload.cluster.router`): with weight = 1 / predicted inflation that is the replica
with the least predicted time to answer, ``(queue + 1) x service time x inflation``. The weights:

    w_i = (min_j infl_j / infl_i) ** sharpness,   clipped to [min_weight, 1]
    infl = predicted CPI / reference (measured CPI where there is no prediction; 1 if neither)

smoothed over intervals, ``w <- (1 - smoothing) w + smoothing w_new``, and sent only when
one weight moves by more than ``dead_band`` (a router that flaps is worse than a slightly stale
one). ``min_weight`` keeps every replica in use (its latency stays observed and it can
recover).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from offload.cluster.mitigation.interface import Action, MitigationError, Observation, SetWeights


@dataclass(frozen=True)
class SteerConfig:
    """Attributes:
    sharpness: exponent on the inflation ratio, > 0 (1: proportional to predicted speed).
    min_weight: the least weight a replica keeps, (0, 1].
    smoothing: weight of the new value in the moving average, (0, 1].
    dead_band: smallest weight change that is sent, [0, 1).
    """

    sharpness: float = 2.0
    min_weight: float = 0.05
    smoothing: float = 0.7
    dead_band: float = 0.05

    def __post_init__(self) -> None:
        if not self.sharpness > 0 or not 0 < self.min_weight <= 1:
            raise MitigationError("sharpness must be > 0 and min_weight in (0, 1]")
        if not 0 < self.smoothing <= 1 or not 0 <= self.dead_band < 1:
            raise MitigationError("smoothing must be in (0, 1] and dead_band in [0, 1)")


@dataclass(frozen=True)
class SteerState:
    """weights: the smoothed weights; sent: the weights the router has."""

    weights: dict[str, float] = field(default_factory=dict)
    sent: dict[str, float] = field(default_factory=dict)


def target_weights(obs: Observation, config: SteerConfig) -> dict[str, float]:
    infl = {}
    for r in obs.replicas:
        x = r.inflation()
        infl[r.name] = x if x > 0 and not math.isnan(x) else 1.0
    if not infl:
        return {}
    best = min(infl.values())
    return {
        n: min(1.0, max(config.min_weight, (best / x) ** config.sharpness)) for n, x in infl.items()
    }


def decide(
    obs: Observation, state: SteerState, config: SteerConfig
) -> tuple[list[Action], SteerState]:
    """One interval (see the module docstring)."""
    target = target_weights(obs, config)
    a = config.smoothing
    weights = {n: round((1 - a) * state.weights.get(n, w) + a * w, 4) for n, w in target.items()}
    changed = set(weights) != set(state.sent) or any(
        abs(w - state.sent.get(n, 1.0)) > config.dead_band for n, w in weights.items()
    )
    if not changed:
        return [], SteerState(weights, state.sent)
    why = ", ".join(f"{r.name} infl {r.inflation():.2f}" for r in obs.replicas)
    return [SetWeights(why, dict(weights))], SteerState(weights, dict(weights))
