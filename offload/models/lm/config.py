"""Configuration of the MoE language model and its three attention variants.

The three variants are one code path with different attention experts (``attn_group_sizes``:
query heads per KV head of each attention expert):

| variant | attn_group_sizes | kv_budget (KV per token relative to MHA) |
| --- | --- | --- |
| ``mha``    | (1,)      | 1.0 |
| ``gqa``    | (2,)      | 0.5 (static grouped-query attention) |
| ``mixsga`` | (1, 2, 4) | 0.5 (per-token choice among the three, same budget as ``gqa``) |

(at the default budget 0.5; ``variant_config`` takes other budgets).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Literal

import numpy as np

Variant = Literal["mha", "gqa", "mixsga"]
VARIANTS: tuple[Variant, ...] = ("mixsga", "gqa", "mha")


class LMConfigError(ValueError):
    """A model setting is out of bounds or inconsistent."""


@dataclass(frozen=True)
class LMConfig:
    """Shape of the decoder-only MoE model (pre-norm, RoPE, SwiGLU experts, tied embeddings)."""

    vocab_size: int = 2048  # tokens in the vocabulary, [16, 65536]
    max_seq_len: int = 256  # longest sequence (prompt + output) in tokens, [8, 8192]
    d_model: int = 128  # residual width, divisible by n_heads
    n_layers: int = 4  # transformer blocks, [1, 64]
    n_heads: int = 8  # query heads, [1, 128]
    attn_group_sizes: tuple[int, ...] = (1, 2, 4)  # query heads per KV head, one per expert
    kv_budget: float = 0.5  # mean KV per token relative to MHA, in [1/max(g), 1/min(g)]
    n_experts: int = 8  # MoE feed-forward experts per layer, [1, 64]
    top_k: int = 2  # experts per token, [1, n_experts]
    expert_hidden: int = 128  # SwiGLU hidden width of one expert, [1, 65536]
    rope_theta: float = 10000.0  # RoPE base, > 1
    balance_loss_weight: float = 0.01  # Switch load-balancing loss weight, >= 0
    onehot_loss_weight: float = 0.1  # mixSGA one-hot routing auxiliary loss weight, >= 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "attn_group_sizes", tuple(int(g) for g in self.attn_group_sizes))
        bounds = {
            "vocab_size": (16, 65536),
            "max_seq_len": (8, 8192),
            "n_layers": (1, 64),
            "n_heads": (1, 128),
            "n_experts": (1, 64),
            "top_k": (1, self.n_experts),
            "expert_hidden": (1, 65536),
        }
        for name, (lo, hi) in bounds.items():
            value = getattr(self, name)
            if not lo <= value <= hi:
                raise LMConfigError(f"{name}={value} is out of bounds [{lo}, {hi}]")
        if self.d_model % self.n_heads or self.d_model // self.n_heads % 2:
            raise LMConfigError(
                f"d_model={self.d_model} must be n_heads={self.n_heads} x an even head size (RoPE)"
            )
        groups = self.attn_group_sizes
        if not groups or list(groups) != sorted(set(groups)):
            raise LMConfigError(f"attn_group_sizes={groups} must be distinct and increasing")
        for g in groups:
            if g < 1 or self.n_heads % g or g % groups[0]:
                raise LMConfigError(
                    f"attn_group_sizes={groups}: each must divide n_heads={self.n_heads} "
                    "and be a multiple of the smallest"
                )
        lo, hi = 1.0 / groups[-1], 1.0 / groups[0]
        if not lo - 1e-9 <= self.kv_budget <= hi + 1e-9:
            raise LMConfigError(f"kv_budget={self.kv_budget} is out of bounds [{lo}, {hi}]")
        if self.rope_theta <= 1:
            raise LMConfigError(f"rope_theta={self.rope_theta} must be > 1")
        for name in ("balance_loss_weight", "onehot_loss_weight"):
            if getattr(self, name) < 0:
                raise LMConfigError(f"{name}={getattr(self, name)} must be >= 0")

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    @property
    def n_attn_experts(self) -> int:
        return len(self.attn_group_sizes)

    @property
    def kv_heads(self) -> int:
        """KV heads of the shared projection (the finest expert's)."""
        return self.n_heads // self.attn_group_sizes[0]

    def capacity_fractions(self) -> tuple[float, ...]:
        """Share of tokens each attention expert takes in training (expert-choice capacities).

        The fractions r closest to equal shares (least squares) with sum r = 1 and
        sum r_e / g_e = kv_budget, r >= 0: the budget is met exactly and no expert is starved
        more than the budget forces.
        """
        return capacity_fractions(self.attn_group_sizes, self.kv_budget)

    def kv_bytes_per_token(self, dtype_bytes: int = 4) -> float:
        """KV-cache bytes per token at the budget: 2 (K, V) x layers x heads x head_dim x budget."""
        return 2 * self.n_layers * self.n_heads * self.head_dim * self.kv_budget * dtype_bytes

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LMConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise LMConfigError(f"unknown model settings: {', '.join(unknown)}")
        return cls(**data)


def capacity_fractions(group_sizes: tuple[int, ...], kv_budget: float) -> tuple[float, ...]:
    """Least-squares-closest-to-uniform shares meeting ``sum r/g = kv_budget`` (see LMConfig)."""
    n = len(group_sizes)
    if n == 1:
        return (1.0,)
    cost = 1.0 / np.asarray(group_sizes, dtype=np.float64)
    active = np.ones(n, dtype=bool)
    r = np.zeros(n)
    # Projection of the uniform vector onto the two equality constraints; experts pushed below
    # zero are fixed at zero and the rest re-projected (at most n rounds).
    for _ in range(n):
        a = np.stack([np.ones(active.sum()), cost[active]])  # [2, n_active]
        u = np.full(active.sum(), 1.0 / n)
        b = np.array([1.0, kv_budget])
        if np.linalg.matrix_rank(a) < 2:  # one active expert left: it takes everything
            r = np.where(active, 1.0, 0.0)
            break
        lam = np.linalg.solve(a @ a.T, b - a @ u)
        r = np.zeros(n)
        r[active] = u + a.T @ lam
        if (r >= -1e-12).all():
            break
        active &= r > 0
    r = np.clip(r, 0.0, None)
    return tuple(float(x) for x in r / r.sum())


def variant_config(
    variant: Variant, base: LMConfig | None = None, kv_budget: float = 0.5
) -> LMConfig:
    """The ``base`` shape with the attention of ``variant`` at ``kv_budget`` (module table).

    GQA uses group size g = 1 / kv_budget; mixSGA mixes g / 2, g and 2 g (with g / 2 >= 1, else
    g, 2 g, 4 g) at the same budget; MHA ignores the budget (it is 1).

    Raises:
        LMConfigError: unknown variant, or 1 / kv_budget is not a power of two dividing n_heads.
    """
    base = base or LMConfig()
    if variant == "mha":
        return replace(base, attn_group_sizes=(1,), kv_budget=1.0)
    g = round(1.0 / kv_budget) if kv_budget > 0 else 0
    if g < 1 or abs(g * kv_budget - 1.0) > 1e-9 or g & (g - 1) or base.n_heads % g:
        raise LMConfigError(
            f"kv_budget={kv_budget}: 1/kv_budget must be a power of two dividing "
            f"n_heads={base.n_heads}"
        )
    if variant == "gqa":
        return replace(base, attn_group_sizes=(g,), kv_budget=kv_budget)
    if variant == "mixsga":
        groups = (g // 2, g, 2 * g) if g >= 2 else (g, 2 * g, 4 * g)
        return replace(base, attn_group_sizes=groups, kv_budget=kv_budget)
    raise LMConfigError(f"unknown variant {variant!r}; expected one of {', '.join(VARIANTS)}")
