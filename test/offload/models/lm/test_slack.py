"""The per-step slack brownout law: its choice on table-driven cases, its bounds, the engine hook.

Costs per level (made up, round numbers): decode(B) = a + b B, prefill = p0 / 4 + p1 P per
request. The expected levels are worked out by hand in each case's comment.
"""

from __future__ import annotations

import math
import random
from dataclasses import replace

import pytest
import torch

from offload.models.lm.slack import (
    RunningView,
    SlackLawConfig,
    SlackLawError,
    SlackObservation,
    SlackState,
    StepCosts,
    WaitingView,
    decide,
    predicted_violations,
    step_law,
    violations_per_level,
)

COSTS = (
    StepCosts(1.0, 0.010, 0.001, 0.004, 0.0001),  # decode(2) 12 ms; a 100-token prefill 11 ms
    StepCosts(0.5, 0.006, 0.0006, 0.0024, 0.00006),  # 0.6x
    StepCosts(0.0, 0.004, 0.0004, 0.0016, 0.00004),  # 0.4x
)


def run(generated=1, max_tokens=11, first=0.0, tpot=0.01) -> RunningView:
    return RunningView(generated, max_tokens, first, tpot)


def wait(prompt=100, max_tokens=1, deadline=0.05, tpot=1.0) -> WaitingView:
    return WaitingView(prompt, max_tokens, deadline, tpot)


