"""Mixture-of-experts feed-forward layer: top-k token-choice routing over SwiGLU experts.

Formulation: router probabilities ``p = softmax(W_r x)``; each token goes to its k most probable
experts with weights renormalised over those k (Mixtral/Qwen-MoE style), no capacity limit and no
token dropped; ``y = sum_{e in topk} w_e * down_e(silu(gate_e x) * up_e x)``.
Load-balancing loss (Switch Transformer, Fedus et al. 2021): ``E * sum_e f_e * P_e`` with f_e the
share of routed slots that went to e and P_e the mean router probability of e; it is 1 when
routing is uniform.

Brownout (BrownoutServe, arXiv 2507.17133): ``set_slots`` replaces a subset of experts by one
united expert (``offload.models.lm.united``). A token whose top-k includes merged experts runs
the united expert once with the sum of their weights, so it makes fewer expert calls. With the
identity mapping (tau = 1) this is the original layer, bit for bit.

Dispatch: one batched matmul chain per expert that has tokens (experts without tokens cost
nothing: the occupied slots are found once, not one scan per expert). When every expert is
united (tau = 0) each token's weights sum to 1 on the united expert, so inference skips the
router and runs the united expert on all tokens as one dense SwiGLU (``united_only``); it equals
the routed computation up to the rounding of that weight sum (a test checks it).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from offload.models.lm.config import LMConfig


class MoEFeedForward(nn.Module):
    """Top-k routed SwiGLU experts with an optional united expert (brownout)."""

    def __init__(self, cfg: LMConfig) -> None:
        super().__init__()
        e, d, f = cfg.n_experts, cfg.d_model, cfg.expert_hidden
        self.top_k = cfg.top_k
        self.router = nn.Linear(d, e, bias=False)
        self.w_gate = nn.Parameter(torch.randn(e, d, f) / math.sqrt(d))
        self.w_up = nn.Parameter(torch.randn(e, d, f) / math.sqrt(d))
        self.w_down = nn.Parameter(torch.randn(e, f, d) / math.sqrt(f))
        # Routing counts per expert on calibration text: the merge order and weights of brownout.
        self.register_buffer("usage", torch.zeros(e, dtype=torch.float64))
        self.record_usage = False  # count routing into ``usage`` (set by ``calibrate_usage``)
        self._slot_of_expert: Tensor | None = None  # [E] int64; None = every expert its own slot
        self._united: tuple[Tensor, Tensor, Tensor] | None = None  # gate, up, down of the united
        self._all_united = False  # every expert served by the united one (tau = 0)
        self.fast_united = True  # at tau = 0 skip the router (False: the routed path, for tests)

    @property
    def n_experts(self) -> int:
        return int(self.w_gate.shape[0])

    def set_slots(
        self, slot_of_expert: Tensor | None, united: tuple[Tensor, Tensor, Tensor] | None
    ) -> None:
        """Serve experts mapped to slot E by ``united`` (None, None restores the original)."""
        self._slot_of_expert = slot_of_expert
        self._united = united
        self._all_united = bool(
            united is not None
            and slot_of_expert is not None
            and (slot_of_expert == self.n_experts).all()
        )

    @staticmethod
    def _swiglu(x: Tensor, gate: Tensor, up: Tensor, down: Tensor) -> Tensor:
        return (F.silu(x @ gate) * (x @ up)) @ down

    def _weights(self, slot: int) -> tuple[Tensor, Tensor, Tensor]:
        if slot < self.n_experts:
            return self.w_gate[slot], self.w_up[slot], self.w_down[slot]
        if self._united is None:
            raise IndexError(f"slot {slot} needs a united expert")
        return self._united

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """x [N, d] -> (y [N, d], load-balancing loss [])."""
        if (
            self._all_united
            and self.fast_united
            and not self.record_usage
            and not torch.is_grad_enabled()
        ):
            return self._swiglu(x, *self._united), x.new_zeros(())  # type: ignore[misc]
        n = x.shape[0]
        probs = torch.softmax(self.router(x), dim=-1)  # [N, E]
        top_w, top_i = probs.topk(self.top_k, dim=-1)  # [N, k]
        top_w = top_w / top_w.sum(dim=-1, keepdim=True)
        if self.record_usage:
            with torch.no_grad():
                self.usage += torch.bincount(top_i.flatten(), minlength=self.n_experts).double()
        n_slots = self.n_experts + (self._united is not None)
        slots = top_i if self._slot_of_expert is None else self._slot_of_expert[top_i]
        slot_w = x.new_zeros(n, n_slots).scatter_add(1, slots, top_w)  # [N, S]
        hit = torch.zeros(n, n_slots, dtype=torch.bool).scatter_(1, slots, True)
        y = torch.zeros_like(x)
        occupied = hit.any(dim=0).nonzero(as_tuple=True)[0].tolist()
        for slot in occupied:
            idx = hit[:, slot].nonzero(as_tuple=True)[0]
            xs = x[idx]
            y.index_add_(0, idx, slot_w[idx, slot, None] * self._swiglu(xs, *self._weights(slot)))
        if not torch.is_grad_enabled():  # inference: the loss is not needed
            return y, y.new_zeros(())
        share = torch.bincount(top_i.flatten(), minlength=self.n_experts).to(x.dtype)
        balance = self.n_experts * (share / top_i.numel() * probs.mean(dim=0)).sum()
        return y, balance

    def reference(self, x: Tensor) -> Tensor:
        """Slow per-token loop of the formulation, brownout included (each token runs each of
        its slots once with the summed weight); tests compare ``forward`` to it."""
        probs = torch.softmax(self.router(x), dim=-1)
        out = torch.zeros_like(x)
        for t in range(x.shape[0]):
            w, i = probs[t].topk(self.top_k)
            w = w / w.sum()
            per_slot: dict[int, Tensor] = {}
            for weight, e in zip(w, i.tolist(), strict=True):
                slot = e if self._slot_of_expert is None else int(self._slot_of_expert[e])
                per_slot[slot] = per_slot.get(slot, 0.0) + weight
            for slot, weight in per_slot.items():
                gate, up, down = self._weights(slot)
                out[t] += weight * ((F.silu(x[t] @ gate) * (x[t] @ up)) @ down)
        return out
