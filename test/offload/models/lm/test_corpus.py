"""The WordNet corpus reader and the document split."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from offload.models.lm.corpus import (
    POS_FILES,
    CorpusError,
    iter_documents,
    parse_data_line,
    split_of,
)

NOUN = (
    "02084071 05 n 03 dog 0 domestic_dog 0 Canis_familiaris 0 001 @ 02083346 n 0000 | a member "
    'of the genus Canis; "the dog barked all night"'
)
ADJ = "00001740 00 a 01 able(a) 0 001 ! 00002098 a 0101 | (usually followed by `to') having ability"


@pytest.mark.parametrize(
    ("line", "pos", "doc_id", "text"),
    [
        (
            NOUN,
            "noun",
            "noun:02084071",
            'dog, domestic dog, Canis familiaris (noun): a member of the genus Canis; "the dog '
            'barked all night"',
        ),
        (ADJ, "adj", "adj:00001740", "able (adj): (usually followed by `to') having ability"),
    ],
)
def test_parse_data_line(line, pos, doc_id, text):
    doc = parse_data_line(line, pos)
    assert doc is not None and doc.doc_id == doc_id and doc.text == text


def test_licence_header_lines_are_skipped():
    assert parse_data_line("  1 This software and database is being provided", "noun") is None


@pytest.mark.parametrize(
    "line",
    ["garbage without a gloss", "0001 03 n zz dog 0 000 | gloss", "0001 03 n 02 dog 0 000 | gloss"],
)
def test_malformed_lines_get_a_clear_error(line):
    with pytest.raises(CorpusError, match="noun"):
        parse_data_line(line, "noun")


def test_missing_wordnet_names_the_debian_package(tmp_path: Path):
    with pytest.raises(CorpusError, match="wordnet-base"):
        list(iter_documents(tmp_path))


def test_split_is_stable_and_about_90_5_5():
    ids = [f"noun:{i:08d}" for i in range(20000)]
    counts = Counter(split_of(i) for i in ids)
    assert [split_of(i) for i in ids[:50]] == [split_of(i) for i in ids[:50]]
    # Binomial spread of a 5% share over 20000 draws: sd 0.15 percentage points; 1 point is ~6 sd.
    assert abs(counts["train"] / 20000 - 0.90) < 0.01
    assert abs(counts["val"] / 20000 - 0.05) < 0.01


def write_fake_wordnet(folder: Path, n: int = 300) -> Path:
    """A WordNet-format folder of n synthetic synsets per part of speech."""
    folder.mkdir(parents=True, exist_ok=True)
    words = ["robot", "lidar", "car", "box", "red", "map", "road", "camera", "light", "wheel"]
    for k, (pos, name) in enumerate(POS_FILES.items()):
        lines = ["  1 licence header line"]
        for i in range(n):
            w = words[(i + k) % len(words)]
            gloss = f'a {w} near the {words[(3 * i) % len(words)]}; "the {w} moves"'
            lines.append(f"{i:08d} 03 {pos[0]} 01 {w}_{i % 7} 0 000 | {gloss}")
        (folder / name).write_text("\n".join(lines) + "\n")
    return folder


@pytest.mark.skipif(
    not Path("/usr/share/wordnet/data.noun").is_file(), reason="Debian wordnet-base not installed"
)
def test_the_installed_wordnet_has_every_synset():
    docs = list(iter_documents())
    # WordNet 3.0: 82115 noun, 13767 verb, 18156 adjective and 3621 adverb synsets.
    assert len(docs) == 117659
    assert len({d.doc_id for d in docs}) == len(docs)
