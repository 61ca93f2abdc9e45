"""The language model behind the real HTTP service: the ``openai`` client on loopback (streamed
and whole completions, the model list), malformed requests (400), over-long prompts (413), auth,
and the service's brownout law setting the united-expert level."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import replace

import openai
import pytest
import torch

from offload.models.lm.checkpoint import save_model
from offload.models.lm.config import LMConfig, variant_config
from offload.models.lm.model import MoELM
from offload.models.lm.tokenizer import train_bpe
from offload.serving.brownout import BrownoutConfig
from offload.serving.config import ServeConfig
from offload.serving.model import ModelError
from offload.serving.models.lm import LMModel, expert_level_law
from offload.serving.server import ReplicaThread

TOKEN = "lm-test-token"
TINY = LMConfig(vocab_size=300, max_seq_len=64, d_model=32, n_layers=2, n_heads=4, n_experts=4,
                top_k=2, expert_hidden=16)  # fmt: skip


@pytest.fixture(scope="module")
def replica(tmp_path_factory):
    torch.set_num_threads(1)
    tok = train_bpe(["the robot picks the red box", "a lidar sees the car"] * 5, vocab_size=300)
    torch.manual_seed(0)
    model = MoELM(replace(variant_config("mixsga", TINY), vocab_size=300))
    folder = tmp_path_factory.mktemp("lm")  # what `robomr serve --lm-model FILE` loads
    save_model(model, folder / "m.safetensors")
    tok.save(str(folder / "tokenizer.json"))
    served = LMModel.from_options(model_path=str(folder / "m.safetensors"), kv_budget_mb=1.0)
    config = ServeConfig(models=("lm",), brownout_period_s=0.2)
    with ReplicaThread(config, TOKEN, {"lm": served}) as rt:
        rt.wait_ready()
        yield rt


@pytest.fixture
def client(replica) -> openai.OpenAI:
    return openai.OpenAI(base_url=replica.url + "/v1", api_key=TOKEN, max_retries=0, timeout=60)


def test_openai_client_streams_a_completion(client):
    chunks = list(
        client.completions.create(
            model="lm", prompt="the robot", max_tokens=6, temperature=0, stream=True,
            extra_body={"ignore_eos": True},
        )
    )  # fmt: skip
    assert chunks[-1].choices[0].finish_reason == "length"
    assert all(c.object == "text_completion" for c in chunks)
    whole = client.completions.create(
        model="lm", prompt="the robot", max_tokens=6, temperature=0, extra_body={"ignore_eos": True}
    )
    # greedy decoding: the streamed deltas join to exactly the non-streamed text
    assert "".join(c.choices[0].text for c in chunks) == whole.choices[0].text
    assert whole.usage.completion_tokens == 6
    assert whole.usage.prompt_tokens >= 1


def test_openai_client_lists_the_model(client):
    assert [m.id for m in client.models.list()] == ["lm"]


def post(replica, body: bytes, token: str | None = TOKEN) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(replica.url + "/v1/completions", body, headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


@pytest.mark.parametrize(
    ("body", "code", "param"),
    [
        (b"{not json", 400, None),
        (b"[1, 2]", 400, None),
        (json.dumps({"prompt": "hi"}).encode(), 400, "model"),
        (json.dumps({"model": "lm", "prompt": ""}).encode(), 400, "prompt"),
        (json.dumps({"model": "lm", "prompt": "hi", "max_tokens": 0}).encode(), 400, "max_tokens"),
        (json.dumps({"model": "lm", "prompt": "hi", "n": 2}).encode(), 400, "n"),
        (json.dumps({"model": "lm", "prompt": [5, 999]}).encode(), 400, "prompt"),
        (json.dumps({"model": "gpt-4", "prompt": "hi"}).encode(), 404, "model"),
        # 60 prompt tokens + 10 > the 64-token context: refused, never truncated
        (json.dumps({"model": "lm", "prompt": [5] * 60, "max_tokens": 10}).encode(), 413, "prompt"),
    ],
)
def test_bad_requests_get_an_openai_error(replica, body, code, param):
    status, answer = post(replica, body)
    assert status == code
    assert answer["error"]["param"] == param and answer["error"]["message"]


def test_completions_need_the_token(replica):
    status, answer = post(replica, json.dumps({"model": "lm", "prompt": "hi"}).encode(), None)
    assert status == 401 and answer["error"]["type"] == "authentication_error"


@pytest.mark.parametrize(
    ("normalized", "levels"),
    [
        # P90 above the SLO (1): tau x 0.8 per period, applied rounded to whole experts (of 4)
        ([[2.0], [2.0], [2.0]], [0.75, 0.75, 0.5]),
        # well below (< 0.8): back up by 0.1 per period, capped at 1
        ([[2.0], [0.1], [0.1]], [0.75, 1.0, 1.0]),
        # in the dead band, or no request: hold
        ([[0.9], []], [1.0, 1.0]),
    ],
)
def test_expert_level_follows_the_serving_law(normalized, levels):
    law = expert_level_law(BrownoutConfig(slo_s=1.0), n_experts=4)
    assert [law(x) for x in normalized] == levels


def test_the_service_picks_the_level_per_engine_step_by_default(replica, client):
    """``--brownout-law slack`` (the default): the engine runs the per-step slack law (its step
    costs measured at start-up) instead of the paper's periodic law, and counts the tokens it
    made at each level."""
    served = replica.replica.engines["lm"]
    engine = served.runner.engine
    assert engine.level_law is not None and served.runner._law is None
    before = sum(engine.tokens_at_level.values())
    client.completions.create(
        model="lm", prompt="the robot", max_tokens=4, extra_body={"ignore_eos": True}
    )
    assert sum(engine.tokens_at_level.values()) - before == 4
    assert set(engine.tokens_at_level) <= {1.0, 0.75, 0.5, 0.25, 0.0}


def test_the_service_admits_through_the_prefill_guard_by_default(replica):
    """The engine's prefill guard runs on the step costs measured at start-up (every level the
    slack law chooses from); ``--lm-no-prefill-guard`` turns it off."""
    served = replica.replica.engines["lm"]
    guard = served.runner.engine.prefill_guard
    assert guard is not None
    assert sorted(c.tau for c in guard.cfg.costs) == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert all(c.prefill_base_s + c.prefill_per_token_s > 0 for c in guard.cfg.costs)


def test_the_prefill_guard_can_be_turned_off(replica):
    import argparse

    from offload.serving.cli import add_arguments, config_from_args

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--models", "lm", "--lm-no-prefill-guard"])
    assert config_from_args(args).model_options["lm"]["prefill_guard"] is False
    args = parser.parse_args(["--models", "lm"])
    assert config_from_args(args).model_options["lm"]["prefill_guard"] is True
    backend = replica.replica.engines["lm"].backend
    assert not LMModel(backend, prefill_guard=False)._guarded()
    assert LMModel(backend)._guarded()


def test_missing_weights_are_a_model_error(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        LMModel.from_options(model_path=str(tmp_path / "none.safetensors"))
