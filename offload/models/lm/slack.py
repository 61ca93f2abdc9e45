"""Per-step slack brownout law for the token-level engine (ours; BrownoutServe's dial is the
reference, ``offload.serving.brownout``).

The serving issue found that BrownoutServe's periodic P90 law lags a burst by its period, and
made a per-request slack law its default (``offload.serving.scheduler``). This is that law for
a token-level engine, where a level applies to a whole engine step (every running sequence and
every prefill of the step use the same experts). Before each step the engine's waiting and
running requests are projected forward at every brownout level with that level's measured
costs (``StepCosts``), and the law picks the mildest level with the fewest predicted SLO
violations: no brownout while the load is light, and the level the queue needs the moment a
burst arrives.

Prediction at a level with decode step ``D(B) = a + b B`` (B sequences) and prefill
``q(P) = p0 / G + p1 P`` per request of P prompt tokens (G: requests per prefill group):

* ``B = min(max_batch, running + waiting)`` sequences decode in each coming step, ``s = D(B)``.
* The waiting requests, in TTFT-deadline order, fill the free batch slots; the prefill work of
  those admitted is ``W = sum q(P_j)``. The i-th of them has its first token at
  ``now + D(running) + sum_{j <= i} q(P_j)``; one that finds no free slot starts when the
  (i - free)-th running request finishes.
* A running request with k tokens still to make finishes at ``now + k s + W`` (every prefill
  admitted meanwhile stalls it).
* A request meets its SLO when the predicted time left to its deadline is within ``headroom`` of
  the time it has left: TTFT deadline ``arrival + TTFT SLO``; the last token's deadline
  ``first token + TPOT SLO x (max_tokens - 1)``; and a waiting request's decode needs
  ``s <= headroom x TPOT SLO``. The headroom keeps a margin for arrivals the law cannot see yet.

Choice: the fewest predicted misses; among levels that tie, the mildest while nobody is late
whatever the level (no backlog), and the fastest (cheapest decode step at this batch) once some
request misses at every level: it cannot be saved, but every request behind it waits for it,
so the backlog is drained as fast as the levels allow and the requests after it are the ones
still saved.

Rate rule (feed-forward, for what the slack cannot see yet): the count above only looks at the
requests already in the engine, so a burst's backlog must exist before it reacts, and a backlog
that forms while the queue drains only slightly faster than it fills never clears within the
objective. Where each level's capacity is known (``StepCosts.capacity_rps``: requests per second
it sustains on this workload, measured), the level is also at most the mildest whose
utilisation ``arrival rate / capacity`` stays within ``max_utilisation`` (the cheapest level when
none does); the arrival rate is the engine's count of arrivals over its last window.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace


class SlackLawError(ValueError):
    """A slack-law setting or cost table is out of bounds."""


@dataclass(frozen=True)
class StepCosts:
    """Measured engine costs at one brownout level (seconds; ``stepcost.measure_step_costs``)."""

    tau: float  # brownout level in [0, 1]
    decode_base_s: float  # decode step of B sequences: base + per_seq x B
    decode_per_seq_s: float
    prefill_base_s: float  # one prefill call of P padded tokens: base + per_token x P
    prefill_per_token_s: float
    capacity_rps: float = math.inf  # requests/s this level sustains (measured); inf: unknown

    def __post_init__(self) -> None:
        if not 0.0 <= self.tau <= 1.0:
            raise SlackLawError(f"tau={self.tau} is out of bounds [0, 1]")
        names = ("decode_base_s", "decode_per_seq_s", "prefill_base_s", "prefill_per_token_s")
        for name in (*names, "capacity_rps"):
            if not getattr(self, name) >= 0.0:
                raise SlackLawError(f"{name}={getattr(self, name)} must be >= 0")

    def decode_s(self, batch: int) -> float:
        return self.decode_base_s + self.decode_per_seq_s * batch if batch else 0.0


@dataclass(frozen=True)
class SlackLawConfig:
    """Settings of the per-step slack law."""

    costs: tuple[StepCosts, ...]  # one per selectable level (any order), at least one
    headroom: float = 0.8  # share of its remaining time a request's prediction may use, (0, 1]
    max_batch: int = 32  # sequences the engine runs at once (its policy's), >= 1
    prefill_group: int = 4  # requests per prefill call the base cost is shared by, >= 1
    max_utilisation: float = 0.9  # rate rule: arrival rate / capacity allowed, (0, 1]

    def __post_init__(self) -> None:
        if not self.costs:
            raise SlackLawError("the slack law needs the costs of at least one level")
        taus = [c.tau for c in self.costs]
        if len(set(taus)) != len(taus):
            raise SlackLawError(f"levels {taus} must be distinct")
        if not 0.0 < self.headroom <= 1.0:
            raise SlackLawError(f"headroom={self.headroom} is out of bounds (0, 1]")
        if not 0.0 < self.max_utilisation <= 1.0:
            raise SlackLawError(f"max_utilisation={self.max_utilisation} is out of bounds (0, 1]")
        if self.max_batch < 1 or self.prefill_group < 1:
            raise SlackLawError("max_batch and prefill_group must be >= 1")
        object.__setattr__(self, "costs", tuple(sorted(self.costs, key=lambda c: -c.tau)))


@dataclass(frozen=True)
class RunningView:
    """A running sequence as the law sees it."""

    generated: int  # tokens made so far (>= 1: the first comes with the prefill)
    max_tokens: int
    first_token_s: float  # engine clock
    tpot_slo_s: float


@dataclass(frozen=True)
class WaitingView:
    """A waiting request as the law sees it."""

    prompt_len: int
    max_tokens: int
    ttft_deadline_s: float  # arrival + TTFT objective
    tpot_slo_s: float


@dataclass(frozen=True)
class SlackObservation:
    now_s: float
    running: tuple[RunningView, ...]
    waiting: tuple[WaitingView, ...]
    arrival_rate_per_s: float = 0.0  # arrivals over the engine's last window / its length


@dataclass(frozen=True)
class SlackState:
    tau: float = 1.0


@dataclass(frozen=True)
class SlackDecision:
    tau: float
    predicted_violations: dict[float, int]  # per level
    rate_tau: float = 1.0  # the rate rule's bound on the level (1: no bound)


def _late(left_s: float, needed_s: float, headroom: float) -> bool:
    """A prediction ``needed_s`` misses a deadline ``left_s`` away (with headroom)."""
    return left_s < 0.0 or needed_s > headroom * left_s + 1e-12


def predicted_violations(obs: SlackObservation, costs: StepCosts, cfg: SlackLawConfig) -> int:
    """Requests predicted to miss their SLO if the coming steps run at ``costs``' level."""
    now, h = obs.now_s, cfg.headroom
    n_run = len(obs.running)
    batch = min(cfg.max_batch, n_run + len(obs.waiting))
    step = costs.decode_s(batch)
    free = max(0, cfg.max_batch - n_run)
    waiting = sorted(obs.waiting, key=lambda w: w.ttft_deadline_s)
    admitted, queued = waiting[:free], waiting[free:]
    per_call = costs.prefill_base_s / cfg.prefill_group
    late = 0
    first_at = now + costs.decode_s(n_run)
    for w in admitted:
        first_at += per_call + costs.prefill_per_token_s * w.prompt_len
        late += _late(w.ttft_deadline_s - now, first_at - now, h) or (
            w.max_tokens > 1 and step > h * w.tpot_slo_s
        )
    stall = first_at - now - costs.decode_s(n_run)  # the prefill work W of those admitted
    finishes = []
    for r in obs.running:
        left = max(0, r.max_tokens - r.generated)
        finish = now + left * step + stall
        finishes.append(finish)
        deadline = r.first_token_s + r.tpot_slo_s * max(1, r.max_tokens - 1)
        late += _late(deadline - now, finish - now, h)
    finishes.sort()
    for i, w in enumerate(queued):
        start = finishes[i] if i < len(finishes) else math.inf
        first = start + per_call + costs.prefill_per_token_s * w.prompt_len
        late += _late(w.ttft_deadline_s - now, first - now, h) or (
            w.max_tokens > 1 and step > h * w.tpot_slo_s
        )
    return late


