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
none does); the arrival rate is the engine's count of arrivals over its last window. Default 0.7:
a single-server queue at utilisation rho waits rho / (1 - rho) service times on average (M/M/1),
and a TTFT objective of about four service times leaves three for waiting, rho <= 0.75; the
window also lags a burst's onset, which a bound below that absorbs (docs/lm.md, session 15:
chosen on burst seeds the benchmark's figures do not use).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cached_property
from itertools import chain
from typing import NamedTuple

import numpy as np

# Requests in the engine from which ``decide`` counts with numpy (``violations_per_level``)
# rather than one request at a time: the two give the same counts; numpy's fixed cost per call
# (~0.1 ms on the 2-vCPU VM of docs/lm.md) is repaid from about 40 requests (5 levels).
VECTOR_FROM = 40


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
    max_utilisation: float = 0.7  # rate rule: arrival rate / capacity allowed, (0, 1]

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

    @cached_property
    def cost_columns(self) -> np.ndarray:
        """[4, L, 1]: decode base, decode per sequence, prefill base per request (shared by the
        group) and prefill per token of each level, mildest first (``violations_per_level``)."""
        rows = [
            [c.decode_base_s, c.decode_per_seq_s, c.prefill_base_s / self.prefill_group,
             c.prefill_per_token_s]
            for c in self.costs
        ]  # fmt: skip
        return np.array(rows, dtype=np.float64).T[:, :, None]


class RunningView(NamedTuple):
    """A running sequence as the law sees it (a named tuple: the engine builds one per running
    sequence every step, at less than half a frozen dataclass's cost)."""

    generated: int  # tokens made so far (>= 1: the first comes with the prefill)
    max_tokens: int
    first_token_s: float  # engine clock
    tpot_slo_s: float


class WaitingView(NamedTuple):
    """A waiting request as the law sees it (a named tuple, as ``RunningView``)."""

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
    """Requests predicted to miss their SLO if the coming steps run at ``costs``' level (one
    request at a time; ``violations_per_level`` counts the same for every level at once)."""
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
    if len(obs.running) + len(obs.waiting) >= VECTOR_FROM:
        counts = violations_per_level(obs, cfg)
    else:
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


def violations_per_level(obs: SlackObservation, cfg: SlackLawConfig) -> dict[float, int]:
    """``predicted_violations`` at every level at once: the same arithmetic, operation for
    operation (so the same counts, bit for bit; a test compares them), on numpy arrays of levels
    x requests. The law runs before every engine step and its CPU time is the step's: with 32
    running and 50 / 150 waiting requests, 5 levels, this takes 0.15 / 0.18 ms, the loop 0.24 /
    0.44 ms; with few requests the loop is cheaper (``VECTOR_FROM``)."""
    base, per_seq, per_call, per_token = cfg.cost_columns  # [L, 1] each
    now, h = obs.now_s, cfg.headroom
    n_run, n_wait = len(obs.running), len(obs.waiting)

    def decode_s(batch: int) -> np.ndarray:  # [L, 1]
        return base + per_seq * batch if batch else np.zeros_like(base)

    step = decode_s(min(cfg.max_batch, n_run + n_wait))
    d_run = decode_s(n_run)
    late = np.zeros(base.shape[0], dtype=np.int64)  # [L]
    first_at = now + d_run  # [L, 1]: the admitted requests' prefills follow the running step
    free = max(0, cfg.max_batch - n_run)
    if n_wait:
        w = _table(obs.waiting)  # [N, 4]: prompt, max tokens, deadline, tpot
        w = w[np.argsort(w[:, 2], kind="stable")]  # TTFT-deadline order, as ``sorted``
        prompt, left = w[:, 0], w[:, 2] - now
        tpot_late = (w[:, 1] > 1) & (step > h * w[:, 3])  # [L, N]
        k = min(free, n_wait)
        chain_s = np.concatenate([first_at, per_call + per_token * prompt[:k]], axis=1)
        firsts = np.cumsum(chain_s, axis=1)  # sequential sums: ``first_at += ...``
        first_at = firsts[:, -1:]
        late += (_late_v(left[:k], firsts[:, 1:] - now, h) | tpot_late[:, :k]).sum(axis=1)
    stall = first_at - now - d_run  # [L, 1] the prefill work W of those admitted
    finishes = np.empty((base.shape[0], 0))
    if n_run:
        r = _table(obs.running)  # [R, 4]: generated, max tokens, first token, tpot
        tokens_left = np.maximum(0.0, r[:, 1] - r[:, 0])
        finishes = now + tokens_left * step + stall  # [L, R]
        deadline = r[:, 2] + r[:, 3] * np.maximum(1.0, r[:, 1] - 1)
        late += _late_v(deadline - now, finishes - now, h).sum(axis=1)
        finishes = np.sort(finishes, axis=1)
    if n_wait > free:
        q = n_wait - free
        start = np.full((base.shape[0], q), math.inf)
        m = min(q, finishes.shape[1])
        start[:, :m] = finishes[:, :m]
        first = start + per_call + per_token * prompt[free:]
        late += (_late_v(left[free:], first - now, h) | tpot_late[:, free:]).sum(axis=1)
    return {c.tau: int(n) for c, n in zip(cfg.costs, late, strict=True)}


def _table(views: tuple[RunningView, ...] | tuple[WaitingView, ...]) -> np.ndarray:
    """Views as rows of a float64 array (through one flat iterator: a third of the time of
    ``np.array`` on the tuples)."""
    flat = np.fromiter(chain.from_iterable(views), np.float64, 4 * len(views))
    return flat.reshape(len(views), 4)


def _late_v(left_s: np.ndarray, needed_s: np.ndarray, headroom: float) -> np.ndarray:
    """``_late`` elementwise (``left_s`` broadcast over the levels)."""
    return (left_s < 0.0) | (needed_s > headroom * left_s + 1e-12)


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
