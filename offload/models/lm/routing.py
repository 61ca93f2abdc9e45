"""mixSGA token routing to attention experts with different KV group sizes (arXiv 2506.13541).

Formulation (our reconstruction of the abstract; the method section was not available):

* A linear router gives each token t a distribution p_t over the E attention experts
  (``p_t = softmax(W_r x_t)``); expert e keeps ``n_heads / g_e`` KV heads for its tokens.
* **Training: expert-choice with capacities, no token dropped.** Within a sequence of T tokens,
  expert e may take ``C_e = floor(r_e T)`` tokens, with the shares r from
  ``LMConfig.capacity_fractions`` so that ``sum_e r_e / g_e = kv_budget``. Experts choose in
  order from the finest (most KV) to the coarsest: expert e takes the C_e not-yet-assigned tokens
  with the highest p_t[e] (the learned importance for that expert); the coarsest expert takes every
  token left. Each token gets exactly one expert and the sequence's KV cost is at most the budget.
* **One-hot auxiliary loss.** Expert choice looks at the whole sequence, which a causal decoder
  cannot do at inference. The loss ``-mean_t log p_t[a_t]`` (a_t the expert-choice assignment,
  held constant) drives p_t towards the one-hot vector of a_t, so that the causal rule below
  reproduces the training assignment (training-inference consistency, the paper's point (3)).
* **Inference: causal argmax under a KV guard.** Token t takes argmax_e p_t[e] among the experts
  that keep the sequence's running KV cost within ``kv_budget x (t + 1) + slack`` (slack =
  ``KV_SLACK_TOKENS`` full-KV tokens); the coarsest expert always fits, so the guard never fails and
  a sequence's KV memory is bounded by the budget at every length.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

KV_SLACK_TOKENS = 4.0  # full-KV tokens a sequence may run ahead of its budget (guard slack)


def expert_choice(
    probs: Tensor,  # [B, T, E] router probabilities
    fractions: tuple[float, ...],  # [E] capacity share per expert, finest first, summing to 1
) -> Tensor:  # [B, T] int64 expert per token
    """Expert-choice assignment within each sequence (see the module docstring)."""
    b, t, e = probs.shape
    assigned = torch.full((b, t), e - 1, dtype=torch.long, device=probs.device)
    taken = torch.zeros((b, t), dtype=torch.bool, device=probs.device)
    for expert in range(e - 1):
        cap = math.floor(fractions[expert] * t + 1e-9)
        if cap == 0:
            continue
        scores = probs[..., expert].detach().masked_fill(taken, -1.0)  # probs >= 0 > -1
        idx = scores.topk(cap, dim=1).indices  # [B, cap]
        assigned.scatter_(1, idx, expert)
        taken.scatter_(1, idx, True)
    return assigned


def expert_capacities(fractions: tuple[float, ...], seq_len: int) -> list[int]:
    """Tokens each expert takes in a sequence of ``seq_len`` (the last takes the remainder)."""
    caps = [math.floor(f * seq_len + 1e-9) for f in fractions[:-1]]
    return [*caps, seq_len - sum(caps)]


def causal_route(
    probs: Tensor,  # [B, T, E] router probabilities
    costs: tuple[float, ...],  # [E] KV per token of each expert relative to MHA (1 / g_e)
    kv_budget: float,  # allowed mean KV per token relative to MHA
    used: Tensor,  # [B] float64 KV already spent by each sequence (units of MHA tokens)
    count: Tensor,  # [B] int64 tokens already routed in each sequence
    valid: Tensor | None = None,  # [B, T] bool; padded positions are routed but not counted
) -> tuple[Tensor, Tensor, Tensor]:  # experts [B, T], used [B], count [B]
    """Inference routing: argmax under the running KV guard (see the module docstring).

    The guard is sequential in t. It runs in numpy (microseconds per position, not the tens of
    a torch call) and skips the loop entirely when the plain argmax never breaks the guard.
    """
    p = probs.detach().double().numpy()  # [B, T, E]
    cost = np.asarray(costs, dtype=np.float64)  # [E]
    slack = KV_SLACK_TOKENS * max(costs)
    step = np.ones(p.shape[:2]) if valid is None else valid.numpy().astype(np.float64)  # [B, T]
    used0, count0 = used.numpy().astype(np.float64), count.numpy().astype(np.float64)
    # Fast path: the unconstrained argmax keeps every prefix within the guard.
    choice = p.argmax(axis=2)  # [B, T]
    spent = np.cumsum(cost[choice] * step, axis=1) + used0[:, None]  # KV after each token
    counted = np.cumsum(step, axis=1) - step + count0[:, None]  # tokens before each token
    limit = kv_budget * (counted + 1) + slack + 1e-9
    if not (spent > limit).any():
        return _route_out(choice, spent[:, -1] if p.shape[1] else used0, counted, step, count0)
    out = np.empty(p.shape[:2], dtype=np.int64)
    run_used, run_count = used0.copy(), count0.copy()
    for i in range(p.shape[1]):
        lim = kv_budget * (run_count + 1) + slack + 1e-9  # [B]
        scores = p[:, i].copy()
        # The coarsest expert always fits (its cost <= kv_budget): its column stays allowed.
        scores[:, :-1][run_used[:, None] + cost[None, :-1] > lim[:, None]] = -1.0
        out[:, i] = scores.argmax(axis=1)
        run_used += cost[out[:, i]] * step[:, i]
        run_count += step[:, i]
    return (
        torch.from_numpy(out),
        torch.from_numpy(run_used),
        torch.from_numpy(run_count.astype(np.int64)),
    )


def route_limit(count: Tensor, kv_budget: float, costs: tuple[float, ...]) -> Tensor:
    """[B] float64 KV a sequence may have spent after its next token, given ``count`` [B] tokens
    before it: the guard of ``causal_route`` (shared by every layer of a decode step)."""
    slack = KV_SLACK_TOKENS * max(costs)
    return kv_budget * (count.double() + 1) + slack + 1e-9


def causal_route_step(
    probs: Tensor,  # [B, E] router probabilities of each row's one new token
    costs: Tensor,  # [E] float64 KV per token of each expert relative to MHA
    used: Tensor,  # [B] float64 KV already spent by each sequence
    limit: Tensor,  # [B] float64 ``route_limit`` of each row
) -> tuple[Tensor, Tensor]:  # experts [B], used [B]
    """``causal_route`` for one token per row (decode), in torch without leaving the tensor.

    Same rule and the same choice: the argmax among the experts the guard allows (the coarsest is
    always allowed). Masking the disallowed experts to -1 changes nothing where the plain argmax
    was allowed, so this equals both of ``causal_route``'s paths.
    """
    over = used[:, None] + costs[None, :] > limit[:, None]  # [B, E]
    over[:, -1] = False
    choice = probs.masked_fill(over, -1.0).argmax(dim=-1)  # probs >= 0 > -1
    return choice, used + costs[choice]


def _route_out(
    choice: np.ndarray, used: np.ndarray, counted: np.ndarray, step: np.ndarray, count0: np.ndarray
) -> tuple[Tensor, Tensor, Tensor]:
    total = count0 + step.sum(axis=1)
    return (
        torch.from_numpy(choice.astype(np.int64)),
        torch.from_numpy(np.asarray(used, dtype=np.float64)),
        torch.from_numpy(total.astype(np.int64)),
    )


def onehot_loss(probs: Tensor, assigned: Tensor) -> Tensor:
    """Mean negative log-probability of the assigned expert (0 when routing is one-hot)."""
    picked = probs.gather(-1, assigned.unsqueeze(-1)).squeeze(-1)  # [B, T]
    return -(picked.clamp_min(1e-9).log()).mean()


def straight_through(assigned: Tensor, probs: Tensor) -> Tensor:
    """One-hot mixing weights [B, T, E] whose gradient flows into ``probs``.

    Forward: exactly the one-hot of ``assigned`` (the model computes what inference computes).
    Backward: d loss / d p_e = <d loss / d kv, kv of expert e>, the first-order gain of moving the
    token towards expert e, which teaches the router which tokens need fine-grained KV.
    """
    hard = torch.nn.functional.one_hot(assigned, probs.shape[-1]).to(probs.dtype)
    return hard + (probs - probs.detach())  # exactly hard: p - p is 0 in floating point
