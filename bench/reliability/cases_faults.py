"""Faults a child ``robomr`` process meets: SIGINT/SIGTERM/SIGHUP/SIGKILL at random moments
(fixed seeds), a file-size limit (``RLIMIT_FSIZE``: writes fail with EFBIG as on a full disk,
with no root or mount needed) and a reader that closes the pipe."""

from __future__ import annotations

import random
import resource
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from bench.reliability.harness import (
    HANG_GUARD_S,
    Case,
    Outcome,
    bag_problem,
    child_env,
    robomr_command,
)
from bench.reliability.setups import SYNTHETIC, bag_copy, chain, readable, small_params

WALL_RUN = ("launch", SYNTHETIC, "params_file:=small.yaml", "--clock", "wall", "--duration", "3")
Runner = Callable[[list[str], Path], Outcome]


def signal_runner(
    sig: int, seed: int, after: str | None, max_delay_s: float, min_delay_s: float = 0.0
) -> Runner:
    """Starts the command, waits for ``after`` (a workspace file; None: no wait), then a
    random delay in [min_delay_s, max_delay_s] drawn with ``seed``, and sends ``sig``."""

    def run(argv: list[str], ws: Path) -> Outcome:
        start = time.perf_counter()
        proc = subprocess.Popen(
            robomr_command(argv),
            cwd=ws,
            env=child_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        # A hang guard only: under load 30 a run took over 120 s to open its bag, and a signal
        # sent before that stops it "while starting", which is not the moment under test.
        deadline = time.monotonic() + HANG_GUARD_S
        while after and not (ws / after).exists() and proc.poll() is None:
            if time.monotonic() > deadline:
                break
            time.sleep(0.01)
        time.sleep(random.Random(seed).uniform(min_delay_s, max_delay_s))
        if proc.poll() is None:
            proc.send_signal(sig)
        out, err = proc.communicate(timeout=HANG_GUARD_S)
        return Outcome(proc.returncode, out, err, "", time.perf_counter() - start)

    return run


def limit_runner(max_file_bytes: int) -> Runner:
    """Runs the command with every file it writes limited to ``max_file_bytes``."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_file_bytes, max_file_bytes))

    def run(argv: list[str], ws: Path) -> Outcome:
        start = time.perf_counter()
        env = child_env() | {"PYTHONDONTWRITEBYTECODE": "1"}
        proc = subprocess.run(
            robomr_command(argv),
            cwd=ws,
            env=env,
            capture_output=True,
            text=True,
            timeout=HANG_GUARD_S,
            preexec_fn=limit,
        )
        return Outcome(proc.returncode, proc.stdout, proc.stderr, "", time.perf_counter() - start)

    return run


def closed_pipe_runner(argv: list[str], ws: Path) -> Outcome:
    """Runs the command with a stdout whose reader has gone (``robomr ... | head -0``)."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        robomr_command(argv),
        cwd=ws,
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    proc.stdout.close()  # type: ignore[union-attr]
    err = proc.stderr.read().decode(errors="replace")  # type: ignore[union-attr]
    proc.wait(timeout=HANG_GUARD_S)
    return Outcome(proc.returncode, "", err, "", time.perf_counter() - start)


def _bag_absent_or_readable(bag: str, rosbags: bool) -> Callable[[Path, Outcome], str | None]:
    def check(ws: Path, _out: Outcome) -> str | None:
        return bag_problem(ws / bag, rosbags) if (ws / bag).exists() else None

    return check


SIGNALS = {"SIGINT": signal.SIGINT, "SIGTERM": signal.SIGTERM, "SIGHUP": signal.SIGHUP}


def _signal_cases() -> list[Case]:
    cases = []
    for name, sig in SIGNALS.items():
        for k in range(3):
            cases.append(
                Case(
                    f"signals/launch-{name}-{k}",
                    (*WALL_RUN, "--record", "b"),
                    expect="stopped",
                    setup=small_params,
                    child=signal_runner(sig, 100 * sig + k, "b/metadata.yaml", 1.5),
                    exit_code=128 + sig,
                    bags=("b",),
                    check=readable("b"),
                )
            )
        cases.append(
            Case(  # during start-up: before or after the handler is in place, before the bag
                f"signals/launch-{name}-at-start",
                (*WALL_RUN, "--record", "b"),
                expect="stopped",
                setup=small_params,
                child=signal_runner(sig, 7 * sig, None, 1.0),
                exit_code=(128 + sig, -sig),
                check=_bag_absent_or_readable("b", rosbags=True),
            )
        )
    for k in range(3):
        cases.append(
            Case(
                f"signals/launch-SIGKILL-{k}",
                (*WALL_RUN, "--record", "b"),
                expect="stopped",
                setup=small_params,
                # after the first 1 s chunk: a kill before it leaves an empty (readable) bag
                child=signal_runner(signal.SIGKILL, 900 + k, "b/metadata.yaml", 2.3, 1.3),
                exit_code=-signal.SIGKILL,
                bags=("b",),
                rosbags=False,  # no footer after a hard kill: robomr recovers the chunks
                check=readable("b", rosbags=False),
            )
        )
    cases.append(
        Case(
            "signals/demo-SIGTERM",
            ("demo", "--quick", "--duration", "20", "--out", "run"),
            expect="stopped",
            child=signal_runner(signal.SIGTERM, 5, "run/bag/metadata.yaml", 1.0),
            exit_code=128 + signal.SIGTERM,
            bags=("run/bag",),
            check=readable("run/bag"),
        )
    )
    return cases


def _limit(name: str, argv: tuple[str, ...], limit: int, *names: str, **kw: object) -> Case:
    child = limit_runner(limit)
    return Case(f"disk/{name}", argv, names=names, child=child, **kw)  # type: ignore[arg-type]


DISK = [
    _limit(
        "launch-record",
        ("launch", SYNTHETIC, "--duration", "3", "--record", "b"),
        1_500_000,
        "b/b.mcap",
        "File too large",
        bags=("b",),
    ),
    _limit(
        "replay-out",
        ("replay", "bag", "--nodes", "cloud_markers", "--out", "r"),
        60_000,
        "r/r.mcap",
        "File too large",
        setup=bag_copy(),
        bags=("bag", "r"),
    ),
    _limit(
        "demo-run",
        ("demo", "--quick", "--duration", "3", "--out", "run"),
        2_000_000,
        "run/bag/bag.mcap",
        "File too large",
        bags=("run/bag",),
    ),
    _limit(
        "dataset",
        ("sim", "dataset", "--frames", "4", "--beams", "16", "--out", "ds", "--no-progress"),
        100_000,
        "ds",
        "File too large",
    ),
    _limit(
        "detect-json",
        ("perception", "detect", "scan.bin", "--json", "o.json"),
        200,
        "o.json",
        "File too large",
        setup=chain(lambda ws: _kitti(ws)),
    ),
    _limit(
        "render-png",
        ("sim", "render", "urban-clutter", "--out", "r.png", "--width", "64", "--height", "48"),
        300,
        "r.png",
        "File too large",
    ),
]


def _kitti(ws: Path) -> None:
    from bench.reliability.resources import resources

    resources().copy(resources().kitti_scan, ws, "scan.bin")


PIPES = [
    Case(
        "pipe/sim-list",
        ("sim", "list"),
        expect="stopped",
        child=closed_pipe_runner,
        exit_code=128 + signal.SIGPIPE,
    ),
    Case(
        "pipe/launch-report",
        ("launch", SYNTHETIC, "params_file:=small.yaml", "--duration", "0.5", "--record", "b"),
        expect="stopped",
        setup=small_params,
        child=closed_pipe_runner,
        exit_code=128 + signal.SIGPIPE,
        bags=("b",),
        check=readable("b"),
    ),
]

CASES = [*_signal_cases(), *DISK, *PIPES]