def decide(
    obs: SlackObservation, state: SlackState, cfg: SlackLawConfig
) -> tuple[SlackDecision, SlackState]:
    """The level of the next engine step (the module docstring's choice), at most the rate
    rule's level."""
    counts = {c.tau: predicted_violations(obs, c, cfg) for c in cfg.costs}
    fewest = min(counts.values())
    tied = [c for c in cfg.costs if counts[c.tau] == fewest]  # costs: mildest first
    if fewest == 0:
        tau = tied[0].tau
    else:  # a backlog: drain it at the fastest of the tied levels
        batch = min(cfg.max_batch, len(obs.running) + len(obs.waiting))
        tau = min(tied, key=lambda c: (c.decode_s(max(batch, 1)), -c.tau)).tau
    rate_tau = rate_level(obs.arrival_rate_per_s, cfg)
    tau = min(tau, rate_tau)
    return SlackDecision(tau, counts, rate_tau), replace(state, tau=tau)


def rate_level(rate_per_s: float, cfg: SlackLawConfig) -> float:
    """The mildest level whose utilisation stays within ``max_utilisation`` (the level of
    largest capacity if none does); 1 when the capacities are unknown."""
    if all(math.isinf(c.capacity_rps) for c in cfg.costs):
        return 1.0
    for c in cfg.costs:  # mildest first
        if rate_per_s <= cfg.max_utilisation * c.capacity_rps:
            return c.tau
    return max(cfg.costs, key=lambda c: c.capacity_rps).tau


def step_law(cfg: SlackLawConfig) -> Callable[[SlackObservation], float]:
    """``decide`` as the engine's per-step ``level_law`` (the law's state kept inside)."""
    state = [SlackState()]

    def law(obs: SlackObservation) -> float:
        decision, state[0] = decide(obs, state[0], cfg)
        return decision.tau

    return law
