"""Escalating co-runner mitigation: cap the culprit's CPU first, pause it only if capping fails.

Koordinator's BE suppression caps best-effort CPU with CFS quota (``cpu.cfs_quota_us``) and
evicts only when suppression is not enough; C-Koordinator drives both from predicted CPI. The
``full`` variant runs this ladder per co-runner, on its own cgroup's quota:

1. **Cap** (``ThrottleCoRunner``). While the level the requests meet, ``L`` (replicas'
   interference -- inflation, predicted where there is a prediction, over the inflation the
   replica shows at its own load with no co-runner, ``ReplicaView.interference`` -- weighted by
   their request rates), is over
   the objective ``target_inflation`` -- or, with ``p99_objective_ms`` set, while the replicas'
   rate-weighted P99 latency is over it -- the running co-runner that most overlaps the
   worst-hit replica ``r`` (most rate x (inflation - 1)) and is not yet at the floor (ties:
   the one using most CPU) is capped in proportion to the excess:
   on a time-shared core the excess inflation is taken as proportional to the co-runner's CPU
   there, so the CPU that brings ``infl_r`` down to the target is

       cap = max(floor_cores, base x (target - 1) / (infl_r - 1))

   with ``base`` its current cap, or uncapped the CPU it used but at least its nominal
   ``duty x cpus`` (the part on ``r``'s cpus: all of it when pinned there); where that would
   not lower it (``r`` itself within the target, the P99 objective missed),
   ``base / raise_factor``. Never under ``floor_cores``; the cap never rises while over the
   objective.
2. **Pause** (``PauseCoRunner``). Only when the objective has been missed for
   ``pause_after`` intervals in a row *with every co-runner near ``r`` at the floor* (capping
   did not
   bring the requests back within the objective) is it paused (frozen); a co-runner paused
   ``evict_after_pauses`` times within ``window_s`` is evicted instead.
3. **Resume and uncap, with hysteresis.** Once ``cooldown_s`` has passed and every paused
   co-runner's return is predicted harmless (``L`` with the paused ones resumed, the predictor's
   what-if, else the measured level, under ``resume_below``), the oldest paused one is resumed
   *at the floor cap*. While ``L`` stays under ``resume_below`` for ``raise_after`` intervals,
   the most capped co-runner's cap rises by ``raise_factor`` (lifted once it reaches
   ``uncap_at_cores``). Between ``resume_below`` and the objective nothing changes (the dead
   band that keeps caps from flapping).

One co-runner changes per interval (its effect is seen before the next step), as in
:mod:`~offload.cluster.mitigation.evict`, whose pause-at-once rule this replaces in ``full``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from offload.cluster.mitigation.interface import (
    Action,
    CoRunnerView,
    EvictCoRunner,
    MitigationError,
    Observation,
    PauseCoRunner,
    ReplicaView,
    ResumeCoRunner,
    ThrottleCoRunner,
    overlap,
)


@dataclass(frozen=True)
class EscalateConfig:
    """Attributes:
    target_inflation: the objective on the served inflation, > 1.
    resume_below: served inflation under which caps rise and paused co-runners return,
        (1, target_inflation].
    p99_objective_ms: objective on the rate-weighted P99 latency (ms, > 0), or None (the
        inflation objective alone).
    floor_cores: the least cap (cores), > 0.
    pause_after: intervals over the objective with the culprit at the floor before a pause, >= 1.
    raise_after: intervals under ``resume_below`` before a cap rises, >= 1.
    raise_factor: a cap's rise per step, > 1.
    uncap_at_cores: a cap at or above this is lifted (cores), > floor_cores.
    cooldown_s: least time a co-runner stays paused (s), >= 0.
    evict_after_pauses: pauses within ``window_s`` that turn the next into an eviction, >= 1.
    window_s: the window of that count (s), > 0.
    """

    target_inflation: float = 1.6
    resume_below: float = 1.3
    p99_objective_ms: float | None = None
    floor_cores: float = 0.1
    pause_after: int = 3
    raise_after: int = 2
    raise_factor: float = 1.5
    uncap_at_cores: float = 1.0
    cooldown_s: float = 10.0
    evict_after_pauses: int = 3
    window_s: float = 120.0

    def __post_init__(self) -> None:
        if not self.target_inflation > 1 or not 1 < self.resume_below <= self.target_inflation:
            raise MitigationError(
                f"target_inflation={self.target_inflation} must be > 1 and resume_below="
                f"{self.resume_below} in (1, target_inflation]"
            )
        if self.p99_objective_ms is not None and not self.p99_objective_ms > 0:
            raise MitigationError(f"p99_objective_ms={self.p99_objective_ms} must be > 0")
        if not 0 < self.floor_cores < self.uncap_at_cores:
            raise MitigationError(f"floor_cores={self.floor_cores} must be in (0, uncap_at_cores)")
        if min(self.pause_after, self.raise_after, self.evict_after_pauses) < 1:
            raise MitigationError("pause_after, raise_after, evict_after_pauses must be >= 1")
        if not self.raise_factor > 1 or self.cooldown_s < 0 or not self.window_s > 0:
            raise MitigationError("raise_factor must be > 1, cooldown_s >= 0, window_s > 0")


@dataclass(frozen=True)
class EscalateState:
    """over: consecutive intervals over the objective with the culprit at the floor; under:
    consecutive intervals under ``resume_below``; paused_at / pauses: as in ``evict``."""

    over: int = 0
    under: int = 0
    paused_at: dict[str, float] = field(default_factory=dict)
    pauses: dict[str, tuple[float, ...]] = field(default_factory=dict)


def served_level(obs: Observation) -> float:
    """The interference the requests meet (NaN when nothing is known)."""
    return obs.served_interference()


def served_p99_ms(obs: Observation) -> float:
    """Replicas' P99 latency weighted by their request rates (NaN without requests)."""
    pairs = [
        (r.rate_per_s, r.latency_p99_ms)
        for r in obs.replicas
        if r.rate_per_s > 0 and not math.isnan(r.latency_p99_ms)
    ]
    total = sum(w for w, _ in pairs)
    return sum(w * x for w, x in pairs) / total if total > 0 else math.nan


