"""The model: KV-cache decode equals full recomputation, MoE equals its reference, KV bytes."""

from __future__ import annotations

import pytest
import torch

from offload.models.lm.cache import KVCache
from offload.models.lm.config import VARIANTS, variant_config
from offload.models.lm.model import ModelError, MoELM
from offload.models.lm.routing import KV_SLACK_TOKENS
from offload.models.lm.slots import SlotLayout, SlotLayoutError

# float32 logits of a 2-layer model computed along two summation orders (SDPA over the whole
# sequence vs per-expert segments with a joint softmax): observed differences are ~1e-6.
ATOL = 1e-4


def build(tiny, variant: str, seed: int = 0) -> MoELM:
    torch.manual_seed(seed)
    model = MoELM(variant_config(variant, tiny)).eval()
    # A sharper random router than the initial one, so all three attention experts get used.
    for block in model.blocks:
        if block.attn.router is not None:
            block.attn.router.weight.data.mul_(30)
    return model


@pytest.mark.parametrize("variant", VARIANTS)
def test_prefill_then_decode_equals_full_recomputation(tiny, variant):
    model = build(tiny, variant)
    tokens = torch.randint(0, tiny.vocab_size, (3, 40), generator=torch.Generator().manual_seed(1))
    full, aux = model(tokens, routing="causal")
    lengths = torch.tensor([5, 17, 1])
    prompt = tokens[:, : int(lengths.max())].clone()
    last, cache = model.prefill(prompt, lengths)
    assert torch.allclose(last, full[torch.arange(3), lengths - 1], atol=ATOL)
    pos = lengths.clone()
    for _ in range(20):
        logits = model.decode(tokens[torch.arange(3), pos], cache)
        assert torch.allclose(logits, full[torch.arange(3), pos], atol=ATOL)
        pos += 1
    if variant == "mixsga":  # the random router really mixes experts in this test
        assert aux["assigned"].unique().numel() == 3


@pytest.mark.parametrize("variant", VARIANTS)
def test_cache_rows_survive_select_and_concat(tiny, variant):
    """Continuous batching moves rows between caches; decoding must not notice."""
    model = build(tiny, variant)
    tokens = torch.randint(0, tiny.vocab_size, (3, 30), generator=torch.Generator().manual_seed(2))
    full, _ = model(tokens, routing="causal")
    _, a = model.prefill(tokens[:2, :8], torch.tensor([8, 8]))
    _, b = model.prefill(tokens[2:, :12], torch.tensor([12]))
    joined = KVCache.concat([a.select([1]), b, a.select([0])])  # rows 1, 2, 0
    rows = torch.tensor([1, 2, 0])
    pos = torch.tensor([8, 12, 8])
    for _ in range(6):
        logits = model.decode(tokens[rows, pos], joined)
        assert torch.allclose(logits, full[rows, pos], atol=ATOL)
        pos += 1


@pytest.mark.parametrize("variant", VARIANTS)
def test_cache_stores_each_token_at_its_experts_kv_size(tiny, variant):
    model = build(tiny, variant)
    cfg = model.cfg
    tokens = torch.randint(0, tiny.vocab_size, (2, 48), generator=torch.Generator().manual_seed(3))
    _, cache = model.prefill(tokens, torch.tensor([48, 48]))
    mha_bytes = 2 * cfg.n_layers * cfg.n_heads * cfg.head_dim * 4 * 48  # float32 K and V
    stored = cache.stored_bytes().double() / mha_bytes  # [B] relative to MHA
    slack = KV_SLACK_TOKENS / 48 if cfg.n_attn_experts > 1 else 0.0
    assert bool((stored <= cfg.kv_budget + slack + 1e-9).all())
    if cfg.n_attn_experts == 1:
        assert torch.allclose(stored, torch.full((2,), cfg.kv_budget, dtype=torch.float64))
    total = sum(int(c.sum()) for layer in cache.counts for c in layer)
    assert total == 2 * 48 * cfg.n_layers, "no token dropped from the cache"


# The fast step differs from the reference only in summation order: one stacked projection
# matmul instead of four, and up to one more masked (zero-weight) slot per expert in the joint
# softmax. Observed differences on these logits (size ~1) are below 1e-6; 1e-5 is float32
# rounding (6e-8 per operation) over a 2-layer model with margin.
FAST_ATOL = 1e-5


