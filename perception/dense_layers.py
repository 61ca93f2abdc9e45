"""The detector's dense neck and head as ``detect`` runs them: batch norm folded into the
convolutions, channels-last.

At inference a batch norm is a fixed per-channel affine map, so it folds into the weights and
bias of the convolution before it (``torch.nn.utils.fusion.fuse_conv_bn_eval``; for the neck's
transposed convolution the scale goes on its output channels); the ReLU after it then runs in
place. Same function up to float rounding (measured: 2.6e-6 on the heat-map logits), one pass
over the BEV map less per layer: 14.4 -> 13.3 ms per 32-beam scan in the whole pipeline (2
threads, 100 x 100 BEV map, session 16's AMD EPYC VM with AVX-512, an in-process A/B; 13-17 ->
10-13 ms timed on their own).
oneDNN's 2D convolutions also run about 20 % faster on NHWC than on NCHW (27.6 -> 21.6 ms of
CPU for the default neck and head, one thread, session 6). The copies are built once per
state of the model's parameters and buffers (rebuilt after a training step, a load or a
move); the model itself is not changed.

Precision: the copies run in float32, or in bfloat16 (weights and activations; the outputs are
returned as float32) where the CPU multiplies bfloat16 natively (AVX512-BF16 or AMX: oneDNN's
bfloat16 convolutions, 10.1 -> 5.7 ms for the neck and head on one 32-beam scan, 2 threads,
session 17's AMD EPYC VM). ``"auto"`` picks bfloat16 on such a CPU and float32 elsewhere
(``default_precision``); ``detect`` runs float32 unless asked. The accuracy of both is measured
in ``robomr bench detector --dense-precision``.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from perception.config import PRECISIONS
from perception.errors import PerceptionError
from perception.model import Detector

_CACHE = "_dense_layers_for_inference"  # attribute holding {dtype: (state key, (neck, head))}


class PrecisionError(PerceptionError):
    """An unknown dense precision, or bfloat16 on a device that cannot run it."""


def native_bfloat16(device: torch.device) -> bool:
    """Whether ``device`` multiplies bfloat16 natively (a CPU with AVX512-BF16 or AMX tiles)."""
    if device.type != "cpu":
        return False
    cpu = torch.cpu
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(cpu, name, lambda: False)()) for name in checks)


def default_precision(device: torch.device) -> torch.dtype:
    """What ``"auto"`` means on ``device``: bfloat16 where it is native, float32 elsewhere."""
    return torch.bfloat16 if native_bfloat16(device) else torch.float32


def resolve_precision(precision: str, device: torch.device) -> torch.dtype:
    """The dtype of the dense layers for a precision name (see the module docstring)."""
    if precision == "auto":
        return default_precision(device)
    if precision == "float32":
        return torch.float32
    if precision == "bfloat16":
        if device.type != "cpu":
            raise PrecisionError(f"dense precision bfloat16 is for CPUs, not {device}")
        return torch.bfloat16
    raise PrecisionError(f"dense precision {precision!r}: expected one of {PRECISIONS}")


def dense_layers(
    model: Detector, dtype: torch.dtype = torch.float32
) -> tuple[nn.Module, nn.Module]:
    """The neck and head of ``model`` with folded batch norms, channels-last, in eval mode, with
    weights in ``dtype`` (float32 or bfloat16)."""
    tensors = [*model.neck.parameters(), *model.neck.buffers(), *model.head.parameters()]
    tensors += list(model.head.buffers())
    key = tuple((t.data_ptr(), t._version) for t in tensors)
    cache = model.__dict__.setdefault(_CACHE, {})
    cached = cache.get(dtype)
    if cached is not None and cached[0] == key:
        return cached[1]
    layers = (_folded(model.neck).to(dtype), _folded(model.head).to(dtype))
    cache[dtype] = (key, layers)
    return layers


def _folded(module: nn.Module) -> nn.Module:
    """An eval-mode copy whose (convolution, batch norm, ReLU) blocks are (folded convolution,
    identity, in-place ReLU)."""
    out = copy.deepcopy(module).eval()
    for block in out.modules():
        if not isinstance(block, nn.Sequential) or len(block) != 3:
            continue
        conv, norm, act = block
        if isinstance(conv, nn.Conv2d | nn.ConvTranspose2d) and isinstance(norm, nn.BatchNorm2d):
            transpose = isinstance(conv, nn.ConvTranspose2d)
            block[0] = fuse_conv_bn_eval(conv, norm, transpose=transpose)
            block[1] = nn.Identity()
            if isinstance(act, nn.ReLU):
                block[2] = nn.ReLU(inplace=True)
    for p in out.parameters():
        p.requires_grad_(False)
    return out.to(memory_format=torch.channels_last)