CASES = [
    # nothing to serve: no brownout
    ("idle", (), (), 1.0, 32, {1.0: 0, 0.5: 0, 0.0: 0}),
    # 10 tokens left, deadline 0.1 s: 10 x 12 ms = 120 ms > 0.8 x 100; 0.5: 72 ms fits
    ("decode needs 0.5", (run(), run()), (), 0.8, 32, {1.0: 2, 0.5: 0, 0.0: 0}),
    # the same with a 1 s deadline: tau 1 fits
    ("light load", (run(tpot=0.1), run(tpot=0.1)), (), 0.8, 32, {1.0: 0, 0.5: 0, 0.0: 0}),
    # deadline already passed: late at every level, a backlog: drained at the fastest level
    ("doomed", (run(first=-1.0),), (), 0.8, 32, {1.0: 1, 0.5: 1, 0.0: 1}),
    # a backlog (one doomed) and a request 0.5 saves: 0.5 and 0 tie at 1 miss, 0 is faster
    ("backlog", (run(first=-1.0), run()), (), 0.8, 32, {1.0: 2, 0.5: 1, 0.0: 1}),
    # 110 ms against 115 ms: fits with headroom 1 ...
    ("headroom 1", (run(tpot=0.0115),), (), 1.0, 32, {1.0: 0, 0.5: 0, 0.0: 0}),
    # ... not with 0.8 (92 ms); 0.5 takes 66 ms
    ("headroom 0.8", (run(tpot=0.0115),), (), 0.8, 32, {1.0: 1, 0.5: 0, 0.0: 0}),
    # 8 prefills of 11 / 6.6 / 4.4 ms against 40 ms: 3, 6, 8 make it; only tau 0 serves all
    ("queue needs 0", (), (wait(),) * 8, 0.8, 32, {1.0: 5, 0.5: 2, 0.0: 0}),
    # no free slot: the waiting request starts when the running one finishes (2 x 11 ms) and
    # its first token at 24 ms > 16 ms; at 0.5: 13.2 + 1.2 = 14.4 ms fits
    ("queued", (run(max_tokens=3, tpot=1.0),), (wait(10, deadline=0.02),), 0.8, 1,
     {1.0: 1, 0.5: 0, 0.0: 0}),
    # a waiting request whose decode step (12 ms at B = 2) exceeds 0.8 x its 10 ms TPOT
    ("waiting TPOT", (run(tpot=1.0),), (wait(10, 5, deadline=1.0, tpot=0.01),), 0.8, 32,
     {1.0: 1, 0.5: 0, 0.0: 0}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("running", "waiting", "headroom", "max_batch", "counts"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_slack_law_picks_the_level_with_fewest_predicted_violations(
    running, waiting, headroom, max_batch, counts
):
    cfg = SlackLawConfig(COSTS, headroom=headroom, max_batch=max_batch)
    decision, state = decide(SlackObservation(0.0, running, waiting), SlackState(), cfg)
    assert decision.predicted_violations == counts
    fewest = min(counts.values())
    tied = [t for t, n in counts.items() if n == fewest]
    # no backlog: the mildest of the tied levels; a backlog: the fastest (here the lowest tau)
    expected = max(tied) if fewest == 0 else min(tied)
    assert decision.tau == state.tau == expected


def _random_observation(rng: random.Random, n_run: int, n_wait: int) -> SlackObservation:
    """Running and waiting requests around now = 1 s: some deadlines already past, some
    objectives infinite, ties in deadlines, finished rows (no tokens left)."""
    deadlines = [rng.choice([0.5, 1.02, 1.05, math.inf]) for _ in range(3)]

    def deadline() -> float:
        return rng.choice(deadlines) if rng.random() < 0.3 else rng.uniform(0.9, 1.3)

    running = tuple(
        RunningView(g, g + rng.randint(0, 40), rng.uniform(0.0, 1.0),
                    rng.choice([0.004, 0.01, 0.03, math.inf]))
        for g in (rng.randint(1, 60) for _ in range(n_run))
    )  # fmt: skip
    waiting = tuple(
        WaitingView(rng.randint(1, 240), rng.randint(1, 64), deadline(),
                    rng.choice([0.004, 0.01, 0.03, math.inf]))
        for _ in range(n_wait)
    )  # fmt: skip
    return SlackObservation(1.0, running, waiting)


@pytest.mark.parametrize("max_batch", [1, 8, 32])
def test_vectorised_counts_equal_the_reference_loop(max_batch):
    """``violations_per_level`` (numpy, all levels at once) gives exactly the counts of
    ``predicted_violations`` (one level, one request at a time) at every level, with free slots
    and without, queued requests beyond the running ones, empty sides."""
    rng = random.Random(max_batch)
    many = tuple(
        StepCosts(t, rng.uniform(0, 0.02), rng.uniform(0, 0.002), rng.uniform(0, 0.01),
                  rng.uniform(0, 1e-4))
        for t in (1.0, 0.75, 0.5, 0.25, 0.0)
    )  # fmt: skip
    differ = 0  # cases where the levels' counts differ (the choice depends on them)
    for costs in (COSTS, many):
        for headroom in (0.8, 1.0):
            cfg = SlackLawConfig(costs, headroom=headroom, max_batch=max_batch)
            for n_run, n_wait in [(0, 0), (0, 5), (3, 0), (1, 1), (8, 30), (32, 150), (40, 3)]:
                obs = _random_observation(rng, n_run, n_wait)
                reference = {c.tau: predicted_violations(obs, c, cfg) for c in cfg.costs}
                assert violations_per_level(obs, cfg) == reference
                assert decide(obs, SlackState(), cfg)[0].predicted_violations == reference
                differ += len(set(reference.values())) > 1
    assert differ >= 5


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"costs": ()}, "at least one level"),
        ({"costs": (COSTS[0], COSTS[0])}, "distinct"),
        ({"costs": COSTS, "headroom": 0.0}, "headroom"),
        ({"costs": COSTS, "headroom": 1.5}, "headroom"),
        ({"costs": COSTS, "max_batch": 0}, "max_batch"),
    ],
)
def test_slack_law_settings_out_of_bounds_are_rejected(kwargs, match):
    with pytest.raises(SlackLawError, match=match):
        SlackLawConfig(**kwargs)


@pytest.mark.parametrize(
    ("tau", "costs", "match"), [(1.5, (0, 0, 0, 0), "tau"), (1.0, (0, -1, 0, 0), "per_seq")]
)
def test_step_costs_out_of_bounds_are_rejected(tau, costs, match):
    with pytest.raises(SlackLawError, match=match):
        StepCosts(tau, *costs)