@pytest.mark.parametrize("variant", VARIANTS)
def test_fast_decode_equals_the_reference_step_on_a_ragged_batch(tiny, variant):
    """``decode`` (fixed op count per layer) gives the reference step's logits, routing and cache
    counts on prompts of different lengths, also after rows leave and join."""
    model = build(tiny, variant)
    gen = torch.Generator().manual_seed(5)
    tokens = torch.randint(0, tiny.vocab_size, (4, 40), generator=gen)
    lengths = torch.tensor([3, 11, 1, 7])
    _, fast = model.prefill(tokens[:, :11], lengths)
    ref = fast.select(range(4))  # an independent copy with the same contents
    rows, pos = torch.arange(4), lengths.clone()  # each cache row reads tokens[rows, pos]
    for step in range(14):
        if step == 6:  # row 1 leaves; a new 5-token prompt (tokens[2, 20:25]) joins
            _, joined = model.prefill(tokens[2:3, 20:25], torch.tensor([5]))
            fast = KVCache.concat([fast.select([0, 2, 3]), joined])
            ref = KVCache.concat([ref.select([0, 2, 3]), joined.select([0])])
            rows, pos = torch.tensor([0, 2, 3, 2]), torch.cat([pos[[0, 2, 3]], torch.tensor([25])])
        nxt = tokens[rows, pos]
        got = model.decode(nxt, fast)
        want = model.decode_reference(nxt, ref)
        assert torch.allclose(got, want, atol=FAST_ATOL), (got - want).abs().max()
        assert torch.equal(fast.counts, ref.counts), "same expert for every token"
        assert torch.equal(fast.slots, ref.slots)
        assert torch.equal(fast.kv_used, ref.kv_used) and torch.equal(fast.lengths, ref.lengths)
        pos += 1
    if variant == "mixsga":
        used = (fast.counts > 0).flatten(0, 1).any(dim=1)  # [layer x expert]
        assert bool(used.all()), "every attention expert holds tokens in this test"


def test_consuming_gather_moves_rows_in_place_and_decodes_the_same(tiny):
    """The engine's gather (rows compacted in place, joins written into spare rows) gives the
    same caches and logits as copying select and concat, over rows leaving and joining."""
    model = build(tiny, "mixsga")
    gen = torch.Generator().manual_seed(6)
    tokens = torch.randint(0, tiny.vocab_size, (16, 64), generator=gen)

    def prompt(i: int) -> KVCache:
        return model.prefill(tokens[i : i + 1, : 3 + i], torch.tensor([3 + i]))[1]

    live = KVCache.gather([(prompt(0), None), (prompt(1), None)], consume=True)
    copy = KVCache.concat([prompt(0), prompt(1)])
    ids, in_place = [0, 1], 0
    for step in range(24):
        leave = [i for i in range(len(ids)) if (ids[i] + step) % 5 != 0] if step % 3 == 2 else None
        parts = [(live, None if leave is None else torch.tensor(leave, dtype=torch.long))]
        copies = [copy if leave is None else copy.select(leave)]
        ids = ids if leave is None else [ids[i] for i in leave]
        if step % 4 == 1:  # a prompt joins
            j = 2 + step // 4
            parts.append((prompt(j), None))
            copies.append(prompt(j))
            ids.append(j)
        base = live.keys[0].data_ptr()
        live = KVCache.gather(parts, consume=True)
        copy = KVCache.concat(copies)
        in_place += live.keys[0].data_ptr() == base
        nxt = tokens[ids, 40 + step]
        assert torch.equal(model.decode(nxt, live), model.decode(nxt, copy))  # same arithmetic
        assert torch.equal(live.counts, copy.counts) and torch.equal(live.slots, copy.slots)
        for layer in range(tiny.n_layers):
            n = int(copy.slots[layer].max())
            pad = (torch.arange(n) >= copy.slots[layer][:, None])[:, None, :, None]  # [B,1,n,1]
            for name in ("keys", "values"):
                got = getattr(live, name)[layer][:, :, :n].masked_fill(pad, 0)
                want = getattr(copy, name)[layer][:, :, :n].masked_fill(pad, 0)
                assert torch.equal(got, want), name
            assert torch.equal(live.masked[layer][:, :, :n], copy.masked[layer][:, :, :n])
    assert in_place >= 12, "most steps reuse the running batch's buffers"


