"""Sampling: the numpy greedy argmax is torch's argmax, ties included."""

from __future__ import annotations

import pytest
import torch

from offload.models.lm.generate import argmax_rows, sample


@pytest.mark.parametrize(
    "logits",
    [
        torch.randn(32, 2048, generator=torch.Generator().manual_seed(0)),
        torch.tensor([[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, 2.0, 2.0]]),  # ties: the first maximum
        torch.tensor([[-float("inf"), -1.0], [0.5, float("inf")]]),
        torch.randn(3, 7, dtype=torch.float64),
        torch.randn(0, 5),  # an empty batch
        torch.randn(4, 6)[:, ::2],  # not contiguous
    ],
)
def test_argmax_rows_equals_torch_argmax(logits):
    got = argmax_rows(logits)
    assert got.dtype == torch.long and torch.equal(got, logits.argmax(dim=-1))


def test_sample_is_greedy_at_temperature_zero_only():
    logits = torch.tensor([[0.0, 5.0, 1.0]] * 3)
    gen = torch.Generator().manual_seed(0)
    hot = sample(logits[:1].expand(200, 3), torch.full((200,), 10.0), gen)
    assert sample(logits, torch.zeros(3)).tolist() == [1, 1, 1]
    assert set(hot.tolist()) == {0, 1, 2}, "temperature 10 flattens 0/5/1 enough to draw all"
