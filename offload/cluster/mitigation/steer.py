"""Steer requests away from replicas with high predicted CPI (C-Koordinator's prediction used
by the router).

The router sends a request to the replica with the least ``(outstanding + 1) / weight``
(:mod:`offload.cluster.router`): with weight = 1 / predicted interference that is the replica
with the least predicted time to answer, ``(queue + 1) x service time x interference``. The
weights:

    w_i = (min_j x_j / x_i) ** sharpness,   clipped to [min_weight, 1]
    x = interference (ReplicaView.interference: predicted inflation over the inflation the
        replica shows at its own load with no co-runner; measured where there is no
        prediction; 1 if neither)

smoothed over intervals, ``w <- (1 - smoothing) w + smoothing w_new``, and sent only when
one weight moves by more than ``dead_band`` (a router that flaps is worse than a slightly stale
one). ``min_weight`` keeps every replica in use (its latency stays observed and it can
recover).

Why interference and sharpness 1 (session 5; before: raw inflation, sharpness 2): the router
already counts each replica's queue; the raw inflation counts it again (a busy replica inflates
its own probe), and squaring the ratio sent most requests to one replica, whose queue then set
the tail (in the quiet sweep full's P99 was 1.1x suppress's, with 2x the weight moves).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from offload.cluster.mitigation.interface import Action, MitigationError, Observation, SetWeights


@dataclass(frozen=True)
class SteerConfig:
    """Attributes:
    sharpness: exponent on the interference ratio, > 0 (1: proportional to predicted speed).
    min_weight: the least weight a replica keeps, (0, 1].
    smoothing: weight of the new value in the moving average, (0, 1].
    dead_band: smallest weight change that is sent, [0, 1).
    """

    sharpness: float = 1.0
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
        x = r.interference()
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
    why = ", ".join(f"{r.name} interference {r.interference():.2f}" for r in obs.replicas)
    return [SetWeights(why, dict(weights))], SteerState(weights, dict(weights))
