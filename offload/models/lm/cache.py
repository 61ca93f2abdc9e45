"""The KV cache of a batch of sequences, stored compressed: pooled KV heads in lanes of slots.

For every layer the cache holds padded buffers ``keys[layer]`` and ``values[layer]`` of shape
``[B, lanes, cap, head_dim]`` (``slots.SlotLayout``): a token of attention expert e takes
``he / lanes`` consecutive positions in every lane, one pooled KV head per slot, so a token
costs exactly its expert's KV; ``slots[layer, b]`` positions of row b are valid (the first ones,
in every lane), ``counts[l, e, b]`` counts its tokens per expert, and ``masked[layer]``
``[B, n_heads, cap]`` says which query heads do not read the slot of their lane at each position
(True at every position past the valid ones: one byte per query head and position, H / lanes
bytes per slot, 4 bytes beside a slot's 128 bytes of float32 key and value for mixSGA at
head_dim 16). The order of tokens inside a row does not matter: at decode time every cached
token precedes the query.

A decode step (``append_step``) writes a fixed block of positions per row, whatever the routing
(its expert's slots, then spare ones masked for every head that the next token overwrites), and
attends to all of a row's slots at once: a fixed handful of tensor ops per layer.

Rows can be selected (a finished sequence leaves) and batches concatenated (a new prefill joins
the running batch): continuous batching moves cache rows only at those events, never per step.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from offload.models.lm.slots import SlotLayout

# per-layer tensors that rows (dim 0) and slots (the given dim) index; the fill of new slots
_BUFFERS = {"keys": (2, 0), "values": (2, 0), "masked": (2, True)}


@dataclass
class KVCache:
    """Per layer: pooled KV heads in slots, the heads that read them, valid slots per row."""

    layout: SlotLayout
    keys: list[Tensor]  # [layer] -> [B, lanes, cap, head_dim] one pooled key head per slot
    values: list[Tensor]  # [layer] -> [B, lanes, cap, head_dim]
    masked: list[Tensor]  # [layer] -> [B, n_heads, cap] bool: head h does not read its lane's slot
    slots: Tensor  # [layer, B] int64 valid positions of each row in every lane (the first ones)
    counts: Tensor  # [layer, expert, B] int64 tokens of each row routed to each expert
    kv_used: Tensor  # [layer, B] float64 KV spent per row (units of MHA tokens; routing guard)
    lengths: Tensor  # [B] int64 tokens in each row (the next position)
    # Buffers with spare rows that these buffers are the first B rows of (``gather(consume=True)``);
    # one cache at a time holds it, and only that one may write rows in place.
    rows: RowStore | None = field(default=None, repr=False, compare=False)

    @classmethod
    def empty(
        cls,
        batch: int,
        n_layers: int,
        layout: SlotLayout,
        capacity: int = 16,  # tokens of the widest expert per row before the buffers grow
        dtype: torch.dtype = torch.float32,
    ) -> KVCache:
        cap, dh, lanes = capacity * layout.block, layout.head_dim, layout.lanes
        return cls(
            layout=layout,
            keys=[torch.zeros(batch, lanes, cap, dh, dtype=dtype) for _ in range(n_layers)],
            values=[torch.zeros(batch, lanes, cap, dh, dtype=dtype) for _ in range(n_layers)],
            masked=[
                torch.ones(batch, layout.n_heads, cap, dtype=torch.bool) for _ in range(n_layers)
            ],
            slots=torch.zeros(n_layers, batch, dtype=torch.long),
            counts=torch.zeros(n_layers, len(layout.heads), batch, dtype=torch.long),
            kv_used=torch.zeros(n_layers, batch, dtype=torch.float64),
            lengths=torch.zeros(batch, dtype=torch.long),
        )

    @property
    def batch(self) -> int:
        return int(self.lengths.shape[0])

    def append_tokens(
        self,
        layer: int,
        pooled: list[Tensor],  # [expert] -> [B, T, he, 2 head_dim] keys | values, pooled
        assigned: Tensor,  # [B, T] int64 the expert of each token
        valid: Tensor | None = None,  # [B, T] bool, False on right padding (not stored)
    ) -> None:
        """Prefill (and the reference step, T = 1): stores each valid token's pooled heads at
        the next ``he / lanes`` positions of every lane of its row, in order; one write per
        buffer for all experts (each position a token takes, with its slots in every lane)."""
        layout, dh = self.layout, self.layout.head_dim
        width = layout.widths_t[assigned]  # [B, T] positions of each token
        if valid is not None:
            width = width * valid
        end = self.slots[layer][:, None] + width.cumsum(dim=1)  # [B, T] after each token
        if not end.numel():
            return
        self._ensure(layer, int(end[:, -1].max()))
        stacked = torch.cat(pooled, dim=2) if len(pooled) > 1 else pooled[0]  # [B, T, S, 2 dh]
        rows, cols, at = (layout.block_range < width[..., None]).nonzero(as_tuple=True)  # [M]
        expert = assigned[rows, cols]
        src = stacked[rows[:, None], cols[:, None], layout.block_rows[expert, :, at]]
        pos = (end - width)[rows, cols] + at  # [M] the position in every lane
        self.keys[layer][rows, :, pos] = src[..., :dh]  # [M, lanes, dh]
        self.values[layer][rows, :, pos] = src[..., dh:]
        self.masked[layer][rows, :, pos] = layout.block_masked[expert, :, at]  # [M, H]
        routed = F.one_hot(assigned, len(layout.heads))  # [B, T, E]
        if valid is not None:
            routed = routed * valid[..., None]
        self.counts[layer] += routed.sum(dim=1).T
        self.slots[layer] = end[:, -1]

    def append_step(
        self,
        layer: int,
        pooled: Tensor,  # [B, sum_e he, 2 head_dim] each row's new token pooled for every expert
        assigned: Tensor,  # [B] int64 expert of each row's new token
    ) -> int:  # width: every row's valid positions lie in [0, width)
        """Decode: appends one token per row, ``he / lanes`` positions of its expert per lane, in
        a fixed number of ops (a block of positions per row; the spare ones are masked for every
        head)."""
        layout = self.layout
        before = self.slots[layer]  # [B]
        width = int(before.max()) + layout.block if before.numel() else 0  # one sync per layer
        self._ensure(layer, width)
        rows = torch.arange(self.batch)[:, None, None]
        at = (before[:, None] + layout.block_range)[:, None, :]  # [B, 1, block]
        dh = layout.head_dim
        block = pooled[rows, layout.block_rows[assigned]]  # [B, lanes, block, 2 dh]
        lanes = layout.lane_range[None, :, None]
        self.keys[layer][rows, lanes, at] = block[..., :dh]
        self.values[layer][rows, lanes, at] = block[..., dh:]
        self.masked[layer][rows, layout.head_range[None, :, None], at] = layout.block_masked[
            assigned
        ]  # [B, H, block]
        self.slots[layer] = before + layout.widths_t[assigned]
        self.counts[layer].scatter_add_(0, assigned[None], torch.ones_like(assigned)[None])
        return width

    def _ensure(self, layer: int, needed: int) -> None:
        cap = self.keys[layer].shape[2]
        if needed <= cap:
            return
        new_cap = max(needed, 2 * cap)
        for name, (dim, fill) in _BUFFERS.items():
            old = getattr(self, name)[layer]
            bases = getattr(self.rows, name) if self.rows is not None else None
            shape = list(old.shape)
            shape[0] = bases[layer].shape[0] if bases is not None else old.shape[0]
            shape[dim] = new_cap
            grown = old.new_full(shape, fill)
            grown[: old.shape[0]].narrow(dim, 0, cap).copy_(old)
            if bases is not None:
                bases[layer] = grown
            getattr(self, name)[layer] = grown[: old.shape[0]]

    def row_view(self, layer: int, row: int) -> tuple[Tensor, Tensor, Tensor]:
        """Keys, values [n, head_dim] of a row's n valid slots (all lanes) and the heads reading
        each [n, H] (the reference step reads the cache through this)."""
        p, dh = int(self.slots[layer, row]), self.layout.head_dim
        lanes = self.layout.lane_range[:, None, None]  # [lanes, 1, 1]
        in_lane = self.layout.lane_of_head()[None, None, :] == lanes  # [lanes, 1, H]
        reads = in_lane & ~self.masked[layer][row, :, :p].T[None]  # [lanes, p, H]
        keys = self.keys[layer][row, :, :p].reshape(-1, dh)
        return (
            keys,
            self.values[layer][row, :, :p].reshape(-1, dh),
            reads.reshape(-1, reads.shape[2]),
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
        rows = first.rows if consume else None
        if rows is not None and not rows.fits(parts, sum(sizes)):
            rows = None
        if rows is None and consume:
            rows = RowStore.allocate(parts, sum(sizes))
        if consume:
            first.rows = None  # the new cache holds the store from here
        moves = _moves(first, parts[0][1]) if rows is not None else None

        def fill(name: str, layer: int) -> Tensor:
            dim, pad = _BUFFERS[name]
            srcs = [getattr(c, name)[layer] for c, _ in parts]  # [B_i, ...cap_i...]
            if rows is not None:
                out = getattr(rows, name)[layer]  # [R, ...cap...]
                in_place = out.data_ptr() == srcs[0].data_ptr()
            else:
                shape = list(srcs[0].shape)
                shape[0], shape[dim] = sum(sizes), max(t.shape[dim] for t in srcs)
                out = srcs[0].new_empty(shape)
                in_place = False
            start = 0
            for i, (src, (_, picked), size) in enumerate(zip(srcs, parts, sizes, strict=True)):
                if i == 0 and in_place:
                    if moves is not None:  # rows from ``start`` on move, up to their slots
                        start_row, width = moves[0], moves[1][layer]
                        tail = out.narrow(dim, 0, width)
                        tail[start_row:size] = tail.index_select(0, picked[start_row:])
                else:
                    dst = out[start : start + size]
                    _write(dst, src, picked, dim, pad if rows is None else None)
                start += size
            return out[: sum(sizes)]

        def small(name: str, dim: int) -> Tensor:
            return torch.cat(
                [
                    getattr(c, name) if r is None else getattr(c, name).index_select(dim, r)
                    for c, r in parts
                ],
                dim=dim,
            )

        n_layers = len(first.keys)
        out = KVCache(
            layout=first.layout,
            keys=[fill("keys", i) for i in range(n_layers)],
            values=[fill("values", i) for i in range(n_layers)],
            masked=[fill("masked", i) for i in range(n_layers)],
            slots=small("slots", 1),
            counts=small("counts", 2),
            kv_used=small("kv_used", 1),
            lengths=small("lengths", 0),
            rows=rows,
        )
        if rows is not None:  # rows moved or written into the store's buffers from here on
            in_place = first.keys[0].data_ptr() == rows.keys[0].data_ptr()
            out._mask_past_slots((moves[0] if moves is not None else sizes[0]) if in_place else 0)
        return out

    def _mask_past_slots(self, start: int) -> None:
        """Every slot past a row's valid ones, in rows ``start`` on, is masked for every head: a
        row moved or written into a row store's buffers can leave an earlier row's slots behind
        its own (copies elsewhere keep the invariant: new slots are masked)."""
        for masked, slots in zip(self.masked, self.slots, strict=True):
            past = torch.arange(masked.shape[2])[None, :] >= slots[start:, None]  # [B', cap]
            masked[start:].masked_fill_(past[:, None, :], True)

    def stored_bytes(self) -> Tensor:
        """Bytes of valid K and V held for each row [B] (padding and the head masks
        excluded)."""
        if not self.keys:
            return torch.zeros(self.batch, dtype=torch.long)
        _, lanes, _, dh = self.keys[0].shape
        return self.slots.sum(dim=0) * (lanes * 2 * dh * self.keys[0].element_size())


def _write(dst: Tensor, src: Tensor, picked: Tensor | None, dim: int, pad: object) -> None:
    """dst = src's rows ``picked`` (all where None), slots along ``dim``; ``pad`` (not None):
    dst is uninitialised memory and its slots beyond src's capacity are set to it (padding is
    masked but must be finite: 0 x NaN is NaN; a row store's spare slots hold zeros or earlier
    rows' KV)."""
    if src.shape[dim] < dst.shape[dim]:
        if pad is not None:
            dst.narrow(dim, src.shape[dim], dst.shape[dim] - src.shape[dim]).fill_(pad)
        dst = dst.narrow(dim, 0, src.shape[dim])
    if picked is None:
        dst.copy_(src)
    elif dst.is_contiguous():
        torch.index_select(src, 0, picked, out=dst)  # no temporary copy
    else:
        dst.copy_(src.index_select(0, picked))


