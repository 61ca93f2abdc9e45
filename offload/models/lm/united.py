"""United experts for brownout (BrownoutServe, arXiv 2507.17133).

At brownout level tau in [0, 1], in every MoE layer the ``m = round((1 - tau) E)`` least-used
experts (by routing counts on training text, ``MoEFeedForward.usage``) are served by one united
expert built from them; the others stay exact. tau = 1 merges nothing and is the original model.

Merge method (stated; the paper's exact recipe was not available): SwiGLU experts trained from
different initialisations order their hidden units differently, so averaging raw weights mixes
unrelated units. We first align each merged expert's hidden units to those of the most-used
merged expert (the anchor) by a maximum-weight matching (Hungarian algorithm,
``scipy.optimize.linear_sum_assignment``) on the cosine similarity of each unit's concatenated
gate, up and down weights; then average the aligned weights, weighted by usage. Permuting hidden
units leaves an expert's function unchanged, so the alignment only makes the average meaningful
(the recipe of MC-SMoE, Li et al., ICLR 2024). ``merge_method="average"`` skips the alignment
(an ablation), ``"anchor"`` serves the anchor alone (pruning the others, another baseline).
``"distilled"`` united experts are fitted on training text (``offload.models.lm.distill``), so
they cannot be computed from the weights alone: a model serves them once they are loaded
(``MoELM.set_distilled``, ``checkpoint.load_united``).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor

from offload.models.lm.moe import MoEFeedForward

MergeMethod = Literal["aligned", "average", "anchor", "distilled"]
# the methods ``unite`` computes from the experts' weights alone
MERGE_METHODS: tuple[MergeMethod, ...] = ("aligned", "average", "anchor")


class BrownoutError(ValueError):
    """A brownout level or merge method is out of bounds."""


def merged_count(tau: float, n_experts: int) -> int:
    """Experts served by the united expert at level tau: round((1 - tau) n_experts).

    Raises:
        BrownoutError: tau outside [0, 1].
    """
    if not 0.0 <= tau <= 1.0:
        raise BrownoutError(f"brownout level tau={tau} is out of bounds [0, 1]")
    return round((1.0 - tau) * n_experts)


def _unit_features(gate: Tensor, up: Tensor, down: Tensor) -> np.ndarray:
    """Each hidden unit as a unit vector [f, 3d] of its gate, up and down weights."""
    feats = torch.cat([gate.T, up.T, down], dim=1).detach().double().numpy()
    return feats / np.maximum(np.linalg.norm(feats, axis=1, keepdims=True), 1e-12)


def unite(
    moe: MoEFeedForward, experts: list[int], method: MergeMethod = "aligned"
) -> tuple[Tensor, Tensor, Tensor]:
    """The united expert's (gate [d, f], up [d, f], down [f, d]) built from ``experts``."""
    if method not in MERGE_METHODS:
        raise BrownoutError(f"merge method {method!r}; expected one of {', '.join(MERGE_METHODS)}")
    usage = moe.usage[experts].double() + 1.0  # +1: an expert never routed still has a weight
    anchor = experts[int(usage.argmax())]
    parts = (moe.w_gate, moe.w_up, moe.w_down)
    if method == "anchor":
        return tuple(p[anchor].detach().clone() for p in parts)  # type: ignore[return-value]
    anchor_feats = _unit_features(*(p[anchor] for p in parts))
    weights = (usage / usage.sum()).tolist()
    merged = [torch.zeros_like(p[0]) for p in parts]
    for weight, e in zip(weights, experts, strict=True):
        gate, up, down = (p[e].detach() for p in parts)
        if method == "aligned" and e != anchor:
            sim = anchor_feats @ _unit_features(gate, up, down).T  # [f anchor, f expert]
            _, perm = linear_sum_assignment(sim, maximize=True)
            perm_t = torch.as_tensor(perm, dtype=torch.long)
            gate, up, down = gate[:, perm_t], up[:, perm_t], down[perm_t]
        for acc, w_e in zip(merged, (gate, up, down), strict=True):
            acc += weight * w_e
    return merged[0], merged[1], merged[2]


@torch.no_grad()
def calibrate_usage(
    model: torch.nn.Module,
    windows: Tensor,  # [W, T] int64 token windows of training text
    batch_size: int = 32,
) -> None:
    """Recounts every MoE layer's ``usage`` (top-k routing counts) on ``windows``."""
    layers = [m for m in model.modules() if isinstance(m, MoEFeedForward)]
    for moe in layers:
        moe.usage.zero_()
        moe.record_usage = True
    try:
        for start in range(0, len(windows), batch_size):
            model(windows[start : start + batch_size])
    finally:
        for moe in layers:
            moe.record_usage = False


def apply_brownout(
    layers: list[MoEFeedForward],
    tau: float,
    method: MergeMethod = "aligned",
    united: list[tuple[Tensor, Tensor, Tensor]] | None = None,
) -> None:
    """Sets every MoE layer to level tau (tau = 1 restores the original experts exactly): its
    least-used experts are served by ``united[layer]`` when given (distilled experts), else by
    ``unite(moe, merged, method)``."""
    for k, moe in enumerate(layers):
        m = merged_count(tau, moe.n_experts)
        if m == 0:
            moe.set_slots(None, None)
            continue
        order = torch.argsort(moe.usage, stable=True).tolist()  # least used first
        merged = order[:m]
        slot_of_expert = torch.arange(moe.n_experts)
        slot_of_expert[merged] = moe.n_experts  # the united slot
        moe.set_slots(slot_of_expert, united[k] if united else unite(moe, merged, method))
