"""What the mitigation strategies see and what they may ask for.

Every strategy is a pure function ``decide(observation, state, config) -> (actions, state)``
(the Koordinator shape: one directory per strategy, a tiny interface, one executor that alone
applies actions and logs each change: :mod:`offload.cluster.executor`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

NAN = float("nan")


class MitigationError(ValueError):
    """A bad strategy setting (the message names the field and the limit)."""


@dataclass(frozen=True)
class ReplicaView:
    """A latency-sensitive replica as the agent sees it in one interval.

    Attributes:
        name: replica name.
        cpus: cpus it may run on.
        cpu_used: CPU it used (cores).
        cpi: measured CPI (probe or PMU), NaN when not measured this interval.
        reference_cpi: the probe's calibrated uncontended CPI (NaN if unknown).
        predicted_cpi: the predictor's CPI for the next interval, NaN without a predictor.
        predicted_cpi_resumed: the same if every paused co-runner were resumed (NaN if none is
            paused or no predictor).
        rate_per_s: requests per second it answered.
        latency_p90_ms: P90 latency of those requests (NaN if none).
        latency_p99_ms: P99 latency of those requests (NaN if none).
        solo_inflation: the inflation it would show at its own CPU use with no co-runner
            (the predictor's solo curve; 1 without one): the probe shares the replica's cpus,
            so the replica's own work inflates it too.
    """

    name: str
    cpus: tuple[int, ...]
    cpu_used: float = 0.0
    cpi: float = NAN
    reference_cpi: float = NAN
    predicted_cpi: float = NAN
    predicted_cpi_resumed: float = NAN
    rate_per_s: float = 0.0
    latency_p90_ms: float = NAN
    latency_p99_ms: float = NAN
    solo_inflation: float = 1.0

    def inflation(self, predicted: bool = True) -> float:
        """CPI / reference: the predicted one where there is a prediction, else the measured."""
        cpi = self.predicted_cpi if predicted and not math.isnan(self.predicted_cpi) else self.cpi
        return cpi / self.reference_cpi if self.reference_cpi > 0 else NAN

    def interference(self, predicted: bool = True) -> float:
        """Inflation over the solo inflation: the part co-runners add (1 = none)."""
        return self.inflation(predicted) / self._solo()

    def interference_resumed(self) -> float:
        """The interference predicted with every paused co-runner back (the predictor's
        what-if); without one, :meth:`interference`."""
        w = self.predicted_cpi_resumed
        if math.isnan(w) or not self.reference_cpi > 0:
            return self.interference()
        return w / self.reference_cpi / self._solo()

    def _solo(self) -> float:
        return self.solo_inflation if self.solo_inflation > 0 else 1.0


@dataclass(frozen=True)
class CoRunnerView:
    """A best-effort co-runner in one interval (state: running, paused, stopped, evicted;
    duty: the share of time it means to work, 0..1)."""

    name: str
    kind: str
    cpus: tuple[int, ...]
    cpu_used: float = 0.0
    state: str = "running"
    limit_cores: float | None = None
    duty: float = 1.0


@dataclass(frozen=True)
class Observation:
    """One control interval.

    Attributes:
        t_s: monotonic time (s).
        capacity_cores: the node's CPUs.
        node_cpu_used: CPU used on the node by everything (cores).
        replicas: latency-sensitive replicas.
        corunners: best-effort co-runners.
        be_limit_cores: the best-effort group's current cap (None: uncapped).
        be_shares: the best-effort group's CPU weight (cpu.shares units; None: unknown).
    """

    t_s: float
    capacity_cores: float
    node_cpu_used: float
    replicas: tuple[ReplicaView, ...] = ()
    corunners: tuple[CoRunnerView, ...] = ()
    be_limit_cores: float | None = None
    be_shares: int | None = None

    @property
    def ls_cpu_used(self) -> float:
        return sum(r.cpu_used for r in self.replicas)

    @property
    def be_cpu_used(self) -> float:
        return sum(c.cpu_used for c in self.corunners)

    def served_inflation(self) -> float:
        """The inflation the requests meet: replicas' inflations weighted by their request
        rates (unweighted mean when nothing was served; NaN when nothing is known)."""
        return self._served(lambda r: r.inflation())

    def served_interference(self) -> float:
        """The same of the replicas' interference (inflation over solo inflation)."""
        return self._served(lambda r: r.interference())

    def _served(self, value: Callable[[ReplicaView], float]) -> float:
        pairs = [(r.rate_per_s, value(r)) for r in self.replicas if not math.isnan(value(r))]
        if not pairs:
            return NAN
        total = sum(w for w, _ in pairs)
        if total <= 0:
            return sum(x for _, x in pairs) / len(pairs)
        return sum(w * x for w, x in pairs) / total


@dataclass(frozen=True)
class Action:
    """Base of every action; ``reason`` is logged with the change."""

    reason: str


@dataclass(frozen=True)
class SetBeLimit(Action):
    """Cap the best-effort group at ``cores`` CPUs (None: lift the cap)."""

    cores: float | None


@dataclass(frozen=True)
class SetBeWeight(Action):
    """Set the best-effort group's CPU weight (``cpu.shares`` units, 2..262144)."""

    shares: int


@dataclass(frozen=True)
class ThrottleCoRunner(Action):
    """Cap one co-runner's own group at ``cores`` CPUs (None: lift its cap)."""

    name: str
    cores: float | None


@dataclass(frozen=True)
class PauseCoRunner(Action):
    name: str


@dataclass(frozen=True)
class ResumeCoRunner(Action):
    name: str


@dataclass(frozen=True)
class EvictCoRunner(Action):
    name: str


@dataclass(frozen=True)
class SetWeights(Action):
    """Router weights per replica, (0, 1]: a replica's share of new requests scales with it."""

    weights: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class PlaceReplica(Action):
    """Start the next replica on these cpus."""

    cpus: tuple[int, ...]


def overlap(a: tuple[int, ...], b: tuple[int, ...], all_cpus: int) -> float:
    """Share of ``a``'s cpus that ``b`` may also use (an empty set means every cpu)."""
    sa = set(a) or set(range(all_cpus))
    sb = set(b) or set(range(all_cpus))
    return len(sa & sb) / len(sa) if sa else 0.0
