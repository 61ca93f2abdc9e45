"""Training: the one-hot routing loss does its job; the recipe writes weights with provenance."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from offload.models.lm.checkpoint import CheckpointError, load_model, sha256_file
from offload.models.lm.config import variant_config
from offload.models.lm.evaluate import evaluate
from offload.models.lm.model import MoELM
from offload.models.lm.recipe import train_runs
from offload.models.lm.train import TrainConfig, TrainError, lr_at, train

# The test files are collected with importlib: load the fake-corpus helper by path.
_spec = __import__("importlib.util").util.spec_from_file_location(
    "lm_test_corpus", Path(__file__).with_name("test_corpus.py")
)
_corpus = __import__("importlib.util").util.module_from_spec(_spec)
_spec.loader.exec_module(_corpus)


def phrase_stream(n_phrases: int = 3000, seed: int = 0) -> np.ndarray:
    """Tokens from 40 fixed random phrases: structure a tiny model learns in a few steps."""
    rng = np.random.default_rng(seed)
    phrases = [rng.integers(1, 64, rng.integers(3, 8)) for _ in range(40)]
    return np.concatenate([phrases[i] for i in rng.integers(0, 40, n_phrases)]).astype(np.int32)


def test_router_becomes_one_hot_and_agrees_with_expert_choice(tiny):
    stream = phrase_stream()
    cfg = variant_config("mixsga", tiny)
    torch.manual_seed(0)
    before = evaluate(MoELM(cfg), stream[-4000:], seq_len=32)
    recipe = TrainConfig(
        steps=150, batch_size=8, seq_len=32, warmup_steps=10, eval_every=150, eval_tokens=2048
    )
    model, history = train(cfg, recipe, stream[:-4000], stream[-4000:])
    after = evaluate(model, stream[-4000:], seq_len=32)
    # Measured with this seed: one-hot mass 0.47 -> 0.81, agreement 0.67 -> 0.88, ppl 64 -> 22.
    assert after.onehot_mass > 0.75 > before.onehot_mass
    assert after.agreement > 0.8 > before.agreement
    assert after.ppl < before.ppl / 2
    assert history["onehot"][-1] < history["onehot"][0]
    # Inference routing keeps the budget (0.5 of MHA) within the guard's slack.
    assert after.kv_relative < 0.5 + 0.05


@pytest.mark.parametrize(("step", "expected"), [(0, 0.1), (9, 1.0), (10, 1.0), (110, 0.1)])
def test_learning_rate_warms_up_then_decays_to_a_tenth(step, expected):
    cfg = TrainConfig(steps=110, warmup_steps=10, learning_rate=1.0)
    assert lr_at(step, cfg) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("field", "value"), [("steps", 0), ("learning_rate", 0.0), ("warmup_steps", 5000)]
)
def test_training_settings_out_of_bounds_are_rejected(field, value):
    with pytest.raises(TrainError, match=field):
        TrainConfig(**{field: value})


def test_recipe_writes_weights_provenance_and_resumes(tiny, tmp_path: Path):
    wordnet = _corpus.write_fake_wordnet(tmp_path / "wordnet")
    base = replace(tiny, vocab_size=300)
    recipe = TrainConfig(
        steps=4, batch_size=2, seq_len=16, warmup_steps=1, eval_every=4, eval_tokens=64
    )
    out = tmp_path / "runs"
    records = train_runs(out, ["gqa", "mixsga"], [0], base, recipe, "test", wordnet_dir=wordnet)
    assert [(r["variant"], r["seed"]) for r in records] == [("gqa", 0), ("mixsga", 0)]
    prov = json.loads((out / "mixsga-s0.json").read_text())
    assert prov["sha256"] == sha256_file(out / "mixsga-s0.safetensors")
    assert prov["corpus"]["sha256"] and prov["corpus"]["tokens"]["train"] > 0
    assert prov["recipe"]["steps"] == 4 and prov["history"]["val_ppl"]
    model = load_model(out / "mixsga-s0.safetensors")
    assert model.cfg.attn_group_sizes == (1, 2, 4)
    # The stored (float16) weights give the recorded test perplexity.
    from offload.models.lm.recipe import prepare_data

    streams, _ = prepare_data(out, 300, wordnet)
    assert evaluate(model, streams.test, 16).ppl == pytest.approx(prov["test"]["ppl"], rel=1e-5)
    # A second call finds both runs done and trains nothing.
    again = train_runs(out, ["gqa", "mixsga"], [0], base, recipe, "test", wordnet_dir=wordnet)
    assert again == records


def test_loading_a_bad_weights_file_is_a_clear_error(tmp_path: Path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="cannot read"):
        load_model(bad)
    with pytest.raises(CheckpointError, match="not found"):
        load_model(tmp_path / "missing.safetensors")
