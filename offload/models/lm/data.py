"""Token streams of the corpus splits and the windows cut from them for training and evaluation.

Each split is one stream: the split's documents in corpus order, each followed by the EOS token
(so the model learns where a document ends). Training draws non-overlapping windows of
``seq_len + 1`` tokens in a seeded random order (a new offset and order every epoch); evaluation
uses consecutive windows that overlap by one token, so every token but the stream's first is
predicted exactly once.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from tokenizers import Tokenizer
from torch import Tensor

from offload.models.lm.tokenizer import eos_id


@dataclass(frozen=True)
class TokenSplits:
    """int32 token streams per split."""

    train: np.ndarray  # [N_train]
    val: np.ndarray  # [N_val]
    test: np.ndarray  # [N_test]

    def __getitem__(self, name: str) -> np.ndarray:
        return getattr(self, name)


def encode_stream(tok: Tokenizer, texts: list[str]) -> np.ndarray:
    """Documents -> one int32 stream, EOS after each document."""
    eos = eos_id(tok)
    parts = []
    # In chunks: an Encoding carries offsets, masks and strings besides the ids; holding 100k of
    # them at once costs about a gigabyte.
    for start in range(0, len(texts), 4096):
        for enc in tok.encode_batch(texts[start : start + 4096]):
            parts.append(np.asarray([*enc.ids, eos], dtype=np.int32))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int32)


def encode_splits(tok: Tokenizer, splits: dict[str, list[str]]) -> TokenSplits:
    return TokenSplits(
        **{name: encode_stream(tok, splits[name]) for name in ("train", "val", "test")}
    )


def train_batches(
    stream: np.ndarray, seq_len: int, batch_size: int, seed: int
) -> Iterator[Tensor]:  # endless [batch_size, seq_len + 1] int64
    """Seeded random non-overlapping windows; each epoch a new random offset and order."""
    rng = np.random.default_rng(seed)
    width = seq_len + 1
    if len(stream) < width * batch_size:
        raise ValueError(
            f"training stream of {len(stream)} tokens is shorter than one batch "
            f"({batch_size} x {width})"
        )
    while True:
        offset = int(rng.integers(0, width))
        n = (len(stream) - offset) // width
        windows = stream[offset : offset + n * width].reshape(n, width)
        order = rng.permutation(n)
        for start in range(0, n - batch_size + 1, batch_size):
            yield torch.from_numpy(windows[order[start : start + batch_size]].astype(np.int64))


def eval_windows(
    stream: np.ndarray, seq_len: int, max_tokens: int | None = None
) -> Tensor:  # [W, seq_len + 1] int64
    """Consecutive windows overlapping by one token (the last partial window is dropped)."""
    if max_tokens is not None:
        stream = stream[: max_tokens + 1]
    n = (len(stream) - 1) // seq_len
    idx = np.arange(n)[:, None] * seq_len + np.arange(seq_len + 1)[None, :]
    return torch.from_numpy(stream[idx].astype(np.int64))
