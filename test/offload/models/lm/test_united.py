"""United-expert brownout: tau = 1 is the original bit for bit; the merge and its bookkeeping."""

from __future__ import annotations

import pytest
import torch

from offload.models.lm.config import variant_config
from offload.models.lm.model import MoELM
from offload.models.lm.moe import MoEFeedForward
from offload.models.lm.united import (
    BrownoutError,
    apply_brownout,
    calibrate_usage,
    merged_count,
    unite,
)


def trained_like(tiny, seed: int = 0) -> MoELM:
    torch.manual_seed(seed)
    model = MoELM(variant_config("mixsga", tiny)).eval()
    calibrate_usage(model, torch.randint(0, tiny.vocab_size, (4, 32)))
    return model


@pytest.mark.parametrize(
    ("tau", "experts", "merged"),
    [(1.0, 8, 0), (0.75, 8, 2), (0.5, 8, 4), (0.25, 8, 6), (0.0, 8, 8), (0.6, 4, 2), (0.9, 4, 0)],
)
def test_merged_count_is_the_share_one_minus_tau(tau, experts, merged):
    assert merged_count(tau, experts) == merged


@pytest.mark.parametrize("tau", [-0.1, 1.5])
def test_brownout_level_outside_0_1_is_rejected(tau):
    with pytest.raises(BrownoutError, match="out of bounds"):
        merged_count(tau, 8)


def test_tau_one_equals_the_original_model_exactly(tiny):
    model = trained_like(tiny)
    tokens = torch.randint(0, tiny.vocab_size, (2, 40), generator=torch.Generator().manual_seed(5))
    before, _ = model(tokens)
    model.set_brownout(0.25)
    browned, _ = model(tokens)
    model.set_brownout(1.0)
    after, _ = model(tokens)
    assert torch.equal(before, after), "tau = 1 must restore the original bit for bit"
    assert not torch.allclose(before, browned), "tau < 1 changes the experts"


def test_tau_one_decode_equals_the_original_decode_exactly(tiny):
    model = trained_like(tiny)
    tokens = torch.randint(0, tiny.vocab_size, (2, 12), generator=torch.Generator().manual_seed(6))
    lengths = torch.tensor([12, 12])
    first, cache = model.prefill(tokens, lengths)
    step = model.decode(tokens[:, 0], cache)
    model.set_brownout(0.0)
    model.set_brownout(1.0)
    first2, cache2 = model.prefill(tokens, lengths)
    assert torch.equal(first, first2) and torch.equal(step, model.decode(tokens[:, 0], cache2))


def test_least_used_experts_are_merged_first(tiny):
    model = trained_like(tiny)
    moe = model.blocks[0].moe
    moe.usage.copy_(torch.tensor([5.0, 1.0, 9.0, 2.0]))
    apply_brownout([moe], 0.5)  # 2 of 4 merged: experts 1 and 3
    assert moe._slot_of_expert.tolist() == [0, 4, 2, 4]


def test_aligned_merge_of_permuted_copies_recovers_the_expert(tiny):
    """Two experts that differ only by the order of their hidden units compute the same
    function; the aligned merge must return that function, the plain average need not."""
    moe = MoEFeedForward(variant_config("gqa", tiny))
    perm = torch.randperm(tiny.expert_hidden, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        moe.w_gate[1] = moe.w_gate[0][:, perm]
        moe.w_up[1] = moe.w_up[0][:, perm]
        moe.w_down[1] = moe.w_down[0][perm]
    x = torch.randn(10, tiny.d_model)

    def run(weights):
        gate, up, down = weights
        return (torch.nn.functional.silu(x @ gate) * (x @ up)) @ down

    with torch.no_grad():
        original = run((moe.w_gate[0], moe.w_up[0], moe.w_down[0]))
        aligned = run(unite(moe, [0, 1], "aligned"))
        average = run(unite(moe, [0, 1], "average"))
    assert torch.allclose(aligned, original, atol=1e-5)  # exact up to float32 rounding
    assert not torch.allclose(average, original, atol=1e-2)


def test_united_expert_serves_each_token_once(tiny):
    """At tau = 0 every token runs one expert call (the united one) with weight 1."""
    model = trained_like(tiny)
    moe = model.blocks[0].moe
    model.set_brownout(0.0)
    x = torch.randn(6, tiny.d_model)
    gate, up, down = moe._united
    with torch.no_grad():
        expected = (torch.nn.functional.silu(x @ gate) * (x @ up)) @ down
        y, _ = moe(x)
    assert torch.allclose(y, expected, atol=1e-6)  # top-k weights sum to 1 on one slot


@pytest.mark.parametrize("tau", [0.75, 0.5, 0.25, 0.0])
def test_united_forward_equals_the_per_token_reference(tiny, tau):
    """The batched dispatch (occupied slots only; at tau = 0 the dense united expert without
    the router) equals the per-token loop of the formulation at every level. Tolerance 1e-5:
    float32 sums in a different order; at tau = 0 the routed weights sum to 1 within 1 ulp."""
    model = trained_like(tiny)
    model.set_brownout(tau)
    x = torch.randn(12, tiny.d_model, generator=torch.Generator().manual_seed(8))
    for moe in (b.moe for b in model.blocks):
        with torch.no_grad():
            fast, _ = moe(x)
            moe.fast_united = False
            routed, _ = moe(x)
            moe.fast_united = True
            assert torch.allclose(fast, moe.reference(x), atol=1e-5)
            assert torch.allclose(fast, routed, atol=1e-6)
