"""mixSGA routing: expert choice (no token dropped, capacities), the causal KV guard, one-hot."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from offload.models.lm.config import LMConfigError, capacity_fractions
from offload.models.lm.routing import (
    KV_SLACK_TOKENS,
    causal_route,
    causal_route_step,
    expert_capacities,
    expert_choice,
    onehot_loss,
    route_limit,
    straight_through,
)

GROUPS = (1, 2, 4)
COSTS = tuple(1.0 / g for g in GROUPS)


@pytest.mark.parametrize(
    ("groups", "budget", "expected"),
    [
        ((1, 2, 4), 0.5, (3 / 14, 5 / 14, 6 / 14)),  # least squares from 1/3 each, solved by hand
        ((1, 2, 4), 0.25, (0.0, 0.0, 1.0)),  # the lowest budget forces every token coarse
        ((1, 2, 4), 1.0, (1.0, 0.0, 0.0)),
        ((1,), 1.0, (1.0,)),
    ],
)
def test_capacity_fractions_meet_the_budget(groups, budget, expected):
    fractions = capacity_fractions(groups, budget)
    assert fractions == pytest.approx(expected, abs=1e-9)
    assert sum(f / g for f, g in zip(fractions, groups, strict=True)) == pytest.approx(budget)


@settings(max_examples=60, deadline=None)
@given(
    batch=st.integers(1, 3),
    seq=st.integers(1, 40),
    budget=st.floats(0.25, 1.0),
    seed=st.integers(0, 2**16),
)
def test_expert_choice_assigns_every_token_once_within_capacity(batch, seq, budget, seed):
    fractions = capacity_fractions(GROUPS, budget)
    probs = torch.softmax(
        torch.randn(batch, seq, 3, generator=torch.Generator().manual_seed(seed)), -1
    )
    assigned = expert_choice(probs, fractions)
    assert assigned.shape == (batch, seq)
    assert bool(((assigned >= 0) & (assigned < 3)).all()), "no token dropped"
    caps = expert_capacities(fractions, seq)
    for e, cap in enumerate(caps):
        counts = (assigned == e).sum(dim=1)
        assert bool((counts == cap).all())
    # KV spent never exceeds the budget: the finer experts take floor() of their share.
    kv = sum(caps[e] * COSTS[e] for e in range(3))
    assert kv <= budget * seq + 1e-9


def test_expert_choice_gives_fine_kv_to_the_tokens_that_rate_it_highest():
    probs = torch.tensor([[[0.9, 0.05, 0.05], [0.1, 0.1, 0.8], [0.6, 0.3, 0.1], [0.2, 0.7, 0.1]]])
    # T=4 at shares (0.5, 0.25, 0.25): the two highest p[0] go fine, then the best p[1].
    assigned = expert_choice(probs, (0.5, 0.25, 0.25))
    assert assigned.tolist() == [[0, 2, 0, 1]]


@settings(max_examples=60, deadline=None)
@given(seq=st.integers(1, 60), budget=st.floats(0.25, 1.0), seed=st.integers(0, 2**16))
def test_causal_guard_bounds_kv_at_every_prefix(seq, budget, seed):
    probs = torch.softmax(
        3 * torch.randn(2, seq, 3, generator=torch.Generator().manual_seed(seed)), -1
    )
    zeros = torch.zeros(2, dtype=torch.float64), torch.zeros(2, dtype=torch.long)
    chosen, used, count = causal_route(probs, COSTS, budget, *zeros)
    spent = torch.tensor(COSTS, dtype=torch.float64)[chosen].cumsum(dim=1)  # [2, T]
    limit = budget * torch.arange(1, seq + 1, dtype=torch.float64) + KV_SLACK_TOKENS * COSTS[0]
    assert bool((spent <= limit + 1e-9).all())
    assert torch.allclose(used, spent[:, -1]) and count.tolist() == [seq, seq]


def test_causal_route_is_argmax_when_the_budget_allows():
    probs = torch.softmax(torch.randn(3, 20, 3), -1)
    zeros = torch.zeros(3, dtype=torch.float64), torch.zeros(3, dtype=torch.long)
    chosen, _, _ = causal_route(probs, COSTS, 1.0, *zeros)  # budget 1 = all finest allowed
    assert torch.equal(chosen, probs.argmax(-1))


def test_causal_route_continues_from_a_cache_state():
    """Routing a sequence in two calls (prefill, then decode) equals routing it in one."""
    probs = torch.softmax(2 * torch.randn(2, 30, 3), -1)
    zeros = torch.zeros(2, dtype=torch.float64), torch.zeros(2, dtype=torch.long)
    whole, _, _ = causal_route(probs, COSTS, 0.5, *zeros)
    first, used, count = causal_route(probs[:, :17], COSTS, 0.5, *zeros)
    rest = [first]
    for t in range(17, 30):
        step, used, count = causal_route(probs[:, t : t + 1], COSTS, 0.5, used, count)
        rest.append(step)
    assert torch.equal(torch.cat(rest, dim=1), whole)


@settings(max_examples=60, deadline=None)
@given(
    budget=st.sampled_from([0.25, 0.4, 0.5, 0.75, 1.0]),
    sharpness=st.floats(0.5, 8.0),
    steps=st.integers(1, 40),
    seed=st.integers(0, 2**16),
)
def test_decode_route_step_equals_the_general_guard(budget, sharpness, steps, seed):
    """The decode step's torch guard makes the same choices and spends the same KV as
    ``causal_route`` called one token at a time, from any cache state it reaches."""
    gen = torch.Generator().manual_seed(seed)
    probs = torch.softmax(sharpness * torch.randn(5, steps, 3, generator=gen), -1)
    used = torch.rand(5, generator=gen, dtype=torch.float64)  # rows start mid-sequence
    count = torch.randint(0, 30, (5,), generator=gen)
    used_step, costs = used.clone(), torch.tensor(COSTS, dtype=torch.float64)
    for t in range(steps):
        want, used, count_next = causal_route(probs[:, t : t + 1], COSTS, budget, used, count)
        got, used_step = causal_route_step(
            probs[:, t], costs, used_step, route_limit(count, budget, COSTS)
        )
        assert torch.equal(got, want[:, 0]) and torch.equal(used_step, used)
        count = count_next


def test_onehot_loss_is_zero_only_for_one_hot_routing():
    assigned = torch.tensor([[0, 2, 1]])
    one_hot = torch.nn.functional.one_hot(assigned, 3).double()
    assert float(onehot_loss(one_hot, assigned)) == pytest.approx(0.0, abs=1e-8)
    uniform = torch.full((1, 3, 3), 1 / 3, dtype=torch.float64)
    assert float(onehot_loss(uniform, assigned)) == pytest.approx(math.log(3))


def test_straight_through_is_one_hot_forward_and_passes_gradient():
    logits = torch.randn(1, 4, 3, requires_grad=True)
    probs = torch.softmax(logits, -1)
    assigned = torch.tensor([[0, 1, 2, 0]])
    weights = straight_through(assigned, probs)
    assert torch.equal(weights.detach(), torch.nn.functional.one_hot(assigned, 3).float())
    (weights * torch.arange(3.0)).sum().backward()
    assert logits.grad is not None and float(logits.grad.abs().sum()) > 0


def test_kv_budget_outside_the_experts_range_is_rejected(tiny):
    from dataclasses import replace

    with pytest.raises(LMConfigError, match="kv_budget"):
        replace(tiny, attn_group_sizes=(1, 2, 4), kv_budget=0.2)
