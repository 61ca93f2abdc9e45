"""The reliability case table, case by case: every bad input gets a one-line error naming the
fault with a non-zero exit and no traceback, nothing existing is changed, every bag stays
readable, and every good input gives the right result (bench/reliability/harness.py judges).

The child-process rows (signals, file-size limits, closed pipes) run in
test/robomr_nodes/test_signals.py and test_bag_durability.py; ``robomr bench reliability``
runs them all.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.bench_reliability import ALL_CASES, IN_PROCESS
from bench.reliability.harness import judge

# The demo success rows run the whole graph (about 10 s each); test_demo covers that path.
SLOW = {"demo/ok-force-replaces-earlier"}


def test_the_table_has_at_least_150_distinct_cases_across_every_command() -> None:
    names = [c.name for c in ALL_CASES]
    assert len(names) == len(set(names)) >= 150
    assert {"launch", "replay", "perception", "sim", "demo", "signals", "disk"} <= {
        c.group for c in ALL_CASES
    }
    assert all(c.names or c.expect != "error" for c in ALL_CASES), "an error row names its fault"


@pytest.mark.parametrize(
    "case", [c for c in IN_PROCESS if c.name not in SLOW], ids=lambda c: c.name
)
def test_case(case, tmp_path: Path) -> None:
    verdict = judge(case, tmp_path / "ws")
    assert verdict.passed, f"{verdict.status}: {verdict.detail}"
