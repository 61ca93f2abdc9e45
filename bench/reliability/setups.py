"""Small workspace builders shared by the case tables."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from bench.reliability.harness import REPO, Outcome, Setup, bag_problem
from bench.reliability.resources import SYNTH_PARAMS, resources

SYNTHETIC = str(REPO / "launch" / "synthetic.launch.yaml")


def write(files: dict[str, str | bytes]) -> Setup:
    """Writes each workspace-relative file (folders created)."""

    def setup(ws: Path) -> None:
        for name, content in files.items():
            path = ws / name
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content)

    return setup


def mkdir(*names: str) -> Setup:
    def setup(ws: Path) -> None:
        for name in names:
            (ws / name).mkdir(parents=True, exist_ok=True)

    return setup


def chain(*setups: Setup) -> Setup:
    def setup(ws: Path) -> None:
        for s in setups:
            s(ws)

    return setup


def small_params(ws: Path) -> None:
    """``small.yaml``: the synthetic graph with 2000-point clouds (fast runs)."""
    (ws / "small.yaml").write_text(SYNTH_PARAMS)


def bag_copy(name: str = "bag", which: str = "bag") -> Setup:
    """A copy of a shared bag (``bag``: robomr's; ``foreign_bag``: the rosbags writer's)."""

    def setup(ws: Path) -> None:
        res = resources()
        res.copy(getattr(res, which), ws, name)

    return setup


def edit(rel: str, fn: Callable[[bytes], bytes]) -> Setup:
    """Rewrites a workspace file through ``fn``."""

    def setup(ws: Path) -> None:
        path = ws / rel
        path.write_bytes(fn(path.read_bytes()))

    return setup


def flip(rel: str, where: Callable[[int], int]) -> Setup:
    """Flips every bit of one byte of a file, at ``where(size)``."""

    def fn(data: bytes) -> bytes:
        buf = bytearray(data)
        buf[where(len(buf))] ^= 0xFF
        return bytes(buf)

    return edit(rel, fn)


def replace_text(rel: str, old: str, new: str) -> Setup:
    def fn(data: bytes) -> bytes:
        text = data.decode()
        if old not in text:
            raise AssertionError(f"case setup: {old!r} not in {rel}")
        return text.replace(old, new, 1).encode()

    return edit(rel, fn)


def readable(*bags: str, rosbags: bool = True) -> Callable[[Path, Outcome], str | None]:
    """A check: every bag reads fully (robomr, and rosbags when asked)."""

    def check(ws: Path, _out: Outcome) -> str | None:
        for bag in bags:
            problem = bag_problem(ws / bag, rosbags)
            if problem:
                return problem
        return None

    return check


def says(*texts: str, stream: str = "stderr") -> Callable[[Path, Outcome], str | None]:
    """A check: the output mentions each text (e.g. a note that a bag was truncated)."""

    def check(ws: Path, out: Outcome) -> str | None:
        shown = out.stderr if stream == "stderr" else out.stdout
        missing = [t for t in texts if t.replace("{ws}", str(ws)) not in shown]
        return f"output lacks {missing}" if missing else None

    return check


def both(*checks: Callable[[Path, Outcome], str | None]) -> Callable[[Path, Outcome], str | None]:
    def check(ws: Path, out: Outcome) -> str | None:
        return next((p for c in checks if (p := c(ws, out))), None)

    return check
