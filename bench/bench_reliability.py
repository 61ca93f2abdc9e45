"""``robomr bench reliability``: every bad input and fault of the case table, a fixed-seed
fuzzing budget over every input parser, and robomr's recorder against the plain rosbags writer
(hard kills, flipped bytes), side by side.

Counts (``--json`` keys): ``cases`` (table rows), ``clear_errors`` (bad inputs refused with a
one-line message naming the fault, nothing changed), ``tracebacks`` (table rows and fuzz inputs
that showed a traceback or an internal error), ``silent_wrong`` (bad input accepted, a wrong
result, or a damaged bag read without error), ``data_loss`` (an existing file changed or a
failed start left files), ``unreadable_bags``; more detail under ``table``/``fuzz``.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.reliability import cases_faults, cases_launch, cases_perception, cases_replay, cases_sim
from bench.reliability.baseline import run_baseline
from bench.reliability.fuzz import run_fuzz
from bench.reliability.harness import Case, Verdict, judge
from bench.reliability.resources import resources
from bench.report import BenchReport, Table

DESCRIPTION = (
    "bad inputs and faults (signals, full disk, corrupt bags) across robomr's commands, a "
    "fixed-seed fuzzing budget per parser, and the recorder vs the plain rosbags writer"
)
IN_PROCESS = [
    *cases_launch.CASES,
    *cases_replay.CASES,
    *cases_perception.CASES,
    *cases_sim.CASES,
]
ALL_CASES: list[Case] = [*IN_PROCESS, *cases_faults.CASES]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--fuzz", type=int, default=300, help="fuzz inputs per parser")
    parser.add_argument("--seed", type=int, default=0, help="seed of fuzzing and signal times")
    parser.add_argument("--kills", type=int, default=5, help="SIGKILLs per writer (baseline)")
    parser.add_argument("--flips", type=int, default=100, help="bit flips per writer (baseline)")
    parser.add_argument("--only", default="", help="run only cases whose name starts so")
    parser.add_argument(
        "--no-children", action="store_true", help="skip the child-process cases (signals, ...)"
    )


@dataclass
class ReliabilityReport(BenchReport):
    """A BenchReport whose JSON also carries the issue's counts at the top level."""

    figures: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), **self.figures}


def _select(args: argparse.Namespace) -> list[Case]:
    chosen = [c for c in ALL_CASES if c.name.startswith(args.only)]
    return [c for c in chosen if not (args.no_children and c.child is not None)]


def _run_table(cases: list[Case]) -> list[Verdict]:
    verdicts = []
    with tempfile.TemporaryDirectory(prefix="robomr-reliability-ws-") as tmp:
        for i, case in enumerate(cases):
            verdicts.append(judge(case, Path(tmp) / f"{i:03d}"))
    return verdicts


def _group_table(verdicts: list[Verdict], cases: list[Case]) -> Table:
    table = Table(
        "case table by command group",
        [
            "group",
            "cases",
            "clear errors",
            "ok/stopped",
            "tracebacks",
            "silent wrong",
            "weak msg",
            "wrong exit",
            "data loss",
            "unreadable bags",
            "seconds",
        ],
    )
    groups = sorted({c.group for c in cases})
    for g in [*groups, "all"]:
        vs = [v for v, c in zip(verdicts, cases, strict=True) if g in ("all", c.group)]
        n = Counter(v.status for v in vs)
        table.add(
            g,
            len(vs),
            n["clear_error"],
            n["ok"] + n["stopped"],
            n["traceback"],
            n["silent_wrong"],
            n["weak"],
            n["wrong_exit"],
            sum(v.data_loss for v in vs),
            sum(len(v.unreadable) for v in vs),
            sum(v.seconds for v in vs),
        )
    return table


