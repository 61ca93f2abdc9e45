"""Distilled united experts for brownout: each united expert fitted to what it replaces.

The aligned merge (``united.unite``) averages the merged experts' weights. Measured on the shipped
model, its united expert reproduces the merged experts' routed output barely better than a zero
output (mean squared error 0.84-0.98 of the target's energy in every layer at tau 0), which is
why deep brownout cost +821% perplexity. Here the united expert keeps the merge's shape (one SwiGLU
expert of the same width, so it costs what the aligned one does) and its weights are fitted, per
layer and per brownout level, to the output it stands in for on training text:

    minimize over (gate, up, down):  mean over tokens x with s(x) > 0 of
        || s(x) * SwiGLU(x; gate, up, down) - sum_{e in M, e in topk(x)} w_e(x) * expert_e(x) ||^2

where M is the set of merged experts (the least used, as ``united.apply_brownout`` chooses them),
w_e the token's renormalised top-k routing weights and s(x) the sum of w_e over e in M: exactly
what ``MoEFeedForward.forward`` computes with the united expert in slot E, so the loss is the
layer's output error under brownout. Adam with a cosine schedule from the aligned merge, on
minibatches of the MoE layer's inputs. Layers are fitted in order and each one's inputs are
captured with the earlier layers already browned out at that level (as GPTQ quantizes layer by
layer), so a layer also corrects what the ones before it changed. Only training text is used;
the level's choice (aligned or distilled) is made on validation text (``robomr lm unite``
reports both), the test split stays for the bench.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from offload.models.lm.moe import MoEFeedForward
from offload.models.lm.united import BrownoutError, apply_brownout

United = tuple[Tensor, Tensor, Tensor]  # gate [d, f], up [d, f], down [f, d]


@dataclass(frozen=True)
class DistillConfig:
    """Settings of the fit (defaults: the shipped united experts' recipe, models/README.md)."""

    windows: int = 256  # training windows of seq_len + 1 tokens (inputs captured per layer)
    steps: int = 500  # Adam steps per layer and level
    batch_tokens: int = 4096  # tokens per minibatch
    learning_rate: float = 3e-3  # peak; cosine decay to a tenth
    seed: int = 0  # window choice and minibatches
    forward_batch: int = 32  # windows per forward pass when capturing inputs

    def __post_init__(self) -> None:
        for name in ("windows", "steps", "batch_tokens", "forward_batch"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 10**7:
                raise BrownoutError(f"distill {name}={value!r} must be an integer in [1, 1e7]")
        if not (math.isfinite(self.learning_rate) and 0.0 < self.learning_rate <= 1.0):
            raise BrownoutError(f"distill learning_rate={self.learning_rate} must be in (0, 1]")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise BrownoutError(f"distill seed={self.seed!r} must be an integer >= 0")


@dataclass
class LayerFit:
    """One layer's fit at one level: output error before (aligned merge) and after."""

    layer: int
    merged: list[int]
    tokens: int  # calibration tokens routed (partly) to the merged experts
    target_energy: float  # mean ||target||^2: the error of a united expert that outputs zero
    mse_aligned: float
    mse_distilled: float


@dataclass
class Distilled:
    """United experts per merged count (1..E), one per layer, and how each fit went."""

    experts: dict[int, list[United]] = field(default_factory=dict)
    fits: dict[int, list[LayerFit]] = field(default_factory=dict)
    seconds: float = 0.0

    def report(self) -> dict[str, object]:
        return {
            "fits": {str(m): [asdict(f) for f in fs] for m, fs in self.fits.items()},
            "seconds": self.seconds,
        }


def _swiglu(x: Tensor, gate: Tensor, up: Tensor, down: Tensor) -> Tensor:
    return (F.silu(x @ gate) * (x @ up)) @ down


@torch.no_grad()
def routed_target(
    moe: MoEFeedForward, x: Tensor, merged: list[int]
) -> tuple[Tensor, Tensor, Tensor]:
    """(x, s, target) for the tokens of ``x`` [N, d] routed to at least one merged expert:
    s [n] the sum of their routing weights, target [n, d] what those experts output, weighted."""
    probs = torch.softmax(moe.router(x), dim=-1)
    top_w, top_i = probs.topk(moe.top_k, dim=-1)
    top_w = top_w / top_w.sum(dim=-1, keepdim=True)
    is_merged = torch.zeros(moe.n_experts, dtype=torch.bool)
    is_merged[merged] = True
    in_merged = is_merged[top_i]  # [N, k]
    s = (top_w * in_merged).sum(dim=-1)
    target = torch.zeros_like(x)
    for e in merged:
        hit = top_i == e  # [N, k]; an expert appears at most once in a token's top-k
        rows = hit.any(dim=-1).nonzero(as_tuple=True)[0]
        if len(rows):
            w = (top_w * hit)[rows].sum(dim=-1, keepdim=True)
            target[rows] += w * _swiglu(x[rows], moe.w_gate[e], moe.w_up[e], moe.w_down[e])
    keep = s > 0
    return x[keep], s[keep], target[keep]


def fit_united(
    moe: MoEFeedForward,
    x: Tensor,  # [N, d] the layer's inputs on calibration text
    merged: list[int],
    init: United,
    config: DistillConfig,
    generator: torch.Generator,
    layer: int = 0,
) -> tuple[United, LayerFit]:
    """The united expert for ``merged`` fitted by Adam from ``init`` (module docstring)."""
    xs, s, target = routed_target(moe, x, merged)
    n = len(xs)
    if n == 0:  # no calibration token reaches these experts: nothing to fit
        fit = LayerFit(layer, merged, 0, 0.0, 0.0, 0.0)
        return tuple(t.detach().clone() for t in init), fit  # type: ignore[return-value]
    params = [t.detach().clone().float().requires_grad_(True) for t in init]

    def mse(rows: Tensor | None = None) -> Tensor:
        xr, sr, tr = (xs, s, target) if rows is None else (xs[rows], s[rows], target[rows])
        return ((sr[:, None] * _swiglu(xr, *params) - tr) ** 2).sum(dim=-1).mean()

    with torch.no_grad():
        before = float(mse())
    opt = torch.optim.Adam(params, lr=config.learning_rate)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda i: 0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * i / config.steps))
    )
    batch = min(config.batch_tokens, n)
    with torch.enable_grad():
        for _ in range(config.steps):
            rows = torch.randint(0, n, (batch,), generator=generator)
            opt.zero_grad(set_to_none=True)
            mse(rows).backward()
            opt.step()
            sched.step()
    with torch.no_grad():
        after = float(mse())
        energy = float((target**2).sum(dim=-1).mean())
    if not after <= before:  # diverged (or NaN): keep the aligned merge it started from
        kept: United = tuple(t.detach().clone().float() for t in init)  # type: ignore[assignment]
        return kept, LayerFit(layer, merged, n, energy, before, before)
    fitted = tuple(p.detach() for p in params)
    return fitted, LayerFit(layer, merged, n, energy, before, after)  # type: ignore[return-value]


