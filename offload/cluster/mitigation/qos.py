"""CPU QoS: the best-effort group at the lowest CFS weight (Koordinator's CPU QoS).

Koordinator gives latency-sensitive pods precedence in the kernel's scheduler ("CPU QoS"): on
Alibaba Cloud Linux through group identity (LS 2, BE -1: a waking BE task never preempts an LS
one); on upstream kernels the tool is the CFS weight, and Kubernetes already gives BestEffort
pods the least one (``cpu.shares`` 2). Here the local cluster's BE group starts at the LS
group's weight (1024: co-location without QoS management, the ``off`` variant), and this
strategy writes ``be_shares`` (2 by default) once, and again whenever the observed weight
differs (a restart, a reset). With weights 1024 : 2, CFS runs a BE task on a core only while no
LS task there wants it: BE keeps the idle time, and an LS request that arrives waits for the
BE task's current slice at most (cache and memory-bandwidth interference remain, which is what
suppress and the CPI-driven strategies are for).

On cgroup v2 the weight maps as systemd's (``Cgroup.set_cpu_weight``); cgroup v2's
``cpu.idle`` (SCHED_IDLE for a group) would go further, and is not used.
"""

from __future__ import annotations

from dataclasses import dataclass

from offload.cluster.mitigation.interface import Action, MitigationError, Observation, SetBeWeight


@dataclass(frozen=True)
class QosConfig:
    """Attributes:
    be_shares: the BE group's weight in ``cpu.shares`` units, 2..262144 (2: Kubernetes'
        BestEffort; the LS side has 1024).
    """

    be_shares: int = 2

    def __post_init__(self) -> None:
        if not 2 <= self.be_shares <= 262144:
            raise MitigationError(f"be_shares={self.be_shares} must be in [2, 262144]")


@dataclass(frozen=True)
class QosState:
    """The weight last asked for (None: never)."""

    asked: int | None = None


def decide(obs: Observation, state: QosState, config: QosConfig) -> tuple[list[Action], QosState]:
    """Asks for ``be_shares`` while the observed weight differs (or is unknown and never
    asked for)."""
    want = config.be_shares
    if obs.be_shares == want or (obs.be_shares is None and state.asked == want):
        return [], state
    why = (
        f"CPU QoS: best-effort weight {obs.be_shares} -> {want} (LS first on every core; BE keeps "
        "the idle time)"
    )
    return [SetBeWeight(why, want)], QosState(want)