def run(args: argparse.Namespace) -> ReliabilityReport:
    if args.fuzz < 0 or args.kills < 0 or args.flips < 0:
        raise ValueError("--fuzz, --kills and --flips must be >= 0")
    cases = _select(args)
    if not cases:
        raise ValueError(f"--only {args.only!r} matches no case")
    logging.disable(logging.CRITICAL)  # the cases' own log lines would drown the table
    try:
        start = time.perf_counter()
        verdicts = _run_table(cases)
        table_s = time.perf_counter() - start
        fuzz = run_fuzz(args.fuzz, args.seed, resources().bag) if args.fuzz else []
        base = run_baseline(args.kills, args.flips, args.seed) if args.kills or args.flips else None
    finally:
        logging.disable(logging.NOTSET)
    status = Counter(v.status for v in verdicts)
    failures = [v for v in verdicts if not v.passed]
    fuzz_table = Table(
        "fuzzing budget (fixed seed)",
        ["parser", "inputs", "accepted", "clear errors", "crashes", "silent wrong"],
    )
    for r in fuzz:
        fuzz_table.add(
            r.target, r.inputs, r.accepted, r.clear_errors, len(r.crashes), len(r.silent_wrong)
        )
    fuzz_crashes = sum(len(r.crashes) for r in fuzz)
    fuzz_silent = sum(len(r.silent_wrong) for r in fuzz)
    figures = {
        "cases": len(verdicts),
        "clear_errors": status["clear_error"],
        "tracebacks": status["traceback"] + fuzz_crashes,
        "silent_wrong": status["silent_wrong"] + fuzz_silent,
        "data_loss": sum(v.data_loss for v in verdicts),
        "unreadable_bags": sum(len(v.unreadable) for v in verdicts),
        "table": {
            "expected_errors": sum(c.expect == "error" for c in cases),
            "ok_or_stopped": status["ok"] + status["stopped"],
            "weak_messages": status["weak"],
            "wrong_exit": status["wrong_exit"],
            "failures": {v.case: f"{v.status}: {v.detail}" for v in failures},
        },
        "fuzz": {
            "inputs": sum(r.inputs for r in fuzz),
            "crashes": fuzz_crashes,
            "silent_wrong": fuzz_silent,
            "per_parser": {r.target: r.crashes[:5] + r.silent_wrong[:5] for r in fuzz},
        },
    }
    report = ReliabilityReport(
        name="reliability",
        settings={
            "cases": len(cases),
            "fuzz_per_parser": args.fuzz,
            "seed": args.seed,
            "kills": args.kills,
            "flips": args.flips,
            "children": not args.no_children,
        },
        tables=[_group_table(verdicts, cases), fuzz_table],
        figures=figures,
    )
    if failures:
        fail = Table("cases that did not pass", ["case", "status", "detail"])
        for v in failures:
            fail.add(v.case, v.status, v.detail[:110])
        report.tables.append(fail)
    if base is not None:
        _add_baseline(report, base)
    report.notes.append(
        f"table ran in {table_s:.0f} s; the fuzz inputs of each parser are drawn "
        f"from seed {args.seed}, so a rerun repeats them"
    )
    return report


def _add_baseline(report: ReliabilityReport, base: Any) -> None:
    table = Table(
        f"recorder vs plain rosbags writer ({base.kills} SIGKILLs, {base.flips} bit flips each)",
        ["writer", "readable after SIGKILL", "flips reported", "flips read silently wrong"],
    )
    for w in ("robomr", "rosbags"):
        readable = base.readable_after_kill.get(w)
        table.add(w, readable, base.flips_reported[w], base.flips_silent[w])
        if readable is not None:
            report.ratios[f"bags readable after SIGKILL, {w} writer (fraction)"] = readable
        silent = base.flips_silent[w]
        report.ratios[f"bit flips read silently wrong, {w} writer (fraction)"] = silent
    report.tables.append(table)
    report.figures["baseline"] = {
        "readable_after_kill": base.readable_after_kill,
        "flips_reported": base.flips_reported,
        "flips_silent": base.flips_silent,
    }