def _moves(cache: KVCache, picked: Tensor | None) -> tuple[int, list[int]] | None:
    """For an in-place compaction to rows ``picked`` (ascending): the first row that moves and,
    per layer, the valid slots of the rows that move (the slots worth copying); None if no row
    moves."""
    if picked is None:
        return None
    moved = (picked != torch.arange(picked.numel())).nonzero()
    if not moved.numel():
        return None
    start = int(moved[0, 0])  # rows before the first that left stay where they are
    return start, cache.slots.index_select(1, picked[start:]).amax(dim=1).tolist()


@dataclass
class RowStore:
    """Buffers with spare rows (and the capacity of each) that a cache's buffers are the first
    rows of: joining rows are written into the spare ones instead of copying the batch."""

    keys: list[Tensor]  # [layer] -> [R, lanes, cap, head_dim]
    values: list[Tensor]
    masked: list[Tensor]  # [layer] -> [R, n_heads, cap]

    @staticmethod
    def allocate(parts: list[tuple[KVCache, Tensor | None]], n: int) -> RowStore:
        first = parts[0][0]
        spare = n + max(8, n // 4)  # room for a few steps' net arrivals

        def bases(name: str) -> list[Tensor]:
            dim, pad = _BUFFERS[name]
            out = []
            for layer, t in enumerate(getattr(first, name)):
                shape = list(t.shape)
                shape[0] = spare
                shape[dim] = max(getattr(c, name)[layer].shape[dim] for c, _ in parts)
                out.append(t.new_full(shape, pad))
            return out

        return RowStore(*(bases(name) for name in _BUFFERS))

    def fits(self, parts: list[tuple[KVCache, Tensor | None]], n: int) -> bool:
        """The first part's cache uses these buffers, the ascending rows of ``parts`` fit in its
        rows and capacities, so ``gather`` can work in place."""
        first, picked = parts[0]
        base = self.keys[0]
        if first.keys[0].data_ptr() != base.data_ptr() or n > base.shape[0]:
            return False
        if picked is not None and picked.numel() > 1 and not bool((picked[1:] > picked[:-1]).all()):
            return False
        return all(
            getattr(c, name)[layer].shape[dim] <= getattr(self, name)[layer].shape[dim]
            for c, _ in parts[1:]
            for name, (dim, _) in _BUFFERS.items()
            for layer in range(len(self.keys))
        )
