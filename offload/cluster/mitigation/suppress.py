"""Koordinator's CPU suppress (koordlet qosmanager ``cpusuppress``, cfsQuota policy).

Every interval the best-effort (BE) group gets the CPU left under a node threshold:

    budget = capacity x threshold% - LS used - system used        (Koordinator's formula)
    system used = node used - LS used - BE used                   (everything not ours)
    budget = max(budget, capacity x min%)                          (the floor)

and the cap is written as a CFS quota, with koordlet's two guards:
- dead band: a change smaller than 1% of the node's CPU is skipped (``dead_band_frac``),
  unless the new value is the floor;
- slow scale-up: the cap grows by at most 10% of the node per interval
  (``max_increase_frac``); it may fall at once (protecting LS comes first).

C-Koordinator's use of the prediction (``relax_frac`` > 0, the ``full`` variant): while the
interference the requests are predicted to meet (replicas' predicted inflation over their solo
inflation, weighted by their request rates) stays below ``relax_below``, the threshold is
raised by ``relax_frac``: interference that steering keeps away from the requests need not cost
best-effort work. With
``relax_frac = 0`` (the ``suppress`` variant) this is Koordinator's rule exactly.

Koordinator's default policy pins BE to a cpuset of ceil(budget) cpus, but never fewer than 2;
on a 2-cpu node that is every cpu, so the quota policy is the one that acts here.
"""

from __future__ import annotations

from dataclasses import dataclass

from offload.cluster.mitigation.interface import Action, MitigationError, Observation, SetBeLimit


@dataclass(frozen=True)
class SuppressConfig:
    """Attributes:
    threshold_frac: node CPU share LS + system + BE may use, (0, 1] (Koordinator 0.65).
    min_frac: floor of the BE budget as a share of the node, [0, threshold_frac].
    dead_band_frac: skip changes below this share of the node, [0, 0.5] (koordlet 0.01).
    max_increase_frac: largest rise per interval as a share of the node, (0, 1] (0.1).
    relax_frac: threshold raise while the served inflation is low, [0, 1 - threshold] (0).
    relax_below: served inflation under which the raise applies, > 1.
    """

    threshold_frac: float = 0.65
    min_frac: float = 0.05
    dead_band_frac: float = 0.01
    max_increase_frac: float = 0.1
    relax_frac: float = 0.0
    relax_below: float = 1.25

    def __post_init__(self) -> None:
        if not 0 < self.threshold_frac <= 1:
            raise MitigationError(f"threshold_frac={self.threshold_frac} must be in (0, 1]")
        if not 0 <= self.min_frac <= self.threshold_frac:
            raise MitigationError(f"min_frac={self.min_frac} must be in [0, threshold_frac]")
        if not 0 <= self.dead_band_frac <= 0.5:
            raise MitigationError(f"dead_band_frac={self.dead_band_frac} must be in [0, 0.5]")
        if not 0 < self.max_increase_frac <= 1:
            raise MitigationError(f"max_increase_frac={self.max_increase_frac} must be in (0, 1]")
        if not 0 <= self.relax_frac <= 1 - self.threshold_frac or not self.relax_below > 1:
            raise MitigationError(
                f"relax_frac={self.relax_frac} must be in [0, 1 - threshold_frac] and "
                f"relax_below={self.relax_below} > 1"
            )


@dataclass(frozen=True)
class SuppressState:
    """The cap last written (None: never written, the group is uncapped)."""

    limit_cores: float | None = None


def threshold(obs: Observation, config: SuppressConfig) -> float:
    """The threshold in force: raised by ``relax_frac`` while the served inflation is low."""
    served = obs.served_interference()
    if config.relax_frac > 0 and served == served and served < config.relax_below:
        return config.threshold_frac + config.relax_frac
    return config.threshold_frac


def budget_cores(obs: Observation, config: SuppressConfig) -> float:
    """The formula above, before the guards (cores)."""
    system = max(0.0, obs.node_cpu_used - obs.ls_cpu_used - obs.be_cpu_used)
    budget = obs.capacity_cores * threshold(obs, config) - obs.ls_cpu_used - system
    return max(budget, obs.capacity_cores * config.min_frac)


def decide(
    obs: Observation, state: SuppressState, config: SuppressConfig
) -> tuple[list[Action], SuppressState]:
    """One interval of CPU suppress (see the module docstring)."""
    cap = obs.capacity_cores
    floor = cap * config.min_frac
    target = budget_cores(obs, config)
    current = state.limit_cores
    if current is not None and target - current > cap * config.max_increase_frac:
        target = current + cap * config.max_increase_frac
    target = min(target, cap)
    small = current is not None and abs(target - current) < cap * config.dead_band_frac
    to_floor = abs(target - floor) < 1e-9 and current is not None and abs(current - floor) > 1e-9
    if small and not to_floor:  # koordlet: skip small changes, unless down to the floor
        return [], state
    system = max(0.0, obs.node_cpu_used - obs.ls_cpu_used - obs.be_cpu_used)
    reason = (
        f"budget = {cap:.2f} x {threshold(obs, config):.2f} - LS {obs.ls_cpu_used:.2f} - "
        f"system {system:.2f} (floor {floor:.2f}) -> {target:.2f} cores"
    )
    return [SetBeLimit(reason, round(target, 4))], SuppressState(round(target, 4))
