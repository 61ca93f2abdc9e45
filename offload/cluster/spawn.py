"""``python -m offload.cluster.spawn [--cgroup-procs F ...] -- CMD``: start CMD tied to its parent.

Every process the local cluster starts (replicas, co-runners, probes, the agent) goes through
this launcher, which (1) asks the kernel to SIGTERM it when the process that started it dies
(``prctl(PR_SET_PDEATHSIG)``; it survives ``exec``), so that a killed cluster never leaves CPU hogs
behind, (2) writes its own pid into the given ``cgroup.procs`` files, so that the workload is
inside its groups before its first instruction, and (3) ``exec``s CMD (same pid).
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

PR_SET_PDEATHSIG = 1


def tie_to_parent(sig: int = signal.SIGTERM) -> None:
    """Linux only; elsewhere a no-op (the caller still stops its children on exit)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    except (OSError, AttributeError):
        return


def popen(
    argv: Sequence[str],
    cgroup_procs: Sequence[Path] = (),
    log: Path | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.Popen:
    """Starts ``argv`` through this launcher (see the module docstring); output goes to ``log``
    (appended) or is discarded."""
    cmd = [sys.executable, "-m", "offload.cluster.spawn"]
    for path in cgroup_procs:
        cmd += ["--cgroup-procs", str(path)]
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 (closed below)
    try:
        return subprocess.Popen(
            [*cmd, "--", *argv],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            stdin=subprocess.DEVNULL,
        )
    finally:
        if log:
            out.close()


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parent = os.getppid()
    procs = []
    while argv and argv[0] == "--cgroup-procs":
        procs.append(argv[1])
        argv = argv[2:]
    if not argv or argv[0] != "--":
        print(
            "usage: python -m offload.cluster.spawn [--cgroup-procs F ...] -- CMD ...",
            file=sys.stderr,
        )
        return 2
    tie_to_parent()
    if os.getppid() != parent:  # the parent died before prctl took effect
        return 1
    for path in procs:
        try:
            with open(path, "w") as f:
                f.write(str(os.getpid()))
        except OSError as err:
            print(f"spawn: cannot join {path}: {err.strerror}", file=sys.stderr)
            return 3
    os.execvp(argv[1], argv[1:])
    return 127  # not reached


if __name__ == "__main__":
    sys.exit(main())
