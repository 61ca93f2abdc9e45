"""Interference mitigation strategies (pure) and the variants that combine them.

| variant | strategies | what it models |
| --- | --- | --- |
| ``off`` | none | co-location without QoS management |
| ``suppress`` | CPU suppress | Koordinator's BE CPU suppress (cfs quota policy) |
| ``full`` | CPU QoS + steering + suppress + cap -> pause -> resume, on predicted CPI | C-Koord. |
| ``full-pause`` | CPU QoS + steering + CPU suppress + pause/evict at once | the earlier ``full`` |
| ``steer`` | steering only | ablation: what prediction-driven routing alone does |
| ``qos`` | CPU QoS only | ablation: the BE group at the least CFS weight |
| ``koordinator`` | CPU QoS + CPU suppress | ablation: Koordinator's CPU tools, no prediction |

In ``full`` and ``full-pause`` the prediction also sets how hard to suppress (the threshold
rises by ``full_relax_frac`` while the requests are predicted to meet little interference) and
when to act on a co-runner (on the rate-weighted inflation, after steering has done what it
can). ``full`` escalates (``escalate``): it caps the culprit co-runner's own CPU quota in
proportion to the predicted excess inflation, pauses it only when capping to the floor has not
brought the requests back within the objective, and resumes and uncaps with hysteresis;
``full-pause`` pauses the culprit at once (``evict``).

:func:`decide` runs a variant's strategies on one observation; the executor applies the actions.
Each strategy lives in its own module with its formula in the docstring: ``qos``,
``suppress``, ``escalate``, ``evict``, ``steer``, ``placement``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from offload.cluster.mitigation import escalate, evict, qos, steer, suppress
from offload.cluster.mitigation.interface import (
    Action,
    CoRunnerView,
    EvictCoRunner,
    MitigationError,
    Observation,
    PauseCoRunner,
    PlaceReplica,
    ReplicaView,
    ResumeCoRunner,
    SetBeLimit,
    SetBeWeight,
    SetWeights,
    ThrottleCoRunner,
)

VARIANTS = ("off", "suppress", "full", "full-pause", "steer", "qos", "koordinator")
WITH_QOS = ("full", "full-pause", "qos", "koordinator")

__all__ = [
    "VARIANTS",
    "Action",
    "CoRunnerView",
    "EvictCoRunner",
    "MitigationConfig",
    "MitigationError",
    "MitigationState",
    "Observation",
    "PauseCoRunner",
    "PlaceReplica",
    "ReplicaView",
    "ResumeCoRunner",
    "SetBeLimit",
    "SetBeWeight",
    "SetWeights",
    "ThrottleCoRunner",
    "decide",
]


@dataclass(frozen=True)
class MitigationConfig:
    """A variant and its strategies' settings."""

    variant: str = "full"
    qos: qos.QosConfig = field(default_factory=qos.QosConfig)
    suppress: suppress.SuppressConfig = field(default_factory=suppress.SuppressConfig)
    evict: evict.EvictConfig = field(default_factory=evict.EvictConfig)
    escalate: escalate.EscalateConfig = field(default_factory=escalate.EscalateConfig)
    steer: steer.SteerConfig = field(default_factory=steer.SteerConfig)
    # what ``full`` adds to the Koordinator strategies: prediction-aware suppress and pausing
    # 0.35 lifts the threshold to 100% while the requests are predicted to meet little
    # interference: with CPU QoS on, a node-wide cap then only costs BE work (quiet sweep,
    # session 5: BE kept 0.44 at 0.15, 0.64 at 0.35, P99 0.121x vs 0.115x of off)
    full_relax_frac: float = 0.35
    full_traffic_weighted: bool = True

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise MitigationError(f"variant={self.variant!r} must be one of {', '.join(VARIANTS)}")
        most = 1 - self.suppress.threshold_frac  # the threshold may rise to 100%, no further
        if not 0 <= self.full_relax_frac <= most:
            raise MitigationError(
                f"full_relax_frac={self.full_relax_frac} must be in [0, {most:g}]"
            )


@dataclass(frozen=True)
class MitigationState:
    qos: qos.QosState = field(default_factory=qos.QosState)
    suppress: suppress.SuppressState = field(default_factory=suppress.SuppressState)
    evict: evict.EvictState = field(default_factory=evict.EvictState)
    escalate: escalate.EscalateState = field(default_factory=escalate.EscalateState)
    steer: steer.SteerState = field(default_factory=steer.SteerState)


def decide(
    obs: Observation, state: MitigationState, config: MitigationConfig
) -> tuple[list[Action], MitigationState]:
    """The variant's actions for one interval: the BE weight (CPU QoS), steering (it acts
    within the interval), then the cap, then at most one co-runner change."""
    if config.variant == "off":
        return [], state
    actions: list[Action] = []
    if config.variant in WITH_QOS:
        a, q = qos.decide(obs, state.qos, config.qos)
        actions += a
        state = replace(state, qos=q)
    if config.variant == "qos":
        return actions, state
    full = config.variant in ("full", "full-pause")
    if full or config.variant == "steer":
        a, s = steer.decide(obs, state.steer, config.steer)
        actions += a
        state = replace(state, steer=s)
    if config.variant == "steer":
        return actions, state
    sup, ev = config.suppress, config.evict
    if full:
        sup = replace(sup, relax_frac=config.full_relax_frac)
        ev = replace(ev, traffic_weighted=config.full_traffic_weighted)
    a, s2 = suppress.decide(obs, state.suppress, sup)
    actions += a
    state = replace(state, suppress=s2)
    if config.variant == "full":
        a, s3 = escalate.decide(obs, state.escalate, config.escalate)
        actions += a
        state = replace(state, escalate=s3)
    elif config.variant == "full-pause":
        a, s4 = evict.decide(obs, state.evict, ev)
        actions += a
        state = replace(state, evict=s4)
    return actions, state
