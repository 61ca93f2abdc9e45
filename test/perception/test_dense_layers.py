"""The neck and head as ``detect`` runs them: batch norm folded, same function, model untouched."""

from __future__ import annotations

import torch
from torch import nn

from perception.dense_layers import dense_layers
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
