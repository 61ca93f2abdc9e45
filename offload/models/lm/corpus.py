"""The training corpus: the glosses and example sentences of WordNet 3.0 (Debian ``wordnet-base``).

Source: Princeton WordNet 3.0 as packaged by Debian (``wordnet-base``, version 1:3.0-37, files
``/usr/share/wordnet/data.{noun,verb,adj,adv}``). Licence: the WordNet 3.0 licence (permissive,
BSD-like: use, copy, modify and distribute for any purpose without fee, keeping the copyright
notice and disclaimer; see ``/usr/share/doc/wordnet-base/copyright``). No text is shipped with the
repository; the corpus is rebuilt from the installed package, and its SHA-256 is recorded with
every trained model.

One document = one synset, written as plain English::

    dog, domestic dog, Canis familiaris (noun): a member of the genus Canis ...; "the dog barked
    all night"

Documents are split into train/validation/test by a hash of the synset id (part of speech and
byte offset), so the split is fixed, independent of file order, and never cuts a document.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

WORDNET_DIR = Path("/usr/share/wordnet")
POS_FILES = {"noun": "data.noun", "verb": "data.verb", "adj": "data.adj", "adv": "data.adv"}
SPLITS = ("train", "val", "test")
# Percent of documents per split (by synset-id hash): 90 / 5 / 5.
SPLIT_PERCENT = {"train": 90, "val": 5, "test": 5}
_ADJ_MARKER = re.compile(r"\((?:a|p|ip)\)$")  # adjective position markers, e.g. "able(a)"


class CorpusError(ValueError):
    """The WordNet files are missing or malformed."""


@dataclass(frozen=True)
class Document:
    """One synset as text."""

    doc_id: str  # "<pos>:<byte offset>", unique and stable across Debian rebuilds of 3.0
    text: str  # lemmas, part of speech, gloss and examples, one line


def parse_data_line(line: str, pos: str) -> Document | None:
    """One line of a WordNet ``data.<pos>`` file as a document; None for licence header lines.

    Line format (wndb(5)): ``offset lex_filenum ss_type w_cnt word lex_id [word lex_id ...]
    p_cnt [ptr ...] [frames ...] | gloss``, with w_cnt in hexadecimal.

    Raises:
        CorpusError: the line is neither a header line nor a well-formed synset line.
    """
    if line.startswith("  "):  # the licence header: every line begins with two spaces
        return None
    head, sep, gloss = line.partition(" | ")
    fields = head.split()
    if not sep or len(fields) < 6 or not fields[0].isdigit():
        raise CorpusError(f"malformed WordNet {pos} line: {line[:60]!r}")
    try:
        n_words = int(fields[3], 16)
    except ValueError as err:
        raise CorpusError(f"bad word count {fields[3]!r} in {pos} line {fields[0]}") from err
    words = fields[4 : 4 + 2 * n_words : 2]
    # After the word/lex_id pairs comes the 3-digit pointer count.
    if len(fields) <= 4 + 2 * n_words or not fields[4 + 2 * n_words].isdigit():
        raise CorpusError(f"{pos} line {fields[0]} lists fewer than {n_words} words")
    lemmas = []
    for word in words:
        lemma = _ADJ_MARKER.sub("", word).replace("_", " ")
        if lemma not in lemmas:
            lemmas.append(lemma)
    text = f"{', '.join(lemmas)} ({pos}): {' '.join(gloss.split())}"
    return Document(doc_id=f"{pos}:{fields[0]}", text=text)


def iter_documents(wordnet_dir: Path = WORDNET_DIR) -> Iterator[Document]:
    """Every synset of the four data files, in file order.

    Raises:
        CorpusError: a data file is missing (install Debian's ``wordnet-base``) or malformed.
    """
    for pos, name in POS_FILES.items():
        path = Path(wordnet_dir) / name
        if not path.is_file():
            raise CorpusError(f"{path} not found: install the Debian package wordnet-base")
        with path.open(encoding="latin-1") as fh:
            for line in fh:
                doc = parse_data_line(line.rstrip("\n"), pos)
                if doc is not None:
                    yield doc


def split_of(doc_id: str) -> str:
    """The split a document belongs to, from the SHA-256 of its id (90/5/5 percent)."""
    bucket = int(hashlib.sha256(doc_id.encode()).hexdigest()[:8], 16) % 100
    if bucket < SPLIT_PERCENT["train"]:
        return "train"
    return "val" if bucket < SPLIT_PERCENT["train"] + SPLIT_PERCENT["val"] else "test"


def load_splits(wordnet_dir: Path = WORDNET_DIR) -> dict[str, list[str]]:
    """Document texts per split ("train", "val", "test"), each in file order."""
    out: dict[str, list[str]] = {s: [] for s in SPLITS}
    for doc in iter_documents(wordnet_dir):
        out[split_of(doc.doc_id)].append(doc.text)
    return out


def corpus_sha256(wordnet_dir: Path = WORDNET_DIR) -> str:
    """SHA-256 over the four data files (in the order of ``POS_FILES``): the corpus identity."""
    digest = hashlib.sha256()
    for name in POS_FILES.values():
        path = Path(wordnet_dir) / name
        if not path.is_file():
            raise CorpusError(f"{path} not found: install the Debian package wordnet-base")
        digest.update(path.read_bytes())
    return digest.hexdigest()