def violated(obs: Observation, config: EscalateConfig) -> bool:
    """Is the objective missed this interval (see the module docstring)?"""
    level = served_level(obs)
    if not math.isnan(level) and level > config.target_inflation:
        return True
    p99 = served_p99_ms(obs)
    return config.p99_objective_ms is not None and p99 > config.p99_objective_ms


def _infl(r: ReplicaView) -> float:
    x = r.interference()
    return 1.0 if math.isnan(x) else x


def decide(
    obs: Observation, state: EscalateState, config: EscalateConfig
) -> tuple[list[Action], EscalateState]:
    """One interval (see the module docstring)."""
    paused = {c.name for c in obs.corunners if c.state == "paused"}
    state = replace(state, paused_at={k: v for k, v in state.paused_at.items() if k in paused})
    running = [c for c in obs.corunners if c.state == "running"]
    if violated(obs, config) and obs.replicas:
        state = replace(state, under=0)
        worst = max(obs.replicas, key=lambda r: (r.rate_per_s * (_infl(r) - 1), _infl(r)))
        n = int(obs.capacity_cores)
        near = sorted(
            (c for c in running if overlap(worst.cpus, c.cpus, n) > 0),
            key=lambda c: (overlap(worst.cpus, c.cpus, n), c.cpu_used),
            reverse=True,
        )
        if not near:
            return [], replace(state, over=0)
        to_cap = [c for c in near if not _at_floor(c, config)]
        if to_cap:  # every co-runner near it is capped to the floor before any is paused
            return _cap(obs, to_cap[0], worst, config, n), replace(state, over=0)
        culprit = near[0]
        over = state.over + 1
        if over < config.pause_after:
            return [], replace(state, over=over)
        return _pause(obs, culprit, worst, replace(state, over=0), config)
    state = replace(state, over=0)
    return _relax(obs, state, config)


def _at_floor(c: CoRunnerView, config: EscalateConfig) -> bool:
    return c.limit_cores is not None and c.limit_cores <= config.floor_cores * 1.001


