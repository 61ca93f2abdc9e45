"""Runs one bad-input or fault case of ``robomr bench reliability`` and judges the outcome.

A case runs a ``robomr`` command, in this process (``main(argv)`` with stdout/stderr captured)
or as a child process (signals, file-size limits, closed pipes), inside a fresh workspace
folder its ``setup`` filled. Every case is judged on what a user would see and keep:

- ``traceback``: a Python traceback, an "internal error" line, or an exception escaping main;
- for an expected error: a non-zero exit, whose last stderr line is ``robomr ...: error: ...``
  and names every ``names`` substring (file, key, value at fault); exit 0 is ``silent_wrong``,
  a message that does not name the fault is ``weak``;
- for an expected success or stop: the exit code, then ``check`` (the result is right, e.g.
  the scan's layout), else ``silent_wrong``;
- ``data_loss``: a file that existed before the run changed or vanished (``replaced`` lists
  the ones a ``--force`` case may replace), or files appeared where ``creates_nothing``;
- ``unreadable``: a bag listed in ``bags`` does not open and read fully with robomr's reader
  (and, for ``rosbags=True``, with the rosbags reader).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
Setup = Callable[[Path], None]
Check = Callable[[Path, "Outcome"], str | None]


@dataclass(frozen=True)
class Case:
    """One row of the reliability table (see the module docstring for the judging).

    Attributes:
        name: unique id, ``group/what``.
        argv: robomr arguments; ``{ws}`` is replaced by the workspace folder.
        expect: "error", "ok" or "stopped" (by a signal: exit 128 + N).
        names: substrings the error line must contain (``{ws}`` replaced).
        setup: fills the workspace before the run.
        check: for "ok"/"stopped": returns a problem with the result, or None.
        bags: workspace-relative bag folders that must be readable afterwards.
        rosbags: whether those bags must also open with the rosbags reader (complete bags).
        replaced: workspace-relative paths the command may replace (``--force``).
        creates_nothing: the run must leave no new file or folder.
        child: run as a child process with this runner (signals, limits, pipes) instead of
            in this process: ``child(argv, ws) -> Outcome``.
        exit_code: the exact exit code expected, if any.
    """

    name: str
    argv: tuple[str, ...]
    expect: str = "error"
    names: tuple[str, ...] = ()
    setup: Setup | None = None
    check: Check | None = None
    bags: tuple[str, ...] = ()
    rosbags: bool = True
    replaced: tuple[str, ...] = ()
    creates_nothing: bool = False
    child: Callable[[list[str], Path], Outcome] | None = None
    exit_code: int | tuple[int, ...] | None = None

    @property
    def group(self) -> str:
        return self.name.split("/", 1)[0]


@dataclass
class Outcome:
    """What a run printed and returned."""

    rc: int | None
    stdout: str
    stderr: str
    escaped: str = ""  # an exception that escaped main (in-process runs)
    seconds: float = 0.0

    @property
    def traceback(self) -> bool:
        return (
            bool(self.escaped)
            or "Traceback (most recent call last)" in self.stderr
            or ("internal error" in self.stderr)
        )

    @property
    def last_line(self) -> str:
        lines = [ln for ln in self.stderr.splitlines() if ln.strip()]
        return lines[-1] if lines else ""


@dataclass
class Verdict:
    """The judged outcome of one case."""

    case: str
    status: str  # clear_error, ok, stopped, traceback, silent_wrong, weak, wrong_exit
    data_loss: bool = False
    unreadable: list[str] = field(default_factory=list)
    detail: str = ""
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        good = self.status in ("clear_error", "ok", "stopped")
        return good and not self.data_loss and not self.unreadable


def run_in_process(argv: list[str], ws: Path) -> Outcome:
    """``robomr argv`` in this process with the workspace as working folder."""
    from robomr_nodes.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    escaped, rc = "", None
    start = time.perf_counter()
    old = Path.cwd()
    try:
        os.chdir(ws)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                rc = main(argv)
            except SystemExit as exit_:  # argparse errors
                rc = exit_.code if isinstance(exit_.code, int) else 1
            except BaseException:  # what a user would see as a traceback
                escaped = traceback.format_exc()
    finally:
        os.chdir(old)
    return Outcome(rc, out.getvalue(), err.getvalue(), escaped, time.perf_counter() - start)


def child_env() -> dict[str, str]:
    """Environment of child ``robomr`` processes: this tree first on the import path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.setdefault("OMP_NUM_THREADS", "1")
    env.setdefault("MPLBACKEND", "Agg")
    return env


