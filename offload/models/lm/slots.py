"""Where a mixSGA token's pooled KV heads go in the cache, and which query heads read them.

The cache (``cache.KVCache``) stores pooled KV heads in *slots* arranged in ``lanes`` (the
greatest common divisor of the experts' KV head counts: 2 for mixSGA's 8 / 4 / 2, 8 for MHA,
4 for static GQA at half the KV): lane s serves query heads ``s * H / lanes`` up to the next
lane's. A token of attention expert e (``he`` pooled KV heads) takes ``he / lanes`` consecutive
positions in every lane, its pooled head r in lane ``r // (he / lanes)`` (query head h reads
pooled head ``h // (H / he)``, the GQA rule within the expert, and those heads lie in one lane),
so it costs exactly its expert's KV. The cache keeps, per query head and position, whether the
head does *not* read the slot of its lane there (``masked``). A decode step then scores each
lane's query heads against all of the lane's slots in one batched product and masks the rest:
every head reads exactly one slot of every cached token, so the softmax is the per-expert one.
With one expert (MHA, static GQA) every lane position holds one token's head and no score is
masked but padding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import reduce

import torch
from torch import Tensor


class SlotLayoutError(ValueError):
    """KV head counts that do not fit the query heads."""


@dataclass(frozen=True, eq=False)
class SlotLayout:
    """Tables of one model's attention experts (the same for every layer)."""

    n_heads: int
    heads: tuple[int, ...]  # [E] pooled KV heads per token of each expert
    head_dim: int

    def __post_init__(self) -> None:
        if not self.heads or any(h < 1 or self.n_heads % h for h in self.heads):
            raise SlotLayoutError(
                f"KV heads per expert {self.heads} must each divide n_heads={self.n_heads}"
            )
        lanes = reduce(math.gcd, self.heads)
        widths = tuple(he // lanes for he in self.heads)  # positions per lane of one token
        block = max(widths)
        offsets = [sum(self.heads[:e]) for e in range(len(self.heads))]
        rows = torch.zeros(len(self.heads), lanes, block, dtype=torch.long)
        masked = torch.ones(len(self.heads), self.n_heads, block, dtype=torch.bool)
        for e, (he, w, off) in enumerate(zip(self.heads, widths, offsets, strict=True)):
            group = self.n_heads // he  # query heads per pooled head
            for h in range(self.n_heads):
                r = h // group  # the pooled head query head h reads: lane h // (H / lanes)
                masked[e, h, r % w] = False
            for s in range(lanes):
                rows[e, s] = off + s * w + torch.arange(block).clamp(max=w - 1)
        put = object.__setattr__  # frozen: derived tables are set once here
        put(self, "lanes", lanes)
        put(self, "widths", widths)
        put(self, "block", block)  # positions a decode step writes per lane (its expert: w)
        put(self, "block_rows", rows)  # [E, lanes, block] stacked pooled head at each slot
        put(self, "block_masked", masked)  # [E, H, block] heads that do not read it (spare: all)
        put(self, "block_range", torch.arange(block))
        put(self, "lane_range", torch.arange(lanes))
        put(self, "head_range", torch.arange(self.n_heads))
        put(self, "widths_t", torch.tensor(widths, dtype=torch.long))

    def masked_of(self, expert: int) -> Tensor:
        """[H, w] True where query head h does not read the expert's slot w of h's lane."""
        return self.block_masked[expert, :, : self.widths[expert]]

    def lane_of_head(self) -> Tensor:
        """[H] the lane each query head reads."""
        return self.head_range // (self.n_heads // self.lanes)
