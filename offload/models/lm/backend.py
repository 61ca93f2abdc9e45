"""What the token-level engine needs from a language model, and the adapter for ``MoELM``.

A backend runs batched prefill and decode over an opaque per-batch state (the KV cache), can
drop rows (finished sequences) and join states (new prefills), states how much KV memory a
sequence of n tokens may take, and encodes/decodes text. ``MoEBackend.select`` defers its copy
to the ``concat`` that follows it in the same engine step, and that concat consumes its inputs
(``KVCache.gather(consume=True)``): the running batch's buffers have spare rows, rows that leave
are compacted in place and rows that join are written into the spare ones, so a step copies
only the rows that move, not the whole KV cache. ``hf.HFBackend`` implements the same
protocol for a local Hugging Face checkpoint.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from tokenizers import Tokenizer
from torch import Tensor

from offload.models.lm.cache import KVCache
from offload.models.lm.model import MoELM
from offload.models.lm.routing import KV_SLACK_TOKENS
from offload.models.lm.tokenizer import eos_id


class LMBackend(Protocol):
    """The engine's view of a model (who calls it: ``engine.Engine.step``, once per step)."""

    name: str  # model id shown by /v1/models
    max_seq_len: int  # prompt + generated tokens per sequence
    eos_id: int | None  # generation stops at this token (None: only at max_tokens)
    supports_brownout: bool

    def kv_bytes_for(self, n_tokens: int) -> int:
        """Worst-case KV-cache bytes of one sequence of ``n_tokens`` tokens."""
        ...

    def prefill(self, prompts: list[list[int]]) -> tuple[Tensor, Any]:
        """Next-token logits [B, V] after each prompt, and the new batch state."""
        ...

    def decode(self, tokens: Tensor, state: Any) -> Tensor:
        """Appends tokens [B] (one per row) to ``state``; next-token logits [B, V]."""
        ...

    def select(self, state: Any, rows: list[int]) -> Any: ...

    def concat(self, states: list[Any]) -> Any: ...

    def set_brownout(self, tau: float) -> None: ...

    def encode(self, text: str) -> list[int]: ...

    def decode_text(self, ids: list[int]) -> str: ...


@dataclass
class Selection:
    """Rows of a cache not copied yet (``MoEBackend.select``); rows None: all of them."""

    cache: KVCache
    rows: Tensor | None  # [n] int64


class MoEBackend:
    """``MoELM`` with its BPE tokenizer behind the ``LMBackend`` protocol."""

    supports_brownout = True

    def __init__(self, model: MoELM, tokenizer: Tokenizer, name: str = "robomr-moe") -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.name = name
        self.max_seq_len = model.cfg.max_seq_len
        self.eos_id = eos_id(tokenizer)
        cfg = model.cfg
        self._full_token_bytes = 2 * cfg.n_layers * cfg.n_heads * cfg.head_dim * 4  # MHA, fp32
        # Worst case under the mixSGA routing guard: budget x n plus the guard's slack
        # (``routing.causal_route``); one attention expert costs exactly the budget per token.
        g0 = cfg.attn_group_sizes[0]
        self._slack = KV_SLACK_TOKENS / g0 if cfg.n_attn_experts > 1 else 0.0
        self._max_cost = 1.0 / g0

    def kv_bytes_for(self, n_tokens: int) -> int:
        units = min(self.model.cfg.kv_budget * n_tokens + self._slack, self._max_cost * n_tokens)
        return math.ceil(units * self._full_token_bytes)

    def prefill(self, prompts: list[list[int]]) -> tuple[Tensor, KVCache]:
        lengths = torch.tensor([len(p) for p in prompts])
        tokens = torch.zeros(len(prompts), int(lengths.max()), dtype=torch.long)
        for i, p in enumerate(prompts):
            tokens[i, : len(p)] = torch.tensor(p)
        return self.model.prefill(tokens, lengths)

    def decode(self, tokens: Tensor, state: KVCache | Selection) -> Tensor:
        if isinstance(state, Selection):  # a selection no concat followed (an abort)
            state.cache, state.rows = state.cache.select(state.rows), None
            return self.model.decode(tokens, state.cache)
        return self.model.decode(tokens, state)

    def select(self, state: KVCache | Selection, rows: list[int]) -> Selection:
        """Deferred: the rows are copied by the ``concat`` that follows in the same step."""
        picked = torch.as_tensor(rows, dtype=torch.long)
        if isinstance(state, Selection):
            if state.rows is not None:
                picked = state.rows[picked]
            return Selection(state.cache, picked)
        return Selection(state, picked)

    def concat(self, states: list[KVCache | Selection]) -> KVCache:
        return KVCache.gather(
            [(s.cache, s.rows) if isinstance(s, Selection) else (s, None) for s in states],
            consume=True,  # the engine replaces its state with the result
        )

    def set_brownout(self, tau: float) -> None:
        self.model.set_brownout(tau)

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text).ids)

    def decode_text(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids)