def _cap(
    obs: Observation, c: CoRunnerView, worst: ReplicaView, config: EscalateConfig, n: int
) -> list[Action]:
    infl = _infl(worst)
    # capped: its cap (what it may use); uncapped: the CPU it used, at least its nominal
    # (duty x the cpus it may use: a co-runner started this interval has no measured use yet)
    nominal = c.duty * (len(c.cpus) or n)
    base = c.limit_cores if c.limit_cores is not None else max(c.cpu_used, nominal)
    base = max(base, config.floor_cores)
    # the part of its CPU on the replica's cpus (all of it when pinned there)
    base_there = base * overlap(c.cpus, worst.cpus, n)
    excess = max(infl - 1.0, 1e-9)
    want = base_there * (config.target_inflation - 1.0) / excess
    cap = max(config.floor_cores, min(base, want + (base - base_there)))
    if cap >= base * 0.999:  # the replica itself is within the target (a P99 or served-level
        # trigger): no proportional cut, so one step down
        cap = max(config.floor_cores, base / config.raise_factor)
    why = (
        f"{worst.name} interference {infl:.2f} > {config.target_inflation} (served "
        f"{served_level(obs):.2f}): cap {base:.2f} x ({config.target_inflation} - 1) / "
        f"({infl:.2f} - 1) -> {cap:.2f} cores"
    )
    return [ThrottleCoRunner(why, c.name, round(cap, 4))]


def _pause(
    obs: Observation,
    c: CoRunnerView,
    worst: ReplicaView,
    state: EscalateState,
    config: EscalateConfig,
) -> tuple[list[Action], EscalateState]:
    recent = tuple(t for t in state.pauses.get(c.name, ()) if obs.t_s - t <= config.window_s)
    why = (
        f"capped at the floor {config.floor_cores} cores and {worst.name} still over the "
        f"objective for {config.pause_after} intervals"
    )
    if len(recent) >= config.evict_after_pauses:
        why += f"; {len(recent)} pauses in {config.window_s:.0f} s"
        return [EvictCoRunner(why, c.name)], state
    return [PauseCoRunner(why, c.name)], replace(
        state,
        pauses={**state.pauses, c.name: (*recent, obs.t_s)},
        paused_at={**state.paused_at, c.name: obs.t_s},
    )


def _relax(
    obs: Observation, state: EscalateState, config: EscalateConfig
) -> tuple[list[Action], EscalateState]:
    ready = [n for n, t in state.paused_at.items() if obs.t_s - t >= config.cooldown_s]
    if ready:
        what_if = _resumed_level(obs)
        if what_if < config.resume_below:
            name = min(ready, key=lambda k: state.paused_at[k])
            why = (
                f"cool-down {config.cooldown_s:.0f} s over and served inflation with it back "
                f"{what_if:.2f} < {config.resume_below}: resumed at the floor cap"
            )
            paused_at = {k: v for k, v in state.paused_at.items() if k != name}
            return [
                ThrottleCoRunner(why, name, config.floor_cores),
                ResumeCoRunner(why, name),
            ], replace(state, paused_at=paused_at, under=0)
    level = served_level(obs)
    if math.isnan(level) or level >= config.resume_below:
        return [], replace(state, under=0)
    under = state.under + 1
    capped = [c for c in obs.corunners if c.state == "running" and c.limit_cores is not None]
    if under < config.raise_after or not capped:
        return [], replace(state, under=under)
    c = min(capped, key=lambda x: x.limit_cores or 0.0)
    new = (c.limit_cores or config.floor_cores) * config.raise_factor
    why = f"served inflation {level:.2f} < {config.resume_below} for {under} intervals"
    cores = None if new >= config.uncap_at_cores else round(new, 4)
    return [ThrottleCoRunner(why, c.name, cores)], replace(state, under=0)


def _resumed_level(obs: Observation) -> float:
    """The served inflation with every paused co-runner back (predictor's what-if; the
    measured level without one)."""
    pairs = []
    for r in obs.replicas:
        x = r.interference_resumed()
        x = 1.0 if math.isnan(x) else x
        pairs.append((r.rate_per_s, x))
    total = sum(w for w, _ in pairs)
    if not pairs:
        return math.nan
    if total <= 0:
        return max(x for _, x in pairs)
    return sum(w * x for w, x in pairs) / total
