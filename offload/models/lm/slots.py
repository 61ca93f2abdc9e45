"""Where a mixSGA token's pooled KV heads go in the cache, and which query heads read them.

The cache stores one pooled KV head per *slot* (``cache.KVCache``): a token of attention expert
e (``he`` KV heads) fills ``he`` consecutive slots of its row, so it costs exactly its expert's
KV. Query head h reads pooled head ``h // (n_heads / he)`` of the token (the GQA rule within the
expert); the cache keeps, per slot, which heads do *not* read it (``masked``). One decode step
then scores all of a row's query heads against all its slots in one product and masks the rest:
every head still reads exactly one slot of each cached token, so the softmax is the per-expert
one.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


class SlotLayoutError(ValueError):
    """KV head counts that do not fit the query heads."""


@dataclass(frozen=True, eq=False)
class SlotLayout:
    """Tables of one model's attention experts (the same for every layer)."""

    n_heads: int
    heads: tuple[int, ...]  # [E] KV heads (slots) per token of each expert
    head_dim: int

    def __post_init__(self) -> None:
        if not self.heads or any(h < 1 or self.n_heads % h for h in self.heads):
            raise SlotLayoutError(
                f"KV heads per expert {self.heads} must each divide n_heads={self.n_heads}"
            )
        offsets = [sum(self.heads[:e]) for e in range(len(self.heads))]
        width = max(self.heads)
        rows = torch.zeros(len(self.heads), width, dtype=torch.long)
        masked = torch.ones(len(self.heads), width, self.n_heads, dtype=torch.bool)
        for e, (he, off) in enumerate(zip(self.heads, offsets, strict=True)):
            group = self.n_heads // he
            rows[e] = off + torch.arange(width).clamp(max=he - 1)
            for r in range(he):
                masked[e, r, r * group : (r + 1) * group] = False
        put = object.__setattr__  # frozen: derived tables are set once here
        put(self, "block", width)  # slots a decode step writes per row (its expert uses he)
        put(self, "block_rows", rows)  # [E, block] stacked pooled head written to each slot
        put(self, "block_masked", masked)  # [E, block, H] heads that do not read it (spare: all)
        put(self, "block_range", torch.arange(width))
        put(self, "heads_t", torch.tensor(self.heads, dtype=torch.long))

    def masked_of(self, expert: int) -> Tensor:
        """[he, H] True where query head h does not read the expert's pooled head r."""
        return self.block_masked[expert, : self.heads[expert]]