@torch.no_grad()
def _layer_inputs(
    model: torch.nn.Module, moe: MoEFeedForward, windows: Tensor, batch: int
) -> Tensor:
    """The inputs [N, d] that ``moe`` receives when ``model`` reads ``windows`` [W, T]."""
    seen: list[Tensor] = []
    hook = moe.register_forward_pre_hook(
        lambda _m, args: seen.append(args[0].detach().reshape(-1, args[0].shape[-1]))
    )
    try:
        for start in range(0, len(windows), batch):
            model(windows[start : start + batch, :-1])
    finally:
        hook.remove()
    return torch.cat(seen)


def distill_united(
    model: torch.nn.Module,  # MoELM, usage calibrated
    windows: Tensor,  # [W, T + 1] int64 training windows
    config: DistillConfig | None = None,
    merged_counts: list[int] | None = None,
    progress: Callable[[int, LayerFit], None] | None = None,
) -> Distilled:
    """Distilled united experts for every merged count (default 1..E; module docstring).

    The model is left at tau = 1 with its brownout cache cleared.
    """
    config = config or DistillConfig()
    moes = [b.moe for b in model.blocks]  # type: ignore[attr-defined]
    n_experts = moes[0].n_experts
    counts = merged_counts or list(range(1, n_experts + 1))
    if any(not 1 <= m <= n_experts for m in counts):
        raise BrownoutError(f"merged counts {counts} must lie in [1, {n_experts}]")
    if windows.ndim != 2 or windows.shape[1] < 2:
        raise BrownoutError(f"windows must be [W, T + 1] tokens, got {tuple(windows.shape)}")
    generator = torch.Generator().manual_seed(config.seed)
    out, started = Distilled(), time.perf_counter()
    was_training = model.training
    model.eval()
    try:
        for m in counts:
            model.set_brownout(1.0)  # type: ignore[operator]
            tau = 1.0 - m / n_experts
            fitted: list[United] = []
            fits: list[LayerFit] = []
            for layer, moe in enumerate(moes):
                apply_brownout([moe], tau, "aligned")  # the slots and the starting point
                slots, init = moe._slot_of_expert, moe._united
                assert slots is not None and init is not None  # m >= 1 experts merged
                merged = (slots == n_experts).nonzero(as_tuple=True)[0].tolist()
                moe.set_slots(None, None)  # capture this layer's inputs: earlier layers browned
                x = _layer_inputs(model, moe, windows, config.forward_batch)
                united, fit = fit_united(moe, x, merged, init, config, generator, layer)
                moe.set_slots(slots, united)
                fitted.append(united)
                fits.append(fit)
                if progress is not None:
                    progress(m, fit)
            out.experts[m], out.fits[m] = fitted, fits
    finally:
        for moe in moes:
            moe.set_slots(None, None)
        model.clear_brownout_cache()  # type: ignore[operator]
        model.train(was_training)
    out.seconds = time.perf_counter() - started
    return out
