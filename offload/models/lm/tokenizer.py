"""A small byte-level BPE tokenizer (Hugging Face ``tokenizers``), trained on the training split.

Byte-level BPE (GPT-2 style): every string encodes, nothing maps to an unknown token. One special
token, ``<|endoftext|>`` (id 0), separates documents in training and ends generation.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

EOS_TOKEN = "<|endoftext|>"


class TokenizerError(ValueError):
    """The tokenizer file is missing or unusable, or a setting is out of bounds."""


def train_bpe(texts: Iterable[str], vocab_size: int = 2048) -> Tokenizer:
    """A byte-level BPE with ``vocab_size`` entries (256 bytes + merges + the EOS token).

    Raises:
        TokenizerError: vocab_size outside [300, 65536].
    """
    if not 300 <= vocab_size <= 65536:
        raise TokenizerError(f"vocab_size={vocab_size} is out of bounds [300, 65536]")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS_TOKEN],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return tok


def load_tokenizer(path: str | Path) -> Tokenizer:
    """A tokenizer saved with ``Tokenizer.save`` (tokenizer.json).

    Raises:
        TokenizerError: the file is missing, unreadable, or has no EOS token.
    """
    path = Path(path)
    if not path.is_file():
        raise TokenizerError(f"tokenizer file {path} not found")
    try:
        tok = Tokenizer.from_file(str(path))
    except Exception as err:  # tokenizers raises a bare Exception on a bad file
        raise TokenizerError(f"cannot read tokenizer {path}: {err}") from err
    if tok.token_to_id(EOS_TOKEN) is None:
        raise TokenizerError(f"tokenizer {path} has no {EOS_TOKEN} token")
    return tok


def eos_id(tok: Tokenizer) -> int:
    """The id of ``<|endoftext|>``."""
    value = tok.token_to_id(EOS_TOKEN)
    if value is None:
        raise TokenizerError(f"tokenizer has no {EOS_TOKEN} token")
    return int(value)
