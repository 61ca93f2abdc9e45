"""The token-level engine: batched output equals one-at-a-time decoding, memory, streaming."""

from __future__ import annotations

import pytest
import torch
from tokenizers import Tokenizer

from offload.models.lm.backend import MoEBackend
from offload.models.lm.config import variant_config
from offload.models.lm.engine import (
    Engine,
    EngineConfig,
    EngineError,
    LMRequest,
    PromptTooLongError,
)
from offload.models.lm.model import MoELM
from offload.models.lm.scheduling import POLICIES, PolicyConfig
from offload.models.lm.tokenizer import train_bpe


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    text = ["the robot picks the red box", "a lidar sees the car", "operators ask robots"] * 5
    return train_bpe(text, vocab_size=300)


def backend(tiny, tokenizer, variant="mixsga") -> MoEBackend:
    from dataclasses import replace

    torch.manual_seed(0)
    cfg = replace(variant_config(variant, tiny), vocab_size=tokenizer.get_vocab_size())
    model = MoELM(cfg)
    for block in model.blocks:  # sharp attention routing: all three experts in use
        if block.attn.router is not None:
            block.attn.router.weight.data.mul_(30)
    return MoEBackend(model, tokenizer)


def requests(vocab: int, n: int, seed: int = 0) -> list[LMRequest]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        plen = int(torch.randint(1, 30, (1,), generator=g))
        prompt = torch.randint(1, vocab, (plen,), generator=g).tolist()
        max_tokens = int(torch.randint(1, 20, (1,), generator=g))
        out.append(LMRequest(f"r{i}", prompt, max_tokens, arrival_s=0.01 * i, ignore_eos=True))
    return out


def alone(be: MoEBackend, req: LMRequest) -> list[int]:
    """Greedy tokens of one request decoded by itself."""
    logits, cache = be.model.prefill(torch.tensor([req.prompt]), torch.tensor([req.prompt_len]))
    out = [int(logits.argmax())]
    while len(out) < req.max_tokens:
        out.append(int(be.model.decode(torch.tensor(out[-1:]), cache).argmax()))
    return out


def run(engine: Engine, reqs: list[LMRequest], dt: float = 0.01) -> dict[str, list]:
    streams: dict[str, list] = {r.request_id: [] for r in reqs}
    pending = sorted(reqs, key=lambda r: r.arrival_s)
    now = 0.0
    peak = 0
    while pending or not engine.idle:
        while pending and pending[0].arrival_s <= now:
            engine.submit(pending.pop(0))
        for ev in engine.step(now):
            streams[ev.request_id].append(ev)
        peak = max(peak, engine.reserved_bytes)
        assert engine.reserved_bytes <= engine.cfg.kv_budget_bytes
        now += dt
    streams["_peak"] = [peak]
    return streams


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("variant", ["mixsga", "mha"])
def test_batched_engine_output_equals_decoding_each_request_alone(tiny, tokenizer, policy, variant):
    be = backend(tiny, tokenizer, variant)
    reqs = requests(be.model.cfg.vocab_size, 8)
    budget = 3 * be.kv_bytes_for(be.max_seq_len)  # memory for about three long sequences
    cfg = EngineConfig(budget, policy, PolicyConfig(max_batch=4, max_queue_delay_s=0.02))
    streams = run(Engine(be, cfg), reqs)
    # Tolerance: none; greedy tokens are compared. Batched and single decoding differ by float
    # rounding only (see test_model), far below the logit gaps of a random model.
    for req in reqs:
        events = streams[req.request_id]
        assert [e.token for e in events] == alone(be, req)
        assert [e.index for e in events] == list(range(req.max_tokens))
        assert [e.finish for e in events] == [None] * (req.max_tokens - 1) + ["length"]
    assert streams["_peak"][0] > 0


def test_generation_stops_at_eos_unless_told_to_ignore_it(tiny, tokenizer):
    be = backend(tiny, tokenizer, "gqa")
    req = requests(be.model.cfg.vocab_size, 1)[0]
    first = alone(be, req)[0]
    be.eos_id = first  # pretend the first greedy token is EOS
    for ignore, expected in ((False, ["stop"]), (True, [None] * (req.max_tokens - 1) + ["length"])):
        engine = Engine(be, EngineConfig(10**7, "fifo"))
        engine.submit(LMRequest("x", req.prompt, req.max_tokens, 0.0, ignore_eos=ignore))
        events = []
        while not engine.idle:
            events += engine.step(0.0)
        assert [e.finish for e in events] == expected


@pytest.mark.parametrize(
    ("prompt_len", "max_tokens", "error", "match"),
    [
        (0, 5, EngineError, "empty"),
        (10, 0, EngineError, "max_tokens"),
        (60, 10, PromptTooLongError, "context of 64"),
    ],
)
def test_requests_that_can_never_run_are_rejected(
    tiny, tokenizer, prompt_len, max_tokens, error, match
):
    engine = Engine(backend(tiny, tokenizer), EngineConfig(10**7))
    with pytest.raises(error, match=match):
        engine.submit(LMRequest("x", [1] * prompt_len, max_tokens, 0.0))
    assert engine.idle


def test_a_sequence_larger_than_the_kv_budget_is_rejected(tiny, tokenizer):
    be = backend(tiny, tokenizer)
    engine = Engine(be, EngineConfig(be.kv_bytes_for(20)))
    engine.submit(LMRequest("fits", [1] * 10, 10, 0.0))
    with pytest.raises(PromptTooLongError, match="KV memory"):
        engine.submit(LMRequest("too-big", [1] * 10, 11, 0.0))


def test_abort_frees_the_request(tiny, tokenizer):
    """An abort drops its row between steps (a selection no concat follows): the other
    requests' tokens are those they get alone."""
    be = backend(tiny, tokenizer)
    engine = Engine(be, EngineConfig(10**7, "fifo"))
    prompts = {"a": [1, 2], "b": [3], "c": [4, 5]}
    reqs = [LMRequest(n, p, 10, 0.0, ignore_eos=True) for n, p in prompts.items()]
    for req in reqs:
        engine.submit(req)
    events = engine.step(0.0)
    assert engine.abort("b") and not engine.abort("b")
    while not engine.idle:
        events += engine.step(0.0)
    assert {e.request_id for e in events} == {"a", "b", "c"}
    for req in (reqs[0], reqs[2]):
        assert [e.token for e in events if e.request_id == req.request_id] == alone(be, req)
    assert [e.index for e in events if e.request_id == "b"] == [0], "b ends at the abort"
    assert engine.reserved_bytes == 0


def test_engine_brownout_switches_the_model(tiny, tokenizer):
    be = backend(tiny, tokenizer)
    engine = Engine(be, EngineConfig(10**7))
    engine.set_brownout(0.5)
    assert be.model.brownout_tau == 0.5
    engine.set_brownout(1.0)
    assert all(b.moe._united is None for b in be.model.blocks)
