"""Interference-aware placement of a new replica: the cpus where it is predicted to run best.

Kubernetes' default spreads replicas (least-allocated); C-Koordinator scores nodes by the
interference the new pod would suffer and cause. Here the candidates are cpu sets of one node
(one core each on a small VM, or NUMA nodes / core groups on a big one); for each, the agent asks
the predictor for the new replica's CPI *as if it ran there* (its co-location features set to
that candidate's co-runners) and the strategy picks

    argmin over candidates of (predicted inflation to 0.1, LS replicas already there, first cpu)

Without a prediction (NaN) a candidate is scored by the CPU the co-runners that may share it use
(busy cores last), which is Kubernetes' spreading with co-runners counted as load.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from offload.cluster.mitigation.interface import Action, MitigationError, PlaceReplica


@dataclass(frozen=True)
class Candidate:
    """Where a replica could go: ``cpus``, its predicted inflation there (NaN: unknown), the
    LS replicas already on those cpus and the CPU co-runners use there (cores)."""

    cpus: tuple[int, ...]
    predicted_inflation: float = float("nan")
    ls_replicas: int = 0
    be_cpu_used: float = 0.0


@dataclass(frozen=True)
class PlacementState:
    """No memory is needed: placement is decided afresh for each new replica."""


def decide(
    candidates: tuple[Candidate, ...], state: PlacementState
) -> tuple[list[Action], PlacementState]:
    """The best candidate (see the module docstring).

    Raises:
        MitigationError: no candidate.
    """
    if not candidates:
        raise MitigationError("placement needs at least one candidate cpu set")

    def score(c: Candidate) -> tuple[float, float, int, int]:
        infl = c.predicted_inflation
        if math.isnan(infl):
            return (math.inf, c.be_cpu_used, c.ls_replicas, min(c.cpus, default=0))
        # inflations within 0.05 of each other are a tie (the predictor is not that exact)
        return (round(infl * 10) / 10, 0.0, c.ls_replicas, min(c.cpus, default=0))

    best = min(candidates, key=score)
    why = ", ".join(
        f"cpus {list(c.cpus)}: inflation {c.predicted_inflation:.2f}, "
        f"{c.ls_replicas} LS, BE {c.be_cpu_used:.2f}"
        for c in candidates
    )
    return [PlaceReplica(f"least predicted interference ({why})", best.cpus)], state
