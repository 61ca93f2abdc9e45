"""The decode-protecting prefill guard: the rule case by case, its settings, and in the engine
(prefills held back only while TTFT slack allows; the tokens made are unchanged)."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from offload.models.lm.prefill_guard import (
    PrefillGuard,
    PrefillGuardConfig,
    PrefillGuardError,
    defers,
    prefill_s,
)
from offload.models.lm.slack import RunningView, StepCosts, WaitingView

# decode step D(B) = 10 ms whatever B, prefill W = 20 ms + 1 ms per padded token
COSTS = StepCosts(1.0, 0.010, 0.0, 0.020, 0.001)


def running(tpot: float = 0.04, generated: int = 1, max_tokens: int = 3, first: float = 0.0):
    return RunningView(generated, max_tokens, first, tpot)


def waiting(deadline: float = 1.0, prompt: int = 10) -> WaitingView:
    return WaitingView(prompt, 4, deadline, math.inf)


# A running sequence with 2 tokens left, last-token deadline 0 + 0.04 x 2 = 80 ms: 30 ms
# without the prefill (this step's decode + 2 steps), 60 ms with a 10-token prompt's W = 30 ms,
# 90 ms with a 40-token prompt's W = 60 ms (or with S = 30 ms already admitted this step).
@pytest.mark.parametrize(
    ("runs", "group", "stalled", "expected", "why"),
    [
        ((), (waiting(),), 0.0, False, "nothing running: prefill now"),
        ((running(),), (waiting(),), 0.0, False, "meets its deadline with the prefill too"),
        ((running(),), (waiting(prompt=40),), 0.0, True, "W = 60 ms: it would miss at 90 ms"),
        ((running(),), (waiting(),), 0.030, True, "S + W = 60 ms: it would miss at 90 ms"),
        ((running(tpot=0.01),), (waiting(prompt=40),), 0.0, False, "misses anyway (30 > 20 ms)"),
        ((running(tpot=math.inf),), (waiting(prompt=40),), 0.0, False, "no TPOT objective"),
        ((running(),), (waiting(0.05, prompt=40),), 0.0, False, "TTFT slack spent: admit"),
        ((running(), running(tpot=0.01)), (waiting(prompt=40),), 0.0, True, "one to protect"),
        ((running(generated=3),), (waiting(prompt=70),), 0.0, True, "its last token: 10 + 90"),
        ((running(generated=3),), (waiting(prompt=40),), 0.0, False, "last token at 10 + 60"),
        ((running(),), (waiting(), waiting(prompt=40)), 0.0, True, "padded to the longest"),
    ],
)
def test_the_guard_defers_only_to_save_a_running_sequence_that_can_be_saved(
    runs, group, stalled, expected, why
):
    assert defers(0.0, runs, group, stalled, COSTS, margin_steps=1.0) is expected, why


@pytest.mark.parametrize(("margin", "expected"), [(0.0, True), (4.0, True), (5.0, False)])
def test_the_margin_is_the_ttft_slack_a_deferred_request_keeps(margin, expected):
    # W = 60 ms; waiting a step needs this step's decode + W + (1 + margin) x 10 ms of TTFT
    # slack: 10 + 60 + 50 = 120 <= 129 ms at margin 4, 130 > 129 ms at margin 5
    member = waiting(0.129, prompt=40)
    assert defers(0.0, (running(),), (member,), 0.0, COSTS, margin) is expected


def test_prefill_time_is_the_padded_group():
    assert prefill_s(COSTS, (waiting(prompt=3), waiting(prompt=7))) == pytest.approx(0.034)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"costs": ()}, "at least one"),
        ({"costs": (COSTS, COSTS)}, "distinct"),
        ({"costs": (COSTS,), "margin_steps": -1.0}, "margin_steps"),
        ({"costs": (COSTS,), "margin_steps": 101.0}, "margin_steps"),
        ({"costs": (COSTS,), "margin_steps": math.nan}, "margin_steps"),
    ],
)
def test_guard_settings_out_of_bounds_are_rejected(kwargs, match):
    with pytest.raises(PrefillGuardError, match=match):
        PrefillGuardConfig(**kwargs)


def test_the_guard_uses_the_costs_of_the_nearest_calibrated_level():
    cheap = replace(COSTS, tau=0.0, prefill_base_s=0.0)
    cfg = PrefillGuardConfig((COSTS, cheap))
    assert cfg.costs_at(0.2) is cheap and cfg.costs_at(0.9) is COSTS
    assert cfg.costs_at(0.5) is COSTS  # a tie goes to the milder level
    guard = PrefillGuard(cfg)
    # at tau 0 the prefill costs 40 ms (no base): 10 + 40 + 20 = 70 <= 80 ms, nothing to save
    assert guard.defers(0.0, 1.0, (running(),), (waiting(prompt=40),), 0.0)
    assert not guard.defers(0.0, 0.0, (running(),), (waiting(prompt=40),), 0.0)


def _engine(tiny, guard: PrefillGuard | None):
    from offload.models.lm.backend import MoEBackend
    from offload.models.lm.config import variant_config
    from offload.models.lm.engine import Engine, EngineConfig
    from offload.models.lm.model import MoELM
    from offload.models.lm.tokenizer import train_bpe

    tok = train_bpe(["the robot picks the red box", "a lidar sees the car"] * 5, vocab_size=300)
    torch.manual_seed(0)
    cfg = replace(variant_config("mixsga", tiny), vocab_size=tok.get_vocab_size())
    # FIFO admission: every waiting request is proposed at once (the bucket policy may itself
    # let a small group wait to fill)
    return Engine(MoEBackend(MoELM(cfg), tok), EngineConfig(10**9, "fifo"), prefill_guard=guard)


def _request(name: str, prompt: int, n: int, arrival: float, ttft: float, tpot: float = 0.04):
    from offload.models.lm.engine import LMRequest

    return LMRequest(name, [5] * prompt, n, arrival, ttft, ignore_eos=True, tpot_slo_s=tpot)


def test_engine_holds_a_prefill_back_while_a_short_request_finishes(tiny):
    """Clock of 10 ms per step (as the costs say); r0 (3 tokens, 80 ms for its last) is running
    when r1 (a 40-token prompt, W = 60 ms) arrives with 1 s of TTFT slack: r1 waits until r0
    is done, then starts; r2 arriving with no slack to spare starts at once."""
    engine = _engine(tiny, PrefillGuard(PrefillGuardConfig((COSTS,))))
    engine.submit(_request("r0", 4, 3, 0.0, 1.0))
    engine.step(0.0)  # r0 prefilled: first token
    engine.submit(_request("r1", 40, 2, 0.01, 1.0))
    started: dict[str, float] = {}
    now = 0.01
    while not engine.idle:
        for ev in engine.step(now):
            if ev.index == 0:
                started[ev.request_id] = now
        now += 0.01
    # held back at 0.01 (r0 decoding) and at 0.02 (r0's last token, delivered after the step)
    assert started["r1"] == pytest.approx(0.03)
    assert engine.deferred_groups == 2
    engine.submit(_request("r0b", 4, 3, now, 1.0))
    engine.step(now)
    engine.submit(_request("r2", 40, 2, now, 0.05))  # 50 ms: cannot afford to wait a step
    events = engine.step(now + 0.01)
    assert any(ev.request_id == "r2" and ev.index == 0 for ev in events)
    assert engine.deferred_groups == 2


def test_the_guard_changes_when_tokens_come_not_which(tiny):
    """Greedy tokens per request are the same with and without the guard (it only reorders
    admissions), and it did hold groups back on this arrival pattern."""
    reqs = [(f"r{i}", 3 + 7 * (i % 5), 1 + i % 4, 0.005 * i, 0.2) for i in range(12)]

    def serve(guard):
        engine = _engine(tiny, guard)
        pending = [_request(*r) for r in reqs]
        out: dict[str, list[int]] = {r[0]: [] for r in reqs}
        now = 0.0
        while pending or not engine.idle:
            while pending and pending[0].arrival_s <= now:
                engine.submit(pending.pop(0))
            for ev in engine.step(now):
                out[ev.request_id].append(ev.token)
            now += 0.01
        return out, engine.deferred_groups

    plain, none = serve(None)
    guarded, deferred = serve(PrefillGuard(PrefillGuardConfig((COSTS,))))
    assert guarded == plain and none == 0 and deferred > 0
