"""mixSGA attention: attention experts with different KV group sizes sharing one set of weights.

Weight sharing (arXiv 2506.13541, point (2)): one key and one value projection with
``kv_heads = n_heads / g_0`` heads (g_0 the smallest group size). Expert e, with group size g_e,
mean-pools each run of ``g_e / g_0`` consecutive KV heads into one (the standard MHA-to-GQA
conversion), so its tokens keep ``n_heads / g_e`` KV heads, and query head h reads pooled head
``h // g_e``. Pooling is linear and commutes with RoPE (the same rotation at one position), so
pooled keys are rotated keys of a pooled projection. The router adds only ``d_model x E`` weights.

Static GQA and dense MHA are the same module with a single expert (g = 2 and g = 1): no router,
no pooling. Which expert a token uses is decided by ``routing`` (expert choice in training, causal
argmax under the KV guard at inference).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from offload.models.lm.cache import KVCache
from offload.models.lm.config import LMConfig
from offload.models.lm.routing import (
    causal_route,
    causal_route_step,
    expert_choice,
    onehot_loss,
    straight_through,
)
from offload.models.lm.slots import SlotLayout

Routing = Literal["expert_choice", "causal"]


class Rope(nn.Module):
    """Rotary position embedding (rotate-half convention, as in Llama)."""

    def __init__(self, head_dim: int, max_len: int, theta: float) -> None:
        super().__init__()
        inv_freq = theta ** (-torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
        angles = torch.arange(max_len, dtype=torch.float64)[:, None] * inv_freq[None, :]
        self.register_buffer("cos", angles.cos().float(), persistent=False)  # [L, dh/2]
        self.register_buffer("sin", angles.sin().float(), persistent=False)

    def forward(self, x: Tensor, pos: Tensor) -> Tensor:
        """x [B, T, h, dh] rotated by positions pos [B, T]."""
        return self.rotate(x, *self.at(pos))

    def at(self, pos: Tensor) -> tuple[Tensor, Tensor]:
        """cos, sin [*pos.shape, 1, dh/2] of positions pos (looked up once, used by every layer)."""
        return self.cos[pos].unsqueeze(-2), self.sin[pos].unsqueeze(-2)

    def at_step(self, pos: Tensor) -> Tensor:
        """[*pos.shape, dh, dh] rotation matrices of positions pos: ``x @ R`` is ``rotate`` of
        x at that position, for all heads in one batched product (looked up once per decode
        step; the same products, with the two terms of each output summed in one rounding)."""
        cos, sin = (torch.diag_embed(t.squeeze(-2)) for t in self.at(pos))  # [..., dh/2, dh/2]
        return torch.cat([torch.cat([cos, sin], -1), torch.cat([-sin, cos], -1)], dim=-2)

    @staticmethod
    def rotate(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
        """x [..., h, dh] rotated by the angles of ``at`` (broadcast over the heads)."""
        x1, x2 = x.chunk(2, dim=-1)
        return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


class MixSGAAttention(nn.Module):
    """Causal self-attention with per-token KV group size (one expert: plain MHA or GQA)."""

    def __init__(self, cfg: LMConfig, layer: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.layer = layer
        h, dh, hk = cfg.n_heads, cfg.head_dim, cfg.kv_heads
        self.q_proj = nn.Linear(cfg.d_model, h * dh, bias=False)
        self.k_proj = nn.Linear(cfg.d_model, hk * dh, bias=False)
        self.v_proj = nn.Linear(cfg.d_model, hk * dh, bias=False)
        self.o_proj = nn.Linear(h * dh, cfg.d_model, bias=False)
        g0 = cfg.attn_group_sizes[0]
        self.pool = tuple(g // g0 for g in cfg.attn_group_sizes)  # shared heads per expert head
        self.expert_kv_heads = tuple(hk // p for p in self.pool)
        self.costs = tuple(1.0 / g for g in cfg.attn_group_sizes)  # KV per token vs MHA
        self._costs_t = torch.tensor(self.costs, dtype=torch.float64)  # [E] (decode's guard)
        self.fractions = cfg.capacity_fractions()
        n = cfg.n_attn_experts
        self.router = nn.Linear(cfg.d_model, n, bias=True) if n > 1 else None
        self.scale = 1.0 / math.sqrt(dh)
        self._fused_key: tuple[tuple[int, int], ...] = ()  # parameters ``_fused`` was built from
        self._fused: tuple[Tensor, Tensor] = (torch.empty(0), torch.empty(0))
        self._fused_scaled: tuple[Tensor, Tensor] = self._fused
        # [sum_e he, kv_heads]: row i of expert e averages the shared heads its pooled head reads
        rows = [torch.eye(hk // p).repeat_interleave(p, dim=1) / p for p in self.pool]
        self.register_buffer("_pool_matrix", torch.cat(rows), persistent=False)
        self.layout = SlotLayout(h, self.expert_kv_heads, dh)  # the cache's slot tables

    def _pooled(self, t: Tensor, expert: int) -> Tensor:
        """[..., kv_heads, dh] -> [..., kv_heads / pool_e, dh] (mean of consecutive heads)."""
        p = self.pool[expert]
        if p == 1:
            return t
        return t.unflatten(-2, (t.shape[-2] // p, p)).mean(dim=-2)

    def _qkv(
        self, x: Tensor, pos: Tensor, rope: Rope, fused: bool | None = None
    ) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:  # q, k, v [B, T, h, dh]; router [B, T, E]
        """Projections, RoPE applied, and the attention router's logits (None: no router).

        ``fused`` (default: without autograd, i.e. evaluation and prefill): the four projections
        are one matmul and q and k are rotated together, as in ``decode``; training and the
        reference step keep the separate layers.
        """
        b, t, _ = x.shape
        h, hk = self.cfg.n_heads, self.cfg.kv_heads
        if fused if fused is not None else not torch.is_grad_enabled():
            proj = F.linear(x, *self._fused_projection())  # [B, T, (H + 2 hk) dh + E]
            dh = self.cfg.head_dim
            qk = rope(proj[..., : (h + hk) * dh].view(b, t, h + hk, dh), pos)
            v = proj[..., (h + hk) * dh : (h + 2 * hk) * dh].view(b, t, hk, dh)
            logits = proj[..., (h + 2 * hk) * dh :] if self.router is not None else None
            return qk[:, :, :h], qk[:, :, h:], v, logits
        q = rope(self.q_proj(x).view(b, t, h, -1), pos)
        k = rope(self.k_proj(x).view(b, t, hk, -1), pos)
        v = self.v_proj(x).view(b, t, hk, -1)
        return q, k, v, self.router(x) if self.router is not None else None

    def forward(
        self,
        x: Tensor,  # [B, T, d_model]
        pos: Tensor,  # [B, T] int64 positions
        rope: Rope,
        routing: Routing,
        valid: Tensor | None = None,  # [B, T] bool, False on right padding
        cache: KVCache | None = None,  # filled with this layer's KV (prefill) if given
    ) -> tuple[Tensor, dict[str, Tensor]]:  # [B, T, d_model], auxiliary terms
        """Whole sequences at once (training, evaluation, prefill)."""
        b, t, _ = x.shape
        q, k, v, router_logits = self._qkv(x, pos, rope)
        aux: dict[str, Tensor] = {}
        assigned = torch.zeros((b, t), dtype=torch.long)
        if router_logits is None:
            k_eff, v_eff = k, v
        else:
            probs = torch.softmax(router_logits, dim=-1)  # [B, T, E]
            if routing == "expert_choice":
                assigned = expert_choice(probs, self.fractions)
                weights = straight_through(assigned, probs)
                aux["onehot"] = onehot_loss(probs, assigned)
            else:
                used = torch.zeros(b, dtype=torch.float64)
                count = torch.zeros(b, dtype=torch.long)
                if cache is not None:
                    used, count = cache.kv_used[self.layer], cache.lengths
                assigned, used, _ = causal_route(
                    probs, self.costs, self.cfg.kv_budget, used, count, valid
                )
                if cache is not None:
                    cache.kv_used[self.layer] = used
                if not torch.is_grad_enabled():  # prefill, evaluation: the fast path
                    aux["assigned"], aux["probs"] = assigned, probs
                    return self._attend_routed(q, k, v, assigned, valid, cache), aux
                weights = F.one_hot(assigned, len(self.pool)).to(x.dtype)
            aux["assigned"] = assigned
            aux["probs"] = probs
            k_eff, v_eff = self._mix(k, weights, assigned), self._mix(v, weights, assigned)
        if cache is not None:
            self._store(cache, self._pooled_kv(k, v), assigned, valid)
        return self._attend(q, k_eff, v_eff), aux

    def _pooled_kv(self, k: Tensor, v: Tensor) -> list[Tensor]:
        """Keys | values [B, T, kv_heads, 2 dh] pooled for each expert (expert 0: as they are)."""
        kv = torch.cat([k, v], dim=-1)
        return [self._pooled(kv, e) for e in range(len(self.pool))]

    def _attend(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        """Causal attention of q [B, T, H, dh] over k, v [B, T, kv_heads, dh]; [B, T, d_model]."""
        b, t = q.shape[:2]
        g0 = self.cfg.attn_group_sizes[0]
        if g0 > 1:
            k, v = k.repeat_interleave(g0, dim=2), v.repeat_interleave(g0, dim=2)
        out = F.scaled_dot_product_attention(
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True
        )  # [B, H, T, dh]
        return self.o_proj(out.transpose(1, 2).reshape(b, t, -1))

    def _attend_routed(
        self,
        q: Tensor,  # [B, T, H, dh]
        k: Tensor,  # [B, T, kv_heads, dh]
        v: Tensor,  # [B, T, kv_heads, dh]
        assigned: Tensor,  # [B, T] int64 the expert of each token
        valid: Tensor | None,
        cache: KVCache | None,
    ) -> Tensor:  # [B, T, d_model]
        """Prefill and evaluation without autograd: ``_mix`` and ``_store`` with keys and values
        pooled together, once per expert, and each token's pooled heads broadcast over its
        group (a view) in the selection instead of repeated (the same values)."""
        b, t, hk, dh = k.shape
        pooled = self._pooled_kv(k, v)
        mixed = pooled[0]  # expert 0 (group size g_0, that of the shared projection) pools nothing
        for e in range(1, len(self.pool)):
            p = self.pool[e]
            pick = (assigned == e)[:, :, None, None, None]
            grouped = mixed.view(b, t, hk // p, p, 2 * dh)  # shared head h = p x group + j
            mixed = torch.where(pick, pooled[e][:, :, :, None, :], grouped).view(b, t, hk, -1)
        if cache is not None:
            self._store(cache, pooled, assigned, valid)
        return self._attend(q, mixed[..., :dh], mixed[..., dh:])

    def _mix(
        self,
        t: Tensor,  # [B, T, kv_heads, dh] keys or values
        weights: Tensor,  # [B, T, E] one-hot (straight-through in training)
        assigned: Tensor,  # [B, T] int64 the expert of each token
    ) -> Tensor:  # [B, T, kv_heads, dh] each token's keys as its expert sees them
        """sum_e w_e expand(pool_e(t)); without autograd the one-hot sum is a selection (the same
        values: 1 x a + 0 x b is a) made with ``where``, without the multiplies."""
        experts = range(len(self.pool))
        if torch.is_grad_enabled():
            return sum(
                weights[..., e, None, None] * self._expand(self._pooled(t, e), e) for e in experts
            )
        out = t  # expert 0 (group size g_0, that of the shared projection) pools nothing
        for e in experts[1:]:
            pick = (assigned == e)[..., None, None]
            out = torch.where(pick, self._expand(self._pooled(t, e), e), out)
        return out

    def _expand(self, pooled: Tensor, expert: int) -> Tensor:
        """Pooled heads back to the shared heads (each read by its whole group)."""
        p = self.pool[expert]
        return pooled if p == 1 else pooled.repeat_interleave(p, dim=-2)

    def _store(
        self,
        cache: KVCache,
        pooled: list[Tensor],  # [expert] -> [B, T, kv_heads_e, 2 dh] keys | values, pooled
        assigned: Tensor,  # [B, T] int64 the expert of each token
        valid: Tensor | None,  # [B, T] bool, False on right padding
    ) -> None:
        cache.append_tokens(self.layer, pooled, assigned, valid)

    def decode(
        self,
        x: Tensor,  # [B, d_model] one new token per row
        rot: Tensor,  # [B, dh, dh] rotation of its position (``Rope.at_step``)
        cache: KVCache,
        route_limit: Tensor,  # [B] float64 KV a row may have spent after this token (guard)
    ) -> Tensor:  # [B, d_model]
        """One token per row against the cache (the token is appended to the cache first).

        What ``decode_reference`` computes, in a fixed number of tensor ops per layer (decode
        is op-bound: a few rows 128 wide): one projection with the softmax scale folded into
        the query rows, the rotation as one batched product, the new key and value pooled for
        every expert by one product with the pooling matrix, its expert's pooled heads written
        into the row's next positions of each lane (``KVCache.append_step``), and one score and
        one value product of each lane's query heads against all of the lane's slots, each head
        masked to the one slot of every token that it reads (``slots.SlotLayout``): no step
        loops over experts.
        """
        b, h, hk, dh = x.shape[0], self.cfg.n_heads, self.cfg.kv_heads, self.cfg.head_dim
        proj = F.linear(x, *self._fused_projection(scaled=True))  # [B, (H + 2 hk) dh + E]
        qk = torch.bmm(proj[:, : (h + hk) * dh].view(b, h + hk, dh), rot)  # q, k rotated
        kv = torch.cat([qk[:, h:], proj[:, (h + hk) * dh : (h + 2 * hk) * dh].view(b, hk, dh)], -1)
        if self.router is None:
            assigned = torch.zeros(b, dtype=torch.long)
            pooled = kv  # one expert: its heads are the shared ones
        else:
            probs = torch.softmax(proj[:, (h + 2 * hk) * dh :], dim=-1)  # [B, E]
            assigned, cache.kv_used[self.layer] = causal_route_step(
                probs, self._costs_t, cache.kv_used[self.layer], route_limit
            )
            # [B, sum_e he, 2 dh] every expert's pooled heads (weights 1 and 1 / p: the means)
            pooled = torch.matmul(self._pool_matrix, kv)
        n = cache.append_step(self.layer, pooled, assigned)  # valid positions lie in [0, n)
        lanes = self.layout.lanes
        q = qk[:, :h].reshape(b, lanes, h // lanes, dh)  # each lane's query heads, scaled
        keys = cache.keys[self.layer][:, :, :n]  # [B, lanes, n, dh] every slot of each row
        scores = q @ keys.transpose(-1, -2)  # [B, lanes, H / lanes, n]
        scores.masked_fill_(cache.masked[self.layer][:, :, :n].unflatten(1, (lanes, -1)), -math.inf)
        out = torch.softmax(scores, dim=-1) @ cache.values[self.layer][:, :, :n]
        return self.o_proj(out.reshape(b, -1))

    def _fused_projection(self, scaled: bool = False) -> tuple[Tensor, Tensor]:
        """Weight [(H + 2 hk) dh + E, d_model] and bias of q, k, v and the router stacked, so a
        step projects in one matmul (rebuilt whenever a parameter changes). ``scaled``: the
        query rows times the softmax scale 1 / sqrt(dh) (decode; RoPE is linear, so the scores
        are scaled as before, exactly so where the scale is a power of two)."""
        parts = [self.q_proj.weight, self.k_proj.weight, self.v_proj.weight]
        if self.router is not None:
            parts += [self.router.weight, self.router.bias]
        key = tuple((p.data_ptr(), p._version) for p in parts)
        if key != self._fused_key:
            weight = torch.cat([p.detach() for p in parts if p.dim() == 2])
            bias = weight.new_zeros(weight.shape[0])
            if self.router is not None:
                bias[-self.router.out_features :] = self.router.bias.detach()
            scaled_weight = weight.clone()
            scaled_weight[: self.q_proj.out_features] *= self.scale
            self._fused_key, self._fused = key, (weight, bias)
            self._fused_scaled = (scaled_weight, bias)
        return self._fused_scaled if scaled else self._fused

    def decode_reference(
        self,
        x: Tensor,  # [B, d_model] one new token per row
        pos: Tensor,  # [B] int64 its position
        rope: Rope,
        cache: KVCache,
    ) -> Tensor:  # [B, d_model]
        """The straightforward decode step (the general routing guard, the prefill's store, and
        attention row by row and head by head over the slots each head reads): what ``decode``
        computes, kept as the reference tests compare it with."""
        b = x.shape[0]
        q, k, v, _ = (
            t[:, 0] if t is not None else None
            for t in self._qkv(x[:, None], pos[:, None], rope, fused=False)
        )  # [B, h, dh]
        if self.router is None:
            assigned = torch.zeros(b, dtype=torch.long)
        else:
            probs = torch.softmax(self.router(x), dim=-1)[:, None]  # [B, 1, E]
            chosen, used, _ = causal_route(
                probs, self.costs, self.cfg.kv_budget, cache.kv_used[self.layer], cache.lengths
            )
            cache.kv_used[self.layer] = used
            assigned = chosen[:, 0]
        pooled = [p[:, None] for p in self._pooled_kv(k, v)]  # [B, 1, he, 2 dh] each
        cache.append_tokens(self.layer, pooled, assigned[:, None])
        out = torch.empty_like(q)  # [B, H, dh]
        for row in range(b):
            keys, vals, reads = cache.row_view(self.layer, row)  # [n, dh], [n, dh], [n, H]
            for head in range(q.shape[1]):
                mine = reads[:, head]  # one slot of every cached token
                s = keys[mine] @ q[row, head] * self.scale
                out[row, head] = torch.softmax(s, dim=0) @ vals[mine]
        return self.o_proj(out.reshape(b, -1))