def robomr_command(argv: list[str]) -> list[str]:
    """The ``robomr`` console script, run by this interpreter (``-m`` would load the CLI
    module twice, as ``__main__`` and by name)."""
    entry = "import sys; from robomr_nodes.cli.entry import main; sys.exit(main())"
    return [sys.executable, "-c", entry, *argv]


# A hang guard for child runs, not a speed limit: under load 30 (several jobs sharing two cores)
# a run that takes 3 s on a quiet machine took over two minutes to start.
HANG_GUARD_S = 900.0


def run_child(
    argv: list[str], ws: Path, timeout_s: float = HANG_GUARD_S, **popen: object
) -> Outcome:
    """``robomr argv`` as a child process (plain run; see the fault runners for more)."""
    start = time.perf_counter()
    proc = subprocess.run(
        robomr_command(argv),
        cwd=ws,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=timeout_s,
        **popen,  # type: ignore[arg-type]
    )
    return Outcome(proc.returncode, proc.stdout, proc.stderr, "", time.perf_counter() - start)


def _snapshot(ws: Path) -> dict[str, str]:
    """Relative path -> SHA-256 (files) or "dir" of everything in the workspace."""
    snap = {}
    for p in sorted(ws.rglob("*")):
        rel = str(p.relative_to(ws))
        snap[rel] = "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
    return snap


def bag_problem(path: Path, rosbags: bool) -> str | None:
    """Why a bag cannot be read fully (robomr's reader; rosbags' too when asked), or None."""
    from robomr_nodes.bag import BagError, bag_info, read_bag

    if not path.exists():
        return f"{path.name}: no bag"
    try:
        info = bag_info(path)
        n = sum(1 for _ in read_bag(path))
        if n != info.message_count:
            return f"{path.name}: read {n} of {info.message_count} messages"
    except BagError as err:
        return f"{path.name}: robomr: {err}"
    if rosbags:
        from rosbags.rosbag2 import Reader

        try:
            with Reader(path) as reader:
                for _ in reader.messages():
                    pass
        except Exception as err:  # any failure of the reference reader counts
            return f"{path.name}: rosbags: {type(err).__name__}: {err}"
    return None


def _fill(text: str, ws: Path) -> str:
    return text.replace("{ws}", str(ws))


def judge(case: Case, ws: Path) -> Verdict:
    """Sets the workspace up, runs the case and judges it (module docstring)."""
    ws.mkdir(parents=True, exist_ok=True)
    if case.setup is not None:
        case.setup(ws)
    before = _snapshot(ws)
    argv = [_fill(a, ws) for a in case.argv]
    out = (case.child or run_in_process)(argv, ws)
    after = _snapshot(ws)
    v = Verdict(case.name, "ok", seconds=out.seconds)
    changed = [p for p, h in before.items() if after.get(p) != h and not _replaced(p, case)]
    if changed:
        v.data_loss, v.detail = True, f"changed or removed: {changed[:3]}"
    if case.creates_nothing and set(after) - set(before):
        v.data_loss, v.detail = True, f"created: {sorted(set(after) - set(before))[:3]}"
    v.unreadable = [p for b in case.bags if (p := bag_problem(ws / b, case.rosbags))]
    v.status, why = _status(case, out, ws)
    v.detail = "; ".join(x for x in (why, v.detail, *v.unreadable) if x)
    return v


def _codes(code: int | tuple[int, ...]) -> tuple[int, ...]:
    return code if isinstance(code, tuple) else (code,)


def _replaced(rel: str, case: Case) -> bool:
    return any(rel == r or rel.startswith(r + "/") for r in case.replaced)


def _status(case: Case, out: Outcome, ws: Path) -> tuple[str, str]:
    if out.traceback:
        return "traceback", (out.escaped or out.stderr).strip().splitlines()[-1][:200]
    if case.expect == "error":
        if out.rc == 0:
            return "silent_wrong", "bad input accepted (exit 0)"
        if case.exit_code is not None and out.rc not in _codes(case.exit_code):
            return "wrong_exit", f"exit {out.rc}, expected {case.exit_code}"
        line = out.last_line
        missing = [n for n in (_fill(x, ws) for x in case.names) if n not in line]
        if "error" not in line or missing:
            return "weak", f"message {line[:160]!r} lacks {missing or 'error:'}"
        return "clear_error", ""
    want = case.exit_code if case.exit_code is not None else 0
    if out.rc not in _codes(want):
        return "wrong_exit", f"exit {out.rc}, expected {want}: {out.last_line[:160]}"
    problem = case.check(ws, out) if case.check is not None else None
    if problem:
        return "silent_wrong", problem
    return ("stopped" if case.expect == "stopped" else "ok"), ""
