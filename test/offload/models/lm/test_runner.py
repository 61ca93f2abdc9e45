"""The engine on its worker thread: async streams, aborts, graceful stop, the brownout hook."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
import torch

from offload.models.lm.backend import MoEBackend
from offload.models.lm.config import variant_config
from offload.models.lm.engine import Engine, EngineConfig, LMRequest
from offload.models.lm.model import MoELM
from offload.models.lm.runner import EngineRunner, Finished
from offload.models.lm.tokenizer import train_bpe


@pytest.fixture(scope="module")
def backend(tiny_module) -> MoEBackend:
    tok = train_bpe(["the robot picks the red box", "a lidar sees the car"] * 5, vocab_size=300)
    torch.manual_seed(0)
    model = MoELM(replace(variant_config("mixsga", tiny_module), vocab_size=300))
    return MoEBackend(model, tok)


@pytest.fixture(scope="module")
def tiny_module():
    from offload.models.lm.config import LMConfig

    return LMConfig(vocab_size=300, max_seq_len=64, d_model=32, n_layers=2, n_heads=4,
                    n_experts=4, top_k=2, expert_hidden=16)  # fmt: skip


def collect(runner: EngineRunner, reqs: list[LMRequest]) -> dict[str, list]:
    async def main() -> dict[str, list]:
        streams = {r.request_id: runner.submit(r) for r in reqs}
        out: dict[str, list] = {}
        for rid, stream in streams.items():
            events = []
            while True:
                ev = await asyncio.wait_for(stream.get(), timeout=60)
                events.append(ev)
                if ev.finish is not None:
                    break
            out[rid] = events
        return out

    return asyncio.run(main())


def test_streams_carry_every_token_then_the_finish(backend):
    runner = EngineRunner(Engine(backend, EngineConfig(10**7)))
    runner.start()
    try:
        reqs = [
            LMRequest(f"r{i}", [5 + i, 6, 7], 4 + i, runner.now, ignore_eos=True) for i in range(3)
        ]
        got = collect(runner, reqs)
    finally:
        runner.stop()
    for i, r in enumerate(reqs):
        assert [e.index for e in got[r.request_id]] == list(range(4 + i))
        assert got[r.request_id][-1].finish == "length"


def test_brownout_law_sees_finished_requests_and_sets_the_level(backend):
    seen: list[list[Finished]] = []

    def law(done: list[Finished]) -> float | None:
        seen.append(done)
        return 0.5 if done else None

    runner = EngineRunner(Engine(backend, EngineConfig(10**7)), law=law, control_period_s=0.0)
    runner.start()
    try:
        collect(runner, [LMRequest("a", [5, 6], 3, runner.now, ignore_eos=True)])
        collect(runner, [LMRequest("b", [5, 6], 3, runner.now, ignore_eos=True)])
    finally:
        runner.stop()
    done = [f for batch in seen for f in batch]
    assert done and all(f.ttft_s >= 0 and f.tpot_s >= 0 for f in done)
    assert runner.engine.brownout_tau == 0.5
    backend.set_brownout(1.0)


def test_stop_without_drain_aborts_the_running_requests(backend):
    runner = EngineRunner(Engine(backend, EngineConfig(10**7)))
    req = LMRequest("long", [5, 6], 50, 0.0, ignore_eos=True)

    async def main() -> list:
        stream = runner.submit(req)
        runner.start()
        first = await asyncio.wait_for(stream.get(), timeout=60)
        await asyncio.get_running_loop().run_in_executor(None, lambda: runner.stop(drain=False))
        events = [first]
        while events[-1].finish is None:
            events.append(await asyncio.wait_for(stream.get(), timeout=60))
        return events

    events = asyncio.run(main())
    assert events[-1].finish == "abort" and len(events) < 50
    assert runner.engine.idle
