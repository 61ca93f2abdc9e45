"""A best-effort co-runner process: ``python -m offload.cluster.corunner --kind K --progress F``.

Each kind stresses one shared resource and counts finished work units in a shared 16-byte file
(uint64 units, float64 wall time of the last unit), so that its throughput can be read without
talking to it, also while it is frozen or throttled:

| kind | one unit of work | stresses |
| --- | --- | --- |
| ``cpu`` | 200 multiply-adds over 2k float64 (16 KiB, in L1) | CPU time (time-sharing) |
| ``membw`` | one copy of a 64 MiB array (beyond any cache) | memory bandwidth |
| ``cache`` | 256k random reads over 8 MiB (about L2/LLC) | caches |
| ``io`` | 1 MiB written and fsynced into a 32 MiB ring file | block I/O, page cache |

(sizes are the defaults of ``--working-set-mib``)

``--duty D`` (0 < D <= 1) makes the process work D of every 100 ms and sleep the rest (a lighter
co-runner for seeded mixes); throttling, pausing and stopping are done from outside (cgroup
quota, freezer, signals: :mod:`offload.cluster.corunners`). SIGTERM ends it after the current
unit.
"""

from __future__ import annotations

import argparse
import mmap
import os
import signal
import struct
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

KINDS = ("cpu", "membw", "cache", "io")
DEFAULT_WORKING_SET_MIB = {"cpu": 0.016, "membw": 64.0, "cache": 8.0, "io": 32.0}
PROGRESS_FORMAT = "<Qd"  # units done, wall time (s) of the last unit
PROGRESS_BYTES = struct.calcsize(PROGRESS_FORMAT)
DUTY_PERIOD_S = 0.1


class CoRunnerError(ValueError):
    """A bad co-runner setting (the message names it)."""


def make_kernel(kind: str, working_set_mib: float, io_dir: Path | None, seed: int) -> Callable:
    """The function that does one unit of work of ``kind`` (see the module docstring).

    Raises:
        CoRunnerError: unknown kind, non-positive working set, io without a directory.
    """
    if kind not in KINDS:
        raise CoRunnerError(f"kind={kind!r} must be one of {', '.join(KINDS)}")
    if not working_set_mib > 0:
        raise CoRunnerError(f"working_set_mib={working_set_mib} must be > 0")
    n = max(1, int(working_set_mib * 2**20 / 8))
    rng = np.random.default_rng(seed)
    if kind == "cpu":
        x = rng.random(2048)

        def cpu() -> None:
            for _ in range(200):
                np.multiply(x, 0.999999, out=x)
                np.add(x, 1e-6, out=x)

        return cpu
    if kind == "membw":
        src, dst = np.ones(n), np.empty(n)
        return lambda: np.copyto(dst, src)
    if kind == "cache":
        buf = rng.random(n)
        idx = rng.integers(0, n, 262_144)
        out = np.empty(len(idx))
        return lambda: np.take(buf, idx, out=out)
    if io_dir is None:
        raise CoRunnerError("kind=io needs --dir (a directory on the disk to stress)")
    return _io_kernel(io_dir, max(1, int(working_set_mib)), rng)


def _io_kernel(io_dir: Path, ring_mib: int, rng: np.random.Generator) -> Callable:
    io_dir.mkdir(parents=True, exist_ok=True)
    path = io_dir / f"corunner-io-{os.getpid()}.bin"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    block = rng.bytes(2**20)
    pos = [0]

    def io() -> None:
        os.pwrite(fd, block, pos[0] * 2**20)
        os.fsync(fd)
        pos[0] = (pos[0] + 1) % ring_mib

    io.cleanup = lambda: (os.close(fd), path.unlink(missing_ok=True))  # type: ignore[attr-defined]
    return io


class ProgressFile:
    """The shared counter file (written by the co-runner, read by anyone)."""

    def __init__(self, path: Path, create: bool = False) -> None:
        self.path = Path(path)
        if create:
            self.path.write_bytes(struct.pack(PROGRESS_FORMAT, 0, 0.0))
        self._file = open(self.path, "r+b" if create else "rb")  # noqa: SIM115 (held open)
        access = mmap.ACCESS_WRITE if create else mmap.ACCESS_READ
        self._map = mmap.mmap(self._file.fileno(), PROGRESS_BYTES, access=access)

    def write(self, units: int, t: float) -> None:
        self._map[:PROGRESS_BYTES] = struct.pack(PROGRESS_FORMAT, units, t)

    def read(self) -> tuple[int, float]:
        return struct.unpack(PROGRESS_FORMAT, self._map[:PROGRESS_BYTES])

    def close(self) -> None:
        self._map.close()
        self._file.close()


def run(
    kind: str,
    progress: Path,
    duty: float,
    working_set_mib: float | None,
    io_dir: Path | None,
    seed: int,
) -> int:
    """The co-runner's loop (until SIGTERM/SIGINT)."""
    if not 0 < duty <= 1:
        raise CoRunnerError(f"duty={duty} must be in (0, 1]")
    kernel = make_kernel(kind, working_set_mib or DEFAULT_WORKING_SET_MIB[kind], io_dir, seed)
    stop = [False]

    def on_signal(*_: object) -> None:
        stop[0] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    counter = ProgressFile(progress, create=True)
    units = 0
    try:
        while not stop[0]:
            start = time.monotonic()
            while not stop[0] and time.monotonic() - start < duty * DUTY_PERIOD_S:
                kernel()
                units += 1
                counter.write(units, time.time())
            if duty < 1 and not stop[0]:
                time.sleep(max(0.0, DUTY_PERIOD_S - (time.monotonic() - start)))
    finally:
        counter.close()
        if hasattr(kernel, "cleanup"):
            kernel.cleanup()
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m offload.cluster.corunner", description=__doc__)
    p.add_argument("--kind", required=True, choices=KINDS)
    p.add_argument("--progress", type=Path, required=True, help="counter file to create")
    p.add_argument("--duty", type=float, default=1.0, help="share of each 100 ms spent working")
    p.add_argument("--working-set-mib", type=float, help="working set (MiB); default per kind")
    p.add_argument("--dir", type=Path, help="directory for the io kind's ring file")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    try:
        return run(args.kind, args.progress, args.duty, args.working_set_mib, args.dir, args.seed)
    except CoRunnerError as err:
        print(f"corunner: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
