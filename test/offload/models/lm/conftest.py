"""Shared fixtures: tiny model configs (milliseconds per forward pass) and one torch thread."""

from __future__ import annotations

import pytest
import torch

from offload.models.lm.config import LMConfig

# Every variant of this shape builds in milliseconds; 4 heads allow group sizes 1, 2, 4.
TINY = LMConfig(
    vocab_size=64,
    max_seq_len=64,
    d_model=32,
    n_layers=2,
    n_heads=4,
    n_experts=4,
    top_k=2,
    expert_hidden=16,
)


@pytest.fixture(autouse=True, scope="package")
def one_torch_thread():
    """One torch thread (the shared 2-core machines collapse with more), restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def tiny() -> LMConfig:
    return TINY
