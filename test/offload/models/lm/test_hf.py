"""A local Hugging Face checkpoint (tiny Llama / Qwen2-MoE made in the test) through the engine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from offload.models.lm.engine import Engine, EngineConfig, LMRequest
from offload.models.lm.hf import HFBackend, HFCheckpointError

transformers = pytest.importorskip("transformers")


def write_checkpoint(folder: Path, arch: str) -> Path:
    """A randomly initialised tiny checkpoint with a byte-level BPE tokenizer, as save_pretrained
    writes it."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import (
        LlamaConfig,
        LlamaForCausalLM,
        PreTrainedTokenizerFast,
        Qwen2MoeConfig,
        Qwen2MoeForCausalLM,
    )

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["<eos>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(["the robot picks the red box near the car"] * 20, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<eos>")
    fast.save_pretrained(folder)
    common = {
        "vocab_size": tok.get_vocab_size(),
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 64,
        "eos_token_id": fast.eos_token_id,
    }
    torch.manual_seed(0)
    if arch == "llama":
        model = LlamaForCausalLM(LlamaConfig(**common))
    else:
        cfg = Qwen2MoeConfig(
            **common,
            moe_intermediate_size=16,
            shared_expert_intermediate_size=32,
            num_experts=4,
            num_experts_per_tok=2,
        )
        model = Qwen2MoeForCausalLM(cfg)
    model.save_pretrained(folder)
    return folder


@pytest.mark.parametrize("arch", ["llama", "qwen2_moe"])
def test_engine_serves_a_local_checkpoint_like_hf_generate(tmp_path, arch):
    be = HFBackend(write_checkpoint(tmp_path, arch))
    engine = Engine(be, EngineConfig(kv_budget_bytes=10**6, policy="bucket"))
    prompts = {"a": "the robot picks", "b": "red box near the car"}
    for name, text in prompts.items():
        engine.submit(LMRequest(name, be.encode(text), 6, 0.0, ignore_eos=True))
    got: dict[str, list[int]] = {name: [] for name in prompts}
    while not engine.idle:
        for ev in engine.step(0.0):
            got[ev.request_id].append(ev.token)
    for name, text in prompts.items():
        ids = torch.tensor([be.encode(text)])
        ref = be.model.generate(
            ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=6,
            do_sample=False,
            eos_token_id=None,
            pad_token_id=0,
        )
        assert got[name] == ref[0, ids.shape[1] :].tolist()
    assert be.kv_bytes_for(10) == 2 * 2 * 2 * 8 * 4 * 10  # K,V x layers x kv heads x dim x fp32


def test_unsupported_or_missing_checkpoints_are_rejected(tmp_path):
    with pytest.raises(HFCheckpointError, match=r"no config\.json"):
        HFBackend(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["BertModel"]}))
    with pytest.raises(HFCheckpointError, match="not supported"):
        HFBackend(tmp_path)
