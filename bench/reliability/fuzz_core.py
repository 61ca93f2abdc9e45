"""The pieces of the fuzzing budget every target shares: outcome counts, mutators and the
loop that classifies each input (see ``bench/reliability/fuzz.py``)."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

HOSTILE = (
    "-1",
    "nan",
    ".inf",
    "[]",
    "{}",
    "~",
    "true",
    "1e400",
    "''",
    "x" * 300,
    "[1, [2]]",
    "-9223372036854775809",
    "0x10",
    "!!binary AAAA",
    "&a [*a]",
)


@dataclass
class FuzzResult:
    """Outcomes of one target."""

    target: str
    inputs: int = 0
    accepted: int = 0
    clear_errors: int = 0
    crashes: list[str] = field(default_factory=list)
    silent_wrong: list[str] = field(default_factory=list)


def mutate_bytes(data: bytes, rng: random.Random) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        kind, n = rng.randrange(5), len(buf)
        pos = rng.randrange(n) if n else 0
        if kind == 0 and n:
            buf[pos] ^= 1 << rng.randrange(8)
        elif kind == 1:
            del buf[pos:]
        elif kind == 2:
            buf[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
        elif kind == 3 and n:
            del buf[pos : pos + rng.randint(1, 64)]
        elif n:
            buf[pos : pos + 4] = rng.choice([b"\xff\xff\xff\x7f", b"\0\0\0\0", b"nan ", b"-1 "])
    return bytes(buf)


def mutate_yaml(text: str, rng: random.Random) -> bytes:
    lines = text.splitlines()
    for _ in range(rng.randint(1, 3)):
        if not lines:
            break
        i, kind = rng.randrange(len(lines)), rng.randrange(5)
        line = lines[i]
        if kind == 0 and ":" in line:
            key, _, _ = line.partition(":")
            lines[i] = f"{key}: {rng.choice(HOSTILE)}"
        elif kind == 1:
            del lines[i]
        elif kind == 2:
            lines.insert(i, line)
        elif kind == 3:
            lines[i] = " " * rng.randint(0, 6) + line.lstrip()
        else:
            return mutate_bytes("\n".join(lines).encode(), rng)
    return ("\n".join(lines) + "\n").encode()


def run_target(result: FuzzResult, inputs: Iterator[object], call: Callable, errors: tuple) -> None:
    for k, item in enumerate(inputs):
        result.inputs += 1
        try:
            call(item)
            result.accepted += 1
        except errors as err:
            msg = str(err)
            if "\n" in msg.strip():  # a clear error is one line
                result.crashes.append(f"#{k}: multi-line {type(err).__name__}: {msg[:120]!r}")
            else:
                result.clear_errors += 1
        except Exception as err:  # anything else reaches the user as a traceback
            result.crashes.append(f"#{k}: {type(err).__name__}: {str(err)[:160]}")


def mutated_files(
    seeds: list[tuple[str, bytes]],
    n: int,
    rng: random.Random,
    work: Path,
    mutate: Callable[[bytes, random.Random], bytes],
) -> Iterator[Path]:
    for k in range(n):
        name, data = seeds[k % len(seeds)]
        path = work / f"{k}-{name}"
        path.write_bytes(mutate(data, rng))
        yield path
        path.unlink(missing_ok=True)
