"""The bag targets of the fuzzing budget: metadata.yaml edits and single bit flips in the
MCAP file of a recorded bag (a flip must be reported, or the messages read back unchanged)."""

from __future__ import annotations

import random
import shutil
from collections.abc import Iterator
from pathlib import Path

from bench.reliability.fuzz_core import FuzzResult, mutate_yaml, run_target


def fuzz_bags(n: int, rng: random.Random, work: Path, bag: Path) -> list[FuzzResult]:
    """metadata.yaml mutations and MCAP byte flips of a recorded bag."""
    from robomr_nodes.bag import BagError, bag_info, digest, read_bag, verify_bag

    clean = digest(read_bag(bag))
    meta, flips = FuzzResult("bag metadata.yaml"), FuzzResult("bag MCAP byte flips")
    mcap = next(bag.glob("*.mcap"))
    original = mcap.read_bytes()

    def read_all(path: Path) -> str:
        verify_bag(path)
        bag_info(path)
        return digest(read_bag(path))

    def metadata_inputs() -> Iterator[Path]:
        text = (bag / "metadata.yaml").read_text()
        for k in range(n):
            d = work / f"m{k}" / bag.name
            d.mkdir(parents=True)
            (d / mcap.name).symlink_to(mcap)
            (d / "metadata.yaml").write_bytes(mutate_yaml(text, rng))
            yield d
            shutil.rmtree(d.parent)

    def flip_inputs() -> Iterator[tuple[int, Path]]:
        for k in range(n):
            d = work / f"f{k}" / bag.name
            shutil.copytree(bag, d)
            data = bytearray(original)
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
            (d / mcap.name).write_bytes(bytes(data))
            yield k, d
            shutil.rmtree(d.parent)

    def flipped(item: tuple[int, Path]) -> None:
        k, path = item
        if read_all(path) != clean:
            flips.silent_wrong.append(f"#{k}: read without error, messages differ")

    run_target(meta, metadata_inputs(), read_all, (BagError,))
    run_target(flips, flip_inputs(), flipped, (BagError,))
    return [meta, flips]
