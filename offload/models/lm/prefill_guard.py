"""Decode-protecting admission for the token-level engine: defer a prefill that would make a
running sequence miss its time-per-output-token objective while the waiting requests can
still afford to wait (ours).

Why: every prefill in an engine step stalls the decode of every running sequence by the
prefill's time. Under bursts most SLO violations left at the cheapest brownout level are TPOT
misses of short requests (a few output tokens, so one long prefill step dominates their mean
time per token) while their own TTFT had slack to spare (docs/lm.md, session 13). Requests
state their objectives, so the engine can trade one for the other: hold a prefill back for a
step or two while a running sequence finishes within its objective, as long as the requests
held back still meet theirs.

Rule, with the step costs of the level in effect (``StepCosts``: decode ``D(B) = a + b B``,
prefill of P padded tokens ``W = p0 + p1 P``). At admission the step's decode has run; the
groups the admission policy chose are checked in order, ``S`` the prefill time of those already
admitted this step. A group is deferred (left waiting, re-proposed next step) iff

1. some sequence decoded this step (with nothing to protect, prefilling now is never worse);
2. every member can afford one more step: ``deadline - now >= D(B0) + S + W + (1 + m) D(B)``
   (``B0`` the batch that decoded this step, ``B`` the one decoding next, ``m`` the margin
   in decode steps, ``margin_steps``), i.e. its first token after waiting one step lands at
   least ``m`` steps before its TTFT deadline;
3. the prefill would make a sequence of this step's batch miss the deadline of its last token
   (``first token + TPOT SLO x (max_tokens - 1)``, as the slack law counts it) that it meets if
   the step prefills nothing (the groups admitted before this one included):
   ``now + D(B0) + k D(B) <= deadline < now + D(B0) + S + W + k D(B + |G|)``, with
   k tokens still to make; k = 0 for one that made its last token in this step (the step's
   tokens reach the clients when the step, its prefills included, is over).

A sequence that misses either way is not protected (deferring would not save it), and a group
whose TTFT slack is spent is admitted whatever it costs the running ones, so nothing waits past
its own objective for another's. Requests without a TPOT objective (``inf``) are never
protected. Deferral keeps the policy's order and memory accounting: a deferred group only
leaves slots and KV memory free for the groups after it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from offload.models.lm.slack import RunningView, StepCosts, WaitingView


class PrefillGuardError(ValueError):
    """A guard setting or cost table is out of bounds."""


@dataclass(frozen=True)
class PrefillGuardConfig:
    """Settings of the decode-protecting admission."""

    costs: tuple[StepCosts, ...]  # measured step costs, one per brownout level, at least one
    margin_steps: float = 1.0  # decode steps of TTFT slack a deferred request keeps, [0, 100]

    def __post_init__(self) -> None:
        if not self.costs:
            raise PrefillGuardError("the prefill guard needs the step costs of at least one level")
        if len({c.tau for c in self.costs}) != len(self.costs):
            raise PrefillGuardError(f"levels {[c.tau for c in self.costs]} must be distinct")
        if not 0.0 <= self.margin_steps <= 100.0:
            raise PrefillGuardError(f"margin_steps={self.margin_steps} is out of bounds [0, 100]")

    def costs_at(self, tau: float) -> StepCosts:
        """The costs of the calibrated level nearest ``tau`` (the milder one on a tie)."""
        return min(self.costs, key=lambda c: (abs(c.tau - tau), -c.tau))


def prefill_s(costs: StepCosts, group: Sequence[WaitingView]) -> float:
    """Predicted time of one prefill call of ``group`` (padded to its longest prompt)."""
    padded = max(w.prompt_len for w in group) * len(group)
    return costs.prefill_base_s + costs.prefill_per_token_s * padded


def defers(
    now_s: float,
    running: Sequence[RunningView],
    group: Sequence[WaitingView],
    stalled_s: float,
    costs: StepCosts,
    margin_steps: float,
) -> bool:
    """True if ``group`` should wait a step (the module docstring's rule); ``stalled_s`` is
    the prefill time already admitted in this step (S)."""
    if not running or not group:
        return False
    done_s = costs.decode_s(len(running))  # this step's decode, already run (B0)
    n = max(1, sum(r.max_tokens > r.generated for r in running))  # decoding next (B)
    step = costs.decode_s(n)
    work = prefill_s(costs, group)
    wait_s = done_s + stalled_s + work + (1.0 + margin_steps) * step
    if any(w.ttft_deadline_s - now_s < wait_s for w in group):
        return False
    step_with = costs.decode_s(n + len(group))
    for r in running:
        if math.isinf(r.tpot_slo_s):
            continue
        left = max(0, r.max_tokens - r.generated)
        deadline = r.first_token_s + r.tpot_slo_s * max(1, r.max_tokens - 1)
        without = now_s + done_s + left * step
        with_prefill = now_s + done_s + stalled_s + work + left * step_with
        if without <= deadline < with_prefill:
            return True
    return False


class PrefillGuard:
    """``defers`` at the level in effect, as the engine's ``prefill_guard``."""

    def __init__(self, cfg: PrefillGuardConfig) -> None:
        self.cfg = cfg

    def defers(
        self,
        now_s: float,
        tau: float,
        running: Sequence[RunningView],
        group: Sequence[WaitingView],
        stalled_s: float,
    ) -> bool:
        costs = self.cfg.costs_at(tau)
        return defers(now_s, running, group, stalled_s, costs, self.cfg.margin_steps)

    def prefill_s(self, tau: float, group: Sequence[WaitingView]) -> float:
        """Predicted prefill time of ``group`` at level ``tau`` (what it adds to S)."""
        return prefill_s(self.cfg.costs_at(tau), group)
