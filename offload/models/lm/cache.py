"""The KV cache of a batch of sequences, stored compressed per attention expert.

For every layer and attention expert e the cache holds a padded buffer ``[B, kv_heads_e, cap,
head_dim]`` of the keys (and values) of the tokens routed to e, so a token costs exactly its
expert's KV heads (``n_heads / g_e``); ``counts[l][e][b]`` tokens of row b are valid. The order of
tokens inside a buffer does not matter: at decode time every cached token precedes the query.

Rows can be selected (a finished sequence leaves) and batches concatenated (a new prefill joins
the running batch): continuous batching moves cache rows only at those events, never per step.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class KVCache:
    """Per layer, per attention expert: keys, values and valid counts of each row."""

    keys: list[list[Tensor]]  # [layer][expert] -> [B, kv_heads_e, cap, head_dim]
    values: list[list[Tensor]]  # same shapes as keys
    counts: list[list[Tensor]]  # [layer][expert] -> [B] int64 valid tokens per row
    kv_used: Tensor  # [layer, B] float64 KV spent per row (units of MHA tokens; routing guard)
    lengths: Tensor  # [B] int64 tokens in each row (the next position)

    @classmethod
    def empty(
        cls,
        batch: int,
        n_layers: int,
        kv_heads: tuple[int, ...],  # [E] KV heads of each attention expert
        head_dim: int,
        capacity: int = 16,
        dtype: torch.dtype = torch.float32,
    ) -> KVCache:
        def buffers() -> list[list[Tensor]]:
            return [
                [torch.zeros(batch, h, capacity, head_dim, dtype=dtype) for h in kv_heads]
                for _ in range(n_layers)
            ]

        counts = [[torch.zeros(batch, dtype=torch.long) for _ in kv_heads] for _ in range(n_layers)]
        return cls(
            keys=buffers(),
            values=buffers(),
            counts=counts,
            kv_used=torch.zeros(n_layers, batch, dtype=torch.float64),
            lengths=torch.zeros(batch, dtype=torch.long),
        )

    @property
    def batch(self) -> int:
        return int(self.lengths.shape[0])

    def append(
        self,
        layer: int,
        expert: int,
        rows: Tensor,  # [N] int64 row of each new token
        k: Tensor,  # [N, kv_heads_e, head_dim]
        v: Tensor,  # [N, kv_heads_e, head_dim]
        one_per_row: bool = False,  # the caller guarantees distinct rows (decode)
    ) -> None:
        """Stores N tokens of one expert; several tokens may go to the same row (prefill)."""
        if rows.numel() == 0:
            return
        count = self.counts[layer][expert]
        slots = count[rows]
        if one_per_row:  # decode: each row appends one token (the hot path: a few ops)
            self._ensure(layer, expert, int(count.max()) + 1)
        else:
            # Slot of each token: the row's count plus its rank among this call's tokens of
            # that row.
            order = torch.argsort(rows, stable=True)
            sorted_rows = rows[order]
            first = torch.searchsorted(sorted_rows, sorted_rows, side="left")
            rank = torch.empty_like(rows)
            rank[order] = torch.arange(rows.numel()) - first
            slots = slots + rank
            self._ensure(layer, expert, int(slots.max()) + 1)
        self.keys[layer][expert][rows, :, slots] = k
        self.values[layer][expert][rows, :, slots] = v
        count.index_add_(0, rows, torch.ones_like(rows))

    def _ensure(self, layer: int, expert: int, needed: int) -> None:
        cap = self.keys[layer][expert].shape[2]
        if needed <= cap:
            return
        new_cap = max(needed, 2 * cap)
        for store in (self.keys, self.values):
            old = store[layer][expert]
            grown = old.new_zeros(old.shape[0], old.shape[1], new_cap, old.shape[3])
            grown[:, :, :cap] = old
            store[layer][expert] = grown

    def view(self, layer: int, expert: int) -> tuple[Tensor, Tensor, Tensor]:
        """Keys, values [B, kv_heads_e, n_max, head_dim] and a validity mask [B, n_max]."""
        count = self.counts[layer][expert]
        n_max = int(count.max()) if count.numel() else 0
        mask = torch.arange(n_max)[None, :] < count[:, None]
        return (
            self.keys[layer][expert][:, :, :n_max],
            self.values[layer][expert][:, :, :n_max],
            mask,
        )

    def select(self, rows: Tensor | list[int]) -> KVCache:
        """A cache of the given rows only (e.g. without the finished sequences)."""
        rows = torch.as_tensor(rows, dtype=torch.long)
        return KVCache(
            keys=[[t[rows] for t in layer] for layer in self.keys],
            values=[[t[rows] for t in layer] for layer in self.values],
            counts=[[c[rows] for c in layer] for layer in self.counts],
            kv_used=self.kv_used[:, rows],
            lengths=self.lengths[rows],
        )

    @staticmethod
    def concat(caches: list[KVCache]) -> KVCache:
        """One cache with the rows of all ``caches`` in order (buffers padded to a common size)."""
        caches = [c for c in caches if c.batch > 0] or caches[:1]

        def cat(store: str, layer: int, expert: int) -> Tensor:
            parts = [getattr(c, store)[layer][expert] for c in caches]
            cap = max(p.shape[2] for p in parts)
            padded = [
                torch.nn.functional.pad(p, (0, 0, 0, cap - p.shape[2])) if p.shape[2] < cap else p
                for p in parts
            ]
            return torch.cat(padded, dim=0)

        n_layers, n_experts = len(caches[0].keys), len(caches[0].keys[0])
        return KVCache(
            keys=[[cat("keys", i, e) for e in range(n_experts)] for i in range(n_layers)],
            values=[[cat("values", i, e) for e in range(n_experts)] for i in range(n_layers)],
            counts=[
                [torch.cat([c.counts[i][e] for c in caches]) for e in range(n_experts)]
                for i in range(n_layers)
            ],
            kv_used=torch.cat([c.kv_used for c in caches], dim=1),
            lengths=torch.cat([c.lengths for c in caches]),
        )

    def stored_bytes(self) -> Tensor:
        """Bytes of valid K and V held for each row [B] (padding excluded)."""
        total = torch.zeros(self.batch, dtype=torch.long)
        for layer_keys, layer_counts in zip(self.keys, self.counts, strict=True):
            for k, count in zip(layer_keys, layer_counts, strict=True):
                total += 2 * count * k.shape[1] * k.shape[3] * k.element_size()
        return total
