"""The KV cache of a batch of sequences, stored compressed per attention expert.

For every layer and attention expert e the cache holds a padded buffer ``[B, kv_heads_e, cap,
head_dim]`` of the keys (and values) of the tokens routed to e, so a token costs exactly its
expert's KV heads (``n_heads / g_e``); ``counts[l, e, b]`` tokens of row b are valid. The order of
tokens inside a buffer does not matter: at decode time every cached token precedes the query.

A decode step (``append_step``) writes each row's new token at its slot in every expert's buffer
and counts it only in the expert it was routed to: the write is a fixed handful of tensor ops per
expert whatever the routing (no per-expert gather of rows), and a slot written but not counted is
padding that the next token of that expert overwrites.

Rows can be selected (a finished sequence leaves) and batches concatenated (a new prefill joins
the running batch): continuous batching moves cache rows only at those events, never per step.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor


@dataclass
class KVCache:
    """Per layer, per attention expert: keys, values and valid counts of each row."""

    keys: list[list[Tensor]]  # [layer][expert] -> [B, kv_heads_e, cap, head_dim]
    values: list[list[Tensor]]  # same shapes as keys
    counts: Tensor  # [layer, expert, B] int64 valid tokens of each row in each expert's buffer
    kv_used: Tensor  # [layer, B] float64 KV spent per row (units of MHA tokens; routing guard)
    lengths: Tensor  # [B] int64 tokens in each row (the next position)
    # Buffers with spare rows that keys/values are the first B rows of (``gather(consume=True)``);
    # one cache at a time holds it, and only that one may write rows in place.
    rows: RowStore | None = field(default=None, repr=False, compare=False)

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

        return cls(
            keys=buffers(),
            values=buffers(),
            counts=torch.zeros(n_layers, len(kv_heads), batch, dtype=torch.long),
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

    def append_tokens(
        self,
        layer: int,
        expert: int,
        mask: Tensor,  # [B, T] bool: the tokens of expert e, in order within each row
        kv: Tensor,  # [B, T, kv_heads_e, 2 head_dim] keys | values of every position
    ) -> None:
        """Prefill: stores the masked tokens of each row after the row's valid ones, in order
        (what ``append`` does for the same tokens, with slots from one running count)."""
        rows, cols = mask.nonzero(as_tuple=True)
        if rows.numel() == 0:
            return
        count = self.counts[layer][expert]
        rank = mask.cumsum(dim=1)  # [B, T] tokens of the row up to and including each one
        self._ensure(layer, expert, int((count + rank[:, -1]).max()))
        slots = count[rows] + rank[rows, cols] - 1
        picked = kv[rows, cols]  # [N, kv_heads_e, 2 head_dim]
        dh = self.keys[layer][expert].shape[3]
        self.keys[layer][expert][rows, :, slots] = picked[..., :dh]
        self.values[layer][expert][rows, :, slots] = picked[..., dh:]
        count += rank[:, -1]

    def append_step(
        self,
        layer: int,
        k: list[Tensor],  # [expert] -> [B, kv_heads_e, head_dim] each row's new token, pooled
        v: list[Tensor],  # same shapes as k
        assigned: Tensor,  # [B] int64 expert of each row's new token
    ) -> list[int]:  # [expert] bound on valid tokens per row: slice width for ``view_step``
        """Decode: appends one token per row, counted in the expert ``assigned`` names."""
        counts = self.counts[layer]  # [E, B], a view: updated in place
        before = counts.amax(dim=1).tolist()  # one sync per layer, not one per expert
        rows = torch.arange(self.batch)
        for e, (k_e, v_e) in enumerate(zip(k, v, strict=True)):
            self._ensure(layer, e, before[e] + 1)
            slot = counts[e]  # [B] every row's next free slot in expert e
            self.keys[layer][e][rows, :, slot] = k_e
            self.values[layer][e][rows, :, slot] = v_e
        counts.scatter_add_(0, assigned[None], torch.ones_like(assigned)[None])
        return [n + 1 for n in before]

    def _ensure(self, layer: int, expert: int, needed: int) -> None:
        cap = self.keys[layer][expert].shape[2]
        if needed <= cap:
            return
        new_cap = max(needed, 2 * cap)
        for name in ("keys", "values"):
            old = getattr(self, name)[layer][expert]
            bases = getattr(self.rows, name) if self.rows is not None else None
            n_rows = bases[layer][expert].shape[0] if bases is not None else old.shape[0]
            grown = old.new_zeros(n_rows, old.shape[1], new_cap, old.shape[3])
            grown[: old.shape[0], :, :cap] = old
            if bases is not None:
                bases[layer][expert] = grown
            getattr(self, name)[layer][expert] = grown[: old.shape[0]]

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
        return KVCache.gather([(self, torch.as_tensor(rows, dtype=torch.long))])

    @staticmethod
    def concat(caches: list[KVCache]) -> KVCache:
        """One cache with the rows of all ``caches`` in order (buffers padded to a common size).

        A single cache is returned as it is, not copied: the engine joins its running batch with
        the new prefills every step, usually none.
        """
        return KVCache.gather([(c, None) for c in caches])

    @staticmethod
    def gather(parts: list[tuple[KVCache, Tensor | None]], consume: bool = False) -> KVCache:
        """The given rows (all where None) of several caches in order, copied once.

        ``select`` then ``concat`` (a sequence finished and a prefill joined in the same engine
        step) is one call, so the running batch's buffers are copied once, not twice. Buffers
        are padded with zeros to the largest capacity among the parts.

        ``consume`` (the engine's step: the parts are not used again): the result gets spare
        rows, and when the first part holds spare rows itself, its kept rows are compacted in
        place (only those after the first row that left move) and the other parts are written
        after them, so the running batch is not copied at all when rows only join.
        """
        parts = [(c, r) for c, r in parts if (c.batch if r is None else r.numel())] or parts[:1]
        if len(parts) == 1 and parts[0][1] is None:
            return parts[0][0]
        sizes = [c.batch if r is None else int(r.numel()) for c, r in parts]
        first = parts[0][0]
        n_layers, n_experts = len(first.keys), len(first.keys[0])
        rows = first.rows if consume else None
        if rows is not None and not rows.fits(parts, sum(sizes)):
            rows = None
        if rows is None and consume:
            rows = RowStore.allocate(parts, sum(sizes))
        if consume:
            first.rows = None  # the new cache holds the store from here
        moves = _moves(first, parts[0][1]) if rows is not None else None

        def fill(name: str, layer: int, expert: int) -> Tensor:
            srcs = [getattr(c, name)[layer][expert] for c, _ in parts]  # [B_i, he, cap_i, dh]
            if rows is not None:
                out = getattr(rows, name)[layer][expert]  # [R, he, cap, dh]
                in_place = out.data_ptr() == srcs[0].data_ptr()
            else:
                cap = max(t.shape[2] for t in srcs)
                out = srcs[0].new_empty(sum(sizes), srcs[0].shape[1], cap, srcs[0].shape[3])
                in_place = False
            start = 0
            for i, (src, (_, picked), size) in enumerate(zip(srcs, parts, sizes, strict=True)):
                if i == 0 and in_place:
                    if moves is not None:  # rows from ``start`` on move, up to their counts
                        start_row, width = moves[0], moves[1][layer][expert]
                        tail = out[:, :, :width]
                        tail[start_row:size] = tail.index_select(0, picked[start_row:])
                else:
                    _write(out[start : start + size], src, picked, zero_tail=rows is None)
                start += size
            return out[: sum(sizes)]

        def small(field: str, dim: int) -> Tensor:
            return torch.cat(
                [
                    getattr(c, field) if r is None else getattr(c, field).index_select(dim, r)
                    for c, r in parts
                ],
                dim=dim,
            )

        return KVCache(
            keys=[[fill("keys", i, e) for e in range(n_experts)] for i in range(n_layers)],
            values=[[fill("values", i, e) for e in range(n_experts)] for i in range(n_layers)],
            counts=small("counts", 2),
            kv_used=small("kv_used", 1),
            lengths=small("lengths", 0),
            rows=rows,
        )

    def stored_bytes(self) -> Tensor:
        """Bytes of valid K and V held for each row [B] (padding excluded)."""
        total = torch.zeros(self.batch, dtype=torch.long)
        for layer_keys, layer_counts in zip(self.keys, self.counts, strict=True):
            for k, count in zip(layer_keys, layer_counts, strict=True):
                total += 2 * count * k.shape[1] * k.shape[3] * k.element_size()
        return total


def _write(dst: Tensor, src: Tensor, picked: Tensor | None, zero_tail: bool) -> None:
    """dst [n, he, cap, dh] = src's rows ``picked`` (all where None); ``zero_tail``: dst is
    uninitialised memory and its slots beyond src's capacity are zeroed (padding is masked but
    must be finite: 0 x NaN is NaN; a row store's spare slots hold zeros or earlier rows' KV)."""
    if src.shape[2] < dst.shape[2]:
        if zero_tail:
            dst[:, :, src.shape[2] :] = 0
        dst = dst[:, :, : src.shape[2]]
    if picked is None:
        dst.copy_(src)
    elif dst.is_contiguous():
        torch.index_select(src, 0, picked, out=dst)  # no temporary copy
    else:
        dst.copy_(src.index_select(0, picked))


def _moves(cache: KVCache, picked: Tensor | None) -> tuple[int, list[list[int]]] | None:
    """For an in-place compaction to rows ``picked`` (ascending): the first row that moves and,
    per layer and expert, the valid tokens of the rows that move (the slots worth copying);
    None if no row moves."""
    if picked is None:
        return None
    moved = (picked != torch.arange(picked.numel())).nonzero()
    if not moved.numel():
        return None
    start = int(moved[0, 0])  # rows before the first that left stay where they are
    return start, cache.counts.index_select(2, picked[start:]).amax(dim=2).tolist()


@dataclass
class RowStore:
    """Buffers with spare rows (and the capacity of each) that a cache's keys and values are the
    first rows of: joining rows are written into the spare ones instead of copying the batch."""

    keys: list[list[Tensor]]  # [layer][expert] -> [R, kv_heads_e, cap, head_dim]
    values: list[list[Tensor]]

    @staticmethod
    def allocate(parts: list[tuple[KVCache, Tensor | None]], n: int) -> RowStore:
        first = parts[0][0]
        spare = n + max(8, n // 4)  # room for a few steps' net arrivals

        def bases(name: str) -> list[list[Tensor]]:
            out = []
            for layer, tensors in enumerate(getattr(first, name)):
                row = []
                for expert, t in enumerate(tensors):
                    cap = max(getattr(c, name)[layer][expert].shape[2] for c, _ in parts)
                    row.append(t.new_zeros(spare, t.shape[1], cap, t.shape[3]))
                out.append(row)
            return out

        return RowStore(bases("keys"), bases("values"))

    def fits(self, parts: list[tuple[KVCache, Tensor | None]], n: int) -> bool:
        """The first part's cache uses these buffers, the ascending rows of ``parts`` fit in its
        rows and capacities, so ``gather`` can work in place."""
        first, picked = parts[0]
        base = self.keys[0][0]
        if first.keys[0][0].data_ptr() != base.data_ptr() or n > base.shape[0]:
            return False
        if picked is not None and picked.numel() > 1 and not bool((picked[1:] > picked[:-1]).all()):
            return False
        return all(
            getattr(c, name)[layer][e].shape[2] <= getattr(self, name)[layer][e].shape[2]
            for c, _ in parts[1:]
            for name in ("keys", "values")
            for layer in range(len(self.keys))
            for e in range(len(self.keys[0]))
        )
