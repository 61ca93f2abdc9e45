"""Benchmarks in tests run torch on one thread: on shared cores two threads spin-wait and run
several times slower (see robomr_nodes/nodes/lidar_detector.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny_lm_backend():
    """A one-layer MoE language model (2 experts, top-1, attention group sizes 1 and 2) with a
    small BPE: milliseconds per call, for the step-cost clock's tests."""
    from offload.models.lm.backend import MoEBackend
    from offload.models.lm.config import LMConfig
    from offload.models.lm.model import MoELM
    from offload.models.lm.tokenizer import train_bpe

    tok = train_bpe(["the robot picks the red box", "a lidar sees the car"] * 5, vocab_size=300)
    cfg = LMConfig(vocab_size=tok.get_vocab_size(), max_seq_len=64, d_model=32, n_layers=1,
                   n_heads=4, attn_group_sizes=(1, 2), n_experts=2, top_k=1,
                   expert_hidden=16)  # fmt: skip
    torch.manual_seed(0)
    return MoEBackend(MoELM(cfg), tok)
