"""The neck and head as ``detect`` runs them: batch norm folded, same function, model untouched."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from perception.dense_layers import (
    PrecisionError,
    default_precision,
    dense_layers,
    native_bfloat16,
    resolve_precision,
)
from perception.model import Detector


def _trained_like(config) -> Detector:
    """A detector whose batch norms are not the identity (as after training)."""
    torch.manual_seed(0)
    model = Detector(config)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    return model.eval()


def _bev(model: Detector) -> torch.Tensor:
    c = model.neck.reduce[0].in_channels
    torch.manual_seed(1)
    return torch.randn(2, c, 32, 32).relu()


def test_folded_layers_compute_the_model_s_neck_and_head(small_config):
    model = _trained_like(small_config)
    neck, head = dense_layers(model)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in [*neck.modules(), *head.modules()])
    bev = _bev(model)
    with torch.no_grad():
        want = model.head(model.neck(bev))
        got = head(neck(bev.contiguous(memory_format=torch.channels_last)))
    for name in ("heatmap", "regression", "direction"):
        torch.testing.assert_close(getattr(got, name), getattr(want, name), rtol=1e-4, atol=1e-5)
    # The model keeps its own batch norms and stays trainable.
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.neck.modules()) > 0
    assert all(p.requires_grad for p in model.parameters())


def _assert_same_heatmap(model: Detector) -> None:
    neck, head = dense_layers(model)
    bev = _bev(model)
    with torch.no_grad():
        want = model.head(model.neck(bev)).heatmap
        got = head(neck(bev)).heatmap
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def test_folded_layers_follow_a_change_of_the_model(small_config):
    model = _trained_like(small_config)
    first = dense_layers(model)
    assert dense_layers(model) is first  # cached while nothing changes
    with torch.no_grad():
        model.head.shared[1].running_mean.add_(0.3)  # a buffer alone, as a training step moves it
    assert dense_layers(model) is not first
    _assert_same_heatmap(model)
    with torch.no_grad():
        model.neck.reduce[0].weight.mul_(1.1)  # a parameter alone
    _assert_same_heatmap(model)


def test_bfloat16_copies_compute_the_same_function_to_bfloat16_rounding(small_config):
    model = _trained_like(small_config)
    neck32, head32 = dense_layers(model)
    neck16, head16 = dense_layers(model, torch.bfloat16)
    assert all(p.dtype == torch.bfloat16 for p in [*neck16.parameters(), *head16.parameters()])
    assert all(p.dtype == torch.float32 for p in [*neck32.parameters(), *head32.parameters()])
    assert dense_layers(model, torch.bfloat16)[0] is neck16  # each precision cached on its own
    assert dense_layers(model)[0] is neck32
    bev = _bev(model)
    with torch.no_grad():
        want = model.head(model.neck(bev))
        got = head16(neck16(bev.to(torch.bfloat16)))
    for name in ("heatmap", "regression", "direction"):
        out, ref = getattr(got, name).float(), getattr(want, name)
        # bfloat16 keeps 8 significant bits: errors of a few units of 2^-8 of the outputs' scale
        scale = ref.abs().max().item()
        assert (out - ref).abs().max().item() <= 0.05 * scale
        assert (out - ref).abs().max().item() > 0  # it did run in bfloat16


def test_precision_names_resolve_per_device(monkeypatch):
    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    assert resolve_precision("float32", cpu) == torch.float32
    assert resolve_precision("bfloat16", cpu) == torch.bfloat16
    assert resolve_precision("auto", gpu) == torch.float32
    with pytest.raises(PrecisionError, match="for CPUs"):
        resolve_precision("bfloat16", gpu)
    with pytest.raises(PrecisionError, match="expected one of"):
        resolve_precision("float16", cpu)
    for native in (True, False):
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda n=native: n)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
        assert native_bfloat16(cpu) is native
        assert resolve_precision("auto", cpu) == (torch.bfloat16 if native else torch.float32)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True)
    assert default_precision(cpu) == torch.bfloat16  # AMX tiles alone count too
