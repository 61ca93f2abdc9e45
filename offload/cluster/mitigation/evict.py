"""Pause or evict the co-runner that hurts a latency-sensitive replica, with a cool-down.

C-Koordinator acts on *predicted* interference (CPI) rather than on CPU use alone; Koordinator's
BE eviction brings the cool-down and the "evict when suppressing is not enough" escalation.

Per interval, for each replica whose interference (``ReplicaView.interference``: predicted
CPI / reference, else measured, over the inflation it shows at its own load with no co-runner)
stays above ``pause_above`` for ``sustain_intervals`` intervals in a row:
- the running co-runner that shares most of its cpus (ties: the one using most CPU) is paused
  (frozen: it keeps its memory and resumes where it stopped);
- a co-runner paused ``evict_after_pauses`` times within ``window_s`` is evicted instead
  (stopped for good: it keeps coming back and hurting).
A paused co-runner is resumed once ``cooldown_s`` has passed and every replica's interference
*with the paused co-runners resumed* (the predictor's what-if; without a predictor, the current
interference) is below ``resume_below``. One co-runner changes per interval (the effect of one
step is seen before the next).

With ``traffic_weighted`` (the ``full`` variant, where steering runs first) the trigger is the
interference the *requests* meet, weighted by the replicas' request rates: a replica that
steering has emptied may stay slow without a pause, and best-effort work goes on; the culprit
is then found next to the replica with the most rate x (interference - 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from offload.cluster.mitigation.interface import (
    Action,
    EvictCoRunner,
    MitigationError,
    Observation,
    PauseCoRunner,
    ResumeCoRunner,
    overlap,
)


@dataclass(frozen=True)
class EvictConfig:
    """Attributes:
    pause_above: inflation that counts as interference, > 1.
    resume_below: inflation under which paused co-runners may come back, (1, pause_above].
    sustain_intervals: consecutive intervals above ``pause_above`` before acting, >= 1.
    cooldown_s: least time a co-runner stays paused (s), >= 0.
    evict_after_pauses: pauses within ``window_s`` that turn the next into an eviction, >= 1.
    window_s: the window of that count (s), > 0.
    traffic_weighted: trigger on the rate-weighted inflation (see the module docstring).
    """

    pause_above: float = 1.6
    resume_below: float = 1.3
    sustain_intervals: int = 2
    cooldown_s: float = 10.0
    evict_after_pauses: int = 3
    window_s: float = 120.0
    traffic_weighted: bool = False

    def __post_init__(self) -> None:
        if not self.pause_above > 1:
            raise MitigationError(f"pause_above={self.pause_above} must be > 1")
        if not 1 < self.resume_below <= self.pause_above:
            raise MitigationError(f"resume_below={self.resume_below} must be in (1, pause_above]")
        if self.sustain_intervals < 1 or self.evict_after_pauses < 1:
            raise MitigationError("sustain_intervals and evict_after_pauses must be >= 1")
        if self.cooldown_s < 0 or not self.window_s > 0:
            raise MitigationError("cooldown_s must be >= 0 and window_s > 0")


@dataclass(frozen=True)
class EvictState:
    """above: replica -> consecutive intervals above the threshold; paused_at: co-runner ->
    when it was paused; pauses: co-runner -> times of its pauses (within the window)."""

    above: dict[str, int] = field(default_factory=dict)
    paused_at: dict[str, float] = field(default_factory=dict)
    pauses: dict[str, tuple[float, ...]] = field(default_factory=dict)


def decide(
    obs: Observation, state: EvictState, config: EvictConfig
) -> tuple[list[Action], EvictState]:
    """One interval (see the module docstring)."""
    levels = {r.name: r.interference() for r in obs.replicas}
    if config.traffic_weighted:
        levels = {SERVED: obs.served_interference()}
    above = {
        n: state.above.get(n, 0) + 1 if x > config.pause_above else 0 for n, x in levels.items()
    }
    state = replace(state, above=above)
    paused = {c.name for c in obs.corunners if c.state == "paused"}
    state = replace(state, paused_at={k: v for k, v in state.paused_at.items() if k in paused})
    if any(n >= config.sustain_intervals for n in above.values()) and obs.replicas:
        if config.traffic_weighted:
            worst = max(
                obs.replicas,
                key=lambda r: (r.rate_per_s * (_f(r.interference()) - 1), _f(r.interference())),
            )
        else:
            hurt = [r for r in obs.replicas if above[r.name] >= config.sustain_intervals]
            worst = max(hurt, key=lambda r: r.interference())
        running = [c for c in obs.corunners if c.state == "running"]
        if running:
            n = int(obs.capacity_cores)
            culprit = max(running, key=lambda c: (overlap(worst.cpus, c.cpus, n), c.cpu_used))
            recent = tuple(
                t for t in state.pauses.get(culprit.name, ()) if obs.t_s - t <= config.window_s
            )
            why = f"{worst.name} interference {worst.interference():.2f} > {config.pause_above}"
            if len(recent) >= config.evict_after_pauses:
                why += f" and {len(recent)} pauses in {config.window_s:.0f} s"
                return [EvictCoRunner(why, culprit.name)], replace(state, above={})
            pauses = {**state.pauses, culprit.name: (*recent, obs.t_s)}
            paused_at = {**state.paused_at, culprit.name: obs.t_s}
            return [PauseCoRunner(why, culprit.name)], replace(
                state, above={}, pauses=pauses, paused_at=paused_at
            )
    return _resume(obs, state, config)


SERVED = "(served)"  # the key of the rate-weighted level in EvictState.above


def _f(x: float) -> float:
    return 1.0 if math.isnan(x) else x


def _resume(
    obs: Observation, state: EvictState, config: EvictConfig
) -> tuple[list[Action], EvictState]:
    ready = [n for n, t in state.paused_at.items() if obs.t_s - t >= config.cooldown_s]
    if not ready:
        return [], state
    what_ifs = []
    for r in obs.replicas:
        what_ifs.append((r.rate_per_s, _f(r.interference_resumed())))
    worst = max([1.0] + [x for _, x in what_ifs])
    total = sum(w for w, _ in what_ifs)
    if config.traffic_weighted and total > 0:
        worst = sum(w * x for w, x in what_ifs) / total
    if worst >= config.resume_below:
        return [], state
    name = min(ready, key=lambda n: state.paused_at[n])
    paused_at = {k: v for k, v in state.paused_at.items() if k != name}
    why = (
        f"cool-down {config.cooldown_s:.0f} s over and inflation {worst:.2f} < "
        f"{config.resume_below}"
    )
    return [ResumeCoRunner(why, name)], replace(state, paused_at=paused_at)
