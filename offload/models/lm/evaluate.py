"""Perplexity and routing statistics of a model on a token stream.

Perplexity = exp(mean next-token cross-entropy) over every predicted token of the stream
(``data.eval_windows``), with the routing the model uses at inference (causal argmax under the
KV guard), never the training-time expert choice, which looks at future tokens.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from offload.models.lm.attention import Routing
from offload.models.lm.data import eval_windows
from offload.models.lm.model import MoELM
from offload.models.lm.routing import expert_choice


@dataclass(frozen=True)
class EvalResult:
    """Perplexity of one model on one stream, and how its attention experts were used."""

    ppl: float  # exp(mean cross-entropy in nats)
    tokens: int  # predicted tokens
    expert_share: tuple[
        float, ...
    ]  # share of tokens per attention expert (all layers), finest first
    kv_relative: float  # mean KV per token relative to MHA (1.0 = MHA)
    onehot_mass: float  # mean router probability of the chosen expert (1.0 = one-hot)
    agreement: float  # share of tokens where inference routing = training expert choice

    def to_dict(self) -> dict[str, object]:
        return {
            "ppl": self.ppl,
            "tokens": self.tokens,
            "expert_share": list(self.expert_share),
            "kv_relative": self.kv_relative,
            "onehot_mass": self.onehot_mass,
            "agreement": self.agreement,
        }


@torch.no_grad()
def evaluate(
    model: MoELM,
    stream: np.ndarray,  # [N] int32 tokens
    seq_len: int = 128,
    batch_size: int = 32,
    max_tokens: int | None = None,
    routing: Routing = "causal",
) -> EvalResult:
    """Perplexity over ``stream`` (optionally its first ``max_tokens``) and routing statistics."""
    was_training = model.training
    model.eval()
    windows = eval_windows(stream, seq_len, max_tokens)
    total_nll, total = 0.0, 0
    groups = model.cfg.attn_group_sizes
    counts = np.zeros(len(groups))
    mass, agree, routed = 0.0, 0.0, 0
    for start in range(0, len(windows), batch_size):
        batch = windows[start : start + batch_size]
        logits, aux = model(batch[:, :-1], routing=routing)
        nll = F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1), reduction="sum"
        )
        total_nll += float(nll)
        total += batch[:, 1:].numel()
        if "assigned" in aux:
            assigned = aux["assigned"]  # [layers, B, T]
            counts += np.bincount(assigned.flatten().numpy(), minlength=len(groups))
            for layer, block in enumerate(model.blocks):
                probs = aux["probs"][layer]  # [B, T, E]
                chosen = assigned[layer]
                mass += float(probs.gather(-1, chosen[..., None]).sum())
                agree += float((expert_choice(probs, block.attn.fractions) == chosen).sum())
                routed += chosen.numel()
        else:
            counts[0] += total
    model.train(was_training)
    share = counts / max(counts.sum(), 1)
    return EvalResult(
        ppl=math.exp(total_nll / max(total, 1)),
        tokens=total,
        expert_share=tuple(float(s) for s in share),
        kv_relative=float((share / np.asarray(groups)).sum()),
        onehot_mass=mass / routed if routed else 1.0,
        agreement=agree / routed if routed else 1.0,
    )