def test_moe_forward_equals_the_reference_loop(tiny):
    model = build(tiny, "gqa")
    moe = model.blocks[0].moe
    x = torch.randn(25, tiny.d_model, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        y, _ = moe(x)
        # Same products, summed in another order: float32 rounding of values of size ~1.
        assert torch.allclose(y, moe.reference(x), atol=1e-5)


def test_balance_loss_is_one_for_uniform_routing(tiny):
    model = build(tiny, "gqa")
    moe = model.blocks[0].moe
    moe.router.weight.data.zero_()  # equal probabilities; topk picks experts 0, 1
    _, balance = moe(torch.randn(8, tiny.d_model))
    # f = (1/2, 1/2, 0, 0), P = 1/4 each: E * sum f P = 4 * 1/4 = 1.
    assert float(balance) == pytest.approx(1.0)


def test_training_loss_backpropagates_into_both_routers(tiny):
    model = build(tiny, "mixsga").train()
    loss, parts = model.loss(torch.randint(0, tiny.vocab_size, (2, 33)))
    loss.backward()
    attn_router = model.blocks[0].attn.router.weight.grad
    moe_router = model.blocks[0].moe.router.weight.grad
    assert attn_router is not None and float(attn_router.abs().sum()) > 0
    assert moe_router is not None and float(moe_router.abs().sum()) > 0
    assert set(parts) == {"ce", "balance", "onehot"}


@pytest.mark.parametrize(
    ("tokens", "match"),
    [
        (torch.tensor([[1, 2, 64]]), "token ids"),
        (torch.tensor([[-1, 2]]), "token ids"),
        (torch.zeros(1, 65, dtype=torch.long), "max_seq_len"),
    ],
)
def test_bad_tokens_get_a_clear_error(tiny, tokens, match):
    with pytest.raises(ModelError, match=match):
        build(tiny, "mha")(tokens)


@pytest.mark.parametrize("variant", VARIANTS)
def test_prefill_path_without_autograd_equals_the_mixing_path(tiny, variant):
    """Prefill and evaluation (no autograd) select each token's pooled heads and store keys and
    values pooled together; with autograd the one-hot mix of ``_mix`` runs: the same logits
    and routing on a right-padded batch."""
    model = build(tiny, variant)
    gen = torch.Generator().manual_seed(6)
    tokens = torch.randint(0, tiny.vocab_size, (3, 33), generator=gen)
    lengths = torch.tensor([33, 20, 7])
    fast, fast_aux = model(tokens, routing="causal", lengths=lengths)  # grad enabled here
    with torch.no_grad():
        slow, slow_aux = model(tokens, routing="causal", lengths=lengths)
    valid = torch.arange(33)[None, :] < lengths[:, None]
    assert torch.allclose(fast[valid], slow[valid], atol=FAST_ATOL)
    if variant == "mixsga":
        # padded positions skip the feed-forward without autograd: compare the valid ones
        assert torch.equal(fast_aux["assigned"][:, valid], slow_aux["assigned"][:, valid])
        assert fast_aux["assigned"][:, valid].unique().numel() == 3


def test_decode_block_store_keeps_what_the_prefill_store_keeps():
    """A decode step's fixed block of slots (``append_step``) leaves every row's valid slots,
    codes and counts as the prefill store (``append_tokens``) of the same token does, after
    tokens already cached; the spare slots of the block lie past the valid ones."""
    gen = torch.Generator().manual_seed(7)
    layout = SlotLayout(n_heads=8, heads=(8, 4, 2), head_dim=4)
    caches = [KVCache.empty(5, 1, layout, capacity=1) for _ in range(2)]
    for step in range(6):
        assigned = torch.randint(0, 3, (5,), generator=gen)
        assigned[step % 5] = 0  # the widest expert too, whatever the draw
        stacked = torch.randn(5, sum(layout.heads), 8, generator=gen)
        per_expert = stacked.split(layout.heads, dim=1)  # [B, he, 2 dh] each
        caches[0].append_step(0, stacked, assigned)
        caches[1].append_tokens(0, [p[:, None] for p in per_expert], assigned[:, None])
    step_cache, ref = caches
    assert torch.equal(step_cache.slots, ref.slots) and torch.equal(step_cache.counts, ref.counts)
    for name in ("keys", "values"):
        for row in range(5):
            n = int(ref.slots[0, row])
            got, want = getattr(step_cache, name)[0], getattr(ref, name)[0]
            assert torch.equal(got[row, :, :n], want[row, :, :n])
    width = step_cache.keys[0].shape[2]
    assert torch.equal(step_cache.masked[0], ref.masked[0][..., :width]), "spare slots masked"
    assert torch.equal(step_cache.stored_bytes(), ref.stored_bytes())


@pytest.mark.parametrize(("heads", "lanes"), [((8, 4, 2), 2), ((8,), 8), ((4,), 4), ((4, 2), 2)])
def test_every_query_head_reads_one_slot_of_each_token(heads, lanes):
    """The slot masks implement GQA within each expert: query head h reads pooled head h // G
    of every token, in its own lane; a decode block's spare positions are read by no head."""
    layout = SlotLayout(n_heads=8, heads=heads, head_dim=4)
    assert layout.lanes == lanes
    lane = layout.lane_of_head()
    for e, he in enumerate(layout.heads):
        offset = sum(heads[:e])
        reads = ~layout.masked_of(e)  # [H, w] positions of h's lane that h reads
        assert torch.equal(reads.sum(dim=1), torch.ones(8, dtype=torch.long))
        for h in range(8):
            w = int(reads[h].nonzero()[0])
            assert int(layout.block_rows[e, lane[h], w]) - offset == h // (8 // he)
        assert bool(layout.block_masked[e, :, layout.widths[e] :].all())
    with pytest.raises(SlotLayoutError, match="divide"):
        SlotLayout(n_heads=8, heads=(3,), head_dim=4)