def test_engine_applies_the_per_step_level_and_counts_tokens_per_level(tiny):
    """The engine calls its level law before every step and serves that step at its level."""
    from offload.models.lm.backend import MoEBackend
    from offload.models.lm.config import variant_config
    from offload.models.lm.engine import Engine, EngineConfig, LMRequest
    from offload.models.lm.model import MoELM
    from offload.models.lm.tokenizer import train_bpe

    tok = train_bpe(["the robot picks the red box", "a lidar sees the car"] * 5, vocab_size=300)
    torch.manual_seed(0)
    cfg = replace(variant_config("mixsga", tiny), vocab_size=tok.get_vocab_size())
    be = MoEBackend(MoELM(cfg), tok)
    seen = []

    def law(obs: SlackObservation) -> float:
        seen.append(obs)
        return 0.5 if len(seen) % 2 else 1.0  # alternate levels

    engine = Engine(be, EngineConfig(10**9), level_law=law)
    lengths = [(3, 4), (7, 2), (5, 6), (2, 1), (9, 3)]  # (prompt, max_tokens)
    for i, (plen, n) in enumerate(lengths):
        engine.submit(LMRequest(f"r{i}", [5] * plen, n, 0.0, ignore_eos=True, tpot_slo_s=0.1))
    levels, made = [], 0
    while not engine.idle:
        made += len(engine.step(0.0))
        levels.append(be.model.brownout_tau)
    assert levels == [0.5 if i % 2 == 0 else 1.0 for i in range(len(levels))]
    assert len(seen[0].waiting) == 5 and not seen[0].running
    assert seen[1].running[0].tpot_slo_s == 0.1 and seen[1].running[0].generated == 1
    assert sum(engine.tokens_at_level.values()) == made == sum(n for _, n in lengths)
    assert set(engine.tokens_at_level) == {0.5, 1.0}


def test_step_law_keeps_its_state_between_calls():
    law = step_law(SlackLawConfig(COSTS))
    busy = SlackObservation(0.0, (run(), run()), ())
    assert law(busy) == 0.5
    assert law(SlackObservation(0.0, (), ())) == 1.0


CAPS = tuple(
    replace(c, capacity_rps=cap) for c, cap in zip(COSTS, (100.0, 100.0, 120.0), strict=True)
)


@pytest.mark.parametrize(
    ("costs", "rate", "expected"),
    [
        (CAPS, 50.0, 1.0),  # utilisation 0.5 at tau 1
        (CAPS, 90.0, 1.0),  # exactly 0.9
        (CAPS, 95.0, 0.0),  # 0.95 at 1 and 0.5 (no faster), 0.79 at 0
        (CAPS, 200.0, 0.0),  # none keeps up: the level of largest capacity
        (COSTS, 200.0, 1.0),  # capacities unknown: the rate rule is off
    ],
)
def test_rate_rule_bounds_the_level_by_utilisation(costs, rate, expected):
    """With an empty engine the slack count says tau 1; the rate rule alone sets the level."""
    cfg = SlackLawConfig(costs, max_utilisation=0.9)
    decision, _ = decide(SlackObservation(0.0, (), (), rate), SlackState(), cfg)
    assert decision.rate_tau == decision.tau == expected


def test_rate_rule_never_raises_the_slack_level():
    cfg = SlackLawConfig(CAPS)
    busy = SlackObservation(0.0, (run(), run()), (), 10.0)  # slack count: 0.5; rate: 1
    decision, _ = decide(busy, SlackState(), cfg)
    assert (decision.tau, decision.rate_tau) == (0.5, 1.0)


def test_engine_reports_the_arrival_rate_over_its_window(tiny):
    from offload.models.lm.backend import MoEBackend
    from offload.models.lm.config import variant_config
    from offload.models.lm.engine import Engine, EngineConfig, LMRequest
    from offload.models.lm.model import MoELM
    from offload.models.lm.tokenizer import train_bpe

    tok = train_bpe(["the robot picks the red box", "a lidar sees the car"] * 5, vocab_size=300)
    cfg = replace(variant_config("mixsga", tiny), vocab_size=tok.get_vocab_size())
    engine = Engine(MoEBackend(MoELM(cfg), tok), EngineConfig(10**9), rate_window_s=0.5)
    for i, t in enumerate([0.0, 0.1, 0.2, 0.6, 0.65]):
        engine.submit(LMRequest(f"r{i}", [5, 6], 2, t))
    # window (0.25, 0.75]: the arrivals at 0.6 and 0.65
    assert engine.observe(0.75).arrival_rate_per_s == pytest.approx(2 / 0.5)
