"""Decoder-only MoE transformer with mixSGA attention; prefill and decode with a KV cache.

Block (pre-norm): ``x += attn(rmsnorm(x)); x += moe(rmsnorm(x))``; RoPE positions; the output head
shares the embedding matrix. Training loss = cross-entropy + ``balance_loss_weight`` x mean
load-balancing loss (``moe``) + ``onehot_loss_weight`` x mean one-hot routing loss (``routing``).

Inference entry points (who calls them: the serving engine, once per scheduling step):
``prefill(tokens, lengths)`` runs whole prompts and returns a cache; ``decode(tokens, cache)``
appends one token per row. With causal routing, ``forward`` over a whole sequence gives the same
logits as prefill followed by decode steps (a test checks it).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from offload.models.lm.attention import MixSGAAttention, Rope, Routing
from offload.models.lm.cache import KVCache
from offload.models.lm.config import LMConfig
from offload.models.lm.moe import MoEFeedForward
from offload.models.lm.routing import route_limit
from offload.models.lm.united import BrownoutError, MergeMethod, apply_brownout, merged_count


class ModelError(ValueError):
    """Input tokens or a request are out of the model's bounds."""


class Block(nn.Module):
    def __init__(self, cfg: LMConfig, layer: int) -> None:
        super().__init__()
        self.norm1 = nn.RMSNorm(cfg.d_model, eps=1e-6)
        self.attn = MixSGAAttention(cfg, layer)
        self.norm2 = nn.RMSNorm(cfg.d_model, eps=1e-6)
        self.moe = MoEFeedForward(cfg)

    def _ffn(self, x: Tensor, valid: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """x + moe(norm(x)); with ``valid`` [B, T] (prefill) only the valid tokens run it: a
        padded position feeds no valid token (right padding, causal attention)."""
        if valid is None:
            y, balance = self.moe(self.norm2(x).reshape(-1, x.shape[-1]))
            return x + y.view_as(x), balance
        xs = x[valid]  # [N, d] packed
        y, balance = self.moe(self.norm2(xs))
        out = x.clone()
        out[valid] = xs + y
        return out, balance


class MoELM(nn.Module):
    """The language model (all three attention variants; see ``config.variant_config``)."""

    def __init__(self, cfg: LMConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.d_model)
        nn.init.normal_(self.embed.weight, std=0.02)
        self.blocks = nn.ModuleList(Block(cfg, i) for i in range(cfg.n_layers))
        self.norm = nn.RMSNorm(cfg.d_model, eps=1e-6)
        self.rope = Rope(cfg.head_dim, cfg.max_seq_len, cfg.rope_theta)
        self.brownout_tau = 1.0
        self._brownout_cache: dict[tuple[int, str], list] = {}
        # distilled united experts per merged count, one (gate, up, down) per layer
        self._distilled: dict[int, list[tuple[Tensor, Tensor, Tensor]]] = {}

    def _check(self, tokens: Tensor, extra: int = 0) -> None:
        if tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) >= self.cfg.vocab_size):
            raise ModelError(f"token ids must be in [0, {self.cfg.vocab_size})")
        if tokens.shape[-1] + extra > self.cfg.max_seq_len:
            raise ModelError(
                f"sequence of {tokens.shape[-1] + extra} tokens exceeds max_seq_len="
                f"{self.cfg.max_seq_len}"
            )

    def forward(
        self,
        tokens: Tensor,  # [B, T] int64
        routing: Routing = "causal",
        lengths: Tensor | None = None,  # [B] valid tokens per row (right padding); None = all
        cache: KVCache | None = None,  # filled with the KV of the valid tokens if given
    ) -> tuple[Tensor, dict[str, Tensor]]:  # logits [B, T, V], auxiliary losses and routing
        """Whole sequences: training (expert_choice), evaluation and prefill (causal)."""
        x, out = self._hidden(tokens, routing, lengths, cache)
        return self.norm(x) @ self.embed.weight.T, out

    def _hidden(
        self, tokens: Tensor, routing: Routing, lengths: Tensor | None, cache: KVCache | None
    ) -> tuple[Tensor, dict[str, Tensor]]:  # last hidden states [B, T, d], as ``forward``
        self._check(tokens)
        b, t = tokens.shape
        pos = torch.arange(t)[None, :].expand(b, t)
        valid = None if lengths is None else pos < lengths[:, None]
        # Without autograd, padded positions skip the feed-forward (they feed no valid token).
        packed = valid if valid is not None and not torch.is_grad_enabled() else None
        if packed is not None and bool(packed.all()):
            packed = None
        x = self.embed(tokens)
        balance, onehot, assigned, probs = [], [], [], []
        for block in self.blocks:
            a, aux = block.attn(block.norm1(x), pos, self.rope, routing, valid, cache)
            x, bal = block._ffn(x + a, packed)
            balance.append(bal)
            if "onehot" in aux:
                onehot.append(aux["onehot"])
            if "assigned" in aux:
                assigned.append(aux["assigned"])
                probs.append(aux["probs"])
        if cache is not None:
            cache.lengths = lengths.clone() if lengths is not None else torch.full((b,), t)
        out = {"balance": torch.stack(balance).mean()}
        out["onehot"] = torch.stack(onehot).mean() if onehot else torch.zeros(())
        if assigned:
            out["assigned"] = torch.stack(assigned)  # [layers, B, T] attention expert per token
            out["probs"] = torch.stack(probs)  # [layers, B, T, E] router probabilities
        return x, out

    def loss(self, tokens: Tensor) -> tuple[Tensor, dict[str, float]]:
        """Training loss on [B, T+1] tokens (predict each next token), and its parts."""
        logits, aux = self(tokens[:, :-1], routing="expert_choice")
        ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1))
        total = ce + self.cfg.balance_loss_weight * aux["balance"]
        total = total + self.cfg.onehot_loss_weight * aux["onehot"]
        parts = {
            k: float(v.detach())
            for k, v in (("ce", ce), ("balance", aux["balance"]), ("onehot", aux["onehot"]))
        }
        return total, parts

    def new_cache(self, batch: int) -> KVCache:
        return KVCache.empty(
            batch, self.cfg.n_layers, self.blocks[0].attn.layout, dtype=self.embed.weight.dtype
        )

    @torch.no_grad()
    def prefill(
        self,
        tokens: Tensor,  # [B, P] int64 prompts, right-padded
        lengths: Tensor,  # [B] int64 prompt lengths, >= 1
    ) -> tuple[Tensor, KVCache]:  # logits of each prompt's last token [B, V], the cache
        """Runs whole prompts and returns their KV cache."""
        if tokens.shape[0] and int(lengths.min()) < 1:
            raise ModelError("every prompt needs at least one token")
        cache = self.new_cache(tokens.shape[0])
        x, _ = self._hidden(tokens, "causal", lengths, cache)
        last = x[torch.arange(tokens.shape[0]), lengths - 1]  # [B, d]: the head on these only
        return self.norm(last) @ self.embed.weight.T, cache

    @torch.no_grad()
    def decode(
        self,
        tokens: Tensor,  # [B] int64 the newest token of each row
        cache: KVCache,
    ) -> Tensor:  # [B, V] logits of the next token
        """Appends one token per row to ``cache`` and returns the next-token logits."""
        x, pos = self._decode_input(tokens, cache)
        rot = self.rope.at_step(pos)  # [B, dh, dh], shared by every layer
        attn0 = self.blocks[0].attn
        limit = route_limit(cache.lengths, self.cfg.kv_budget, attn0.costs)
        for block in self.blocks:
            x = x + block.attn.decode(block.norm1(x), rot, cache, limit)
            x, _ = block._ffn(x)
        cache.lengths = pos + 1
        return self.norm(x) @ self.embed.weight.T

    @torch.no_grad()
    def decode_reference(self, tokens: Tensor, cache: KVCache) -> Tensor:
        """``decode`` with the straightforward attention step (``decode_reference``): tests
        compare the two."""
        x, pos = self._decode_input(tokens, cache)
        for block in self.blocks:
            x = x + block.attn.decode_reference(block.norm1(x), pos, self.rope, cache)
            x, _ = block._ffn(x)
        cache.lengths = pos + 1
        return self.norm(x) @ self.embed.weight.T

    def _decode_input(self, tokens: Tensor, cache: KVCache) -> tuple[Tensor, Tensor]:
        pos = cache.lengths
        if pos.numel() and int(pos.max()) >= self.cfg.max_seq_len:
            raise ModelError(f"a sequence reached max_seq_len={self.cfg.max_seq_len}")
        self._check(tokens[:, None])
        return self.embed(tokens), pos  # [B, d], [B]

    @property
    def merge_method(self) -> MergeMethod:
        """The default merge: "distilled" once united experts are loaded for every level,
        otherwise "aligned" (computed from the weights)."""
        full = all(m in self._distilled for m in range(1, self.cfg.n_experts + 1))
        return "distilled" if full else "aligned"

    def set_distilled(self, experts: dict[int, list[tuple[Tensor, Tensor, Tensor]]]) -> None:
        """Distilled united experts per merged count (``offload.models.lm.distill``).

        Raises:
            BrownoutError: a count outside [1, E], a layer missing or a shape that does not fit.
        """
        d, f = self.cfg.d_model, self.cfg.expert_hidden
        shapes = [(d, f), (d, f), (f, d)]
        for m, layers in experts.items():
            if not 1 <= m <= self.cfg.n_experts or len(layers) != self.cfg.n_layers:
                raise BrownoutError(
                    f"distilled experts for {m} merged experts over {len(layers)} layers do not "
                    f"fit a model of {self.cfg.n_experts} experts and {self.cfg.n_layers} layers"
                )
            for united in layers:
                if [tuple(t.shape) for t in united] != shapes:
                    raise BrownoutError(
                        f"distilled expert shapes {[tuple(t.shape) for t in united]}, "
                        f"expected {shapes}"
                    )
        self._distilled = {
            m: [tuple(t.detach().float() for t in u) for u in layers]  # type: ignore[misc]
            for m, layers in experts.items()
        }
        self.clear_brownout_cache()

    def set_brownout(self, tau: float, method: MergeMethod | None = None) -> None:
        """Serves the share 1 - tau of each layer's experts by a united expert (1 = original),
        merged by ``method`` (default ``merge_method``).

        Raises:
            BrownoutError: tau outside [0, 1], or "distilled" asked for a level without them.
        """
        moes = [b.moe for b in self.blocks]
        method = method or self.merge_method
        m = merged_count(tau, self.cfg.n_experts)
        key = (m, method)
        if key not in self._brownout_cache:
            if method == "distilled" and m > 0 and m not in self._distilled:
                raise BrownoutError(
                    f"no distilled united experts for {m} merged experts (tau={tau}); "
                    "make them with `robomr lm unite` or use another merge method"
                )
            distilled = self._distilled.get(m) if method == "distilled" else None
            apply_brownout(moes, tau, "aligned" if method == "distilled" else method, distilled)
            self._brownout_cache[key] = [(m_._slot_of_expert, m_._united) for m_ in moes]
        for moe, (slots, united) in zip(moes, self._brownout_cache[key], strict=True):
            moe.set_slots(slots, united)
        self.brownout_tau = tau

    def clear_brownout_cache(self) -> None:
        """Forget merged experts (after the weights or usage counts change)."""
        self._brownout_cache.clear()
        self.set_brownout(1.0)
