"""Node and workload metrics: rates from /proc counters, NaN where the machine lacks a value."""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import pytest

from offload.cluster.metrics import CLK_TCK, MetricsSampler

STAT = """cpu  {u} 0 {s} {i} 0 0 0 0 0 0
cpu0 {u0} 0 0 {i} 0 0 0 0 0 0
cpu1 {u1} 0 0 {i} 0 0 0 0 0 0
ctxt {ctxt}
procs_running {run}
procs_blocked 1
"""


def _fake_proc(root: Path, u0: int, u1: int, ctxt: int, psi_us: int | None) -> None:
    (root / "stat").write_text(STAT.format(u=u0 + u1, s=0, i=1000, u0=u0, u1=u1, ctxt=ctxt, run=3))
    (root / "meminfo").write_text("MemTotal: 1000 kB\nMemAvailable: 250 kB\n")
    if psi_us is not None:
        (root / "pressure").mkdir(exist_ok=True)
        for res in ("cpu", "io", "memory"):
            (root / "pressure" / res).write_text(
                f"some avg10=0.00 avg60=0.00 avg300=0.00 total={psi_us}\n"
            )


@pytest.mark.parametrize("psi", [True, False])
def test_node_rates_come_from_counter_differences(tmp_path: Path, psi: bool) -> None:
    _fake_proc(tmp_path, 0, 0, 1000, 0 if psi else None)
    m = MetricsSampler(tmp_path)
    first = m.node()
    assert first.cpu_used == 0.0 and first.cores == 2 and first.runq == 3
    time.sleep(0.2)
    _fake_proc(tmp_path, CLK_TCK // 10, 0, 1100, 100_000 if psi else None)
    n = m.node()
    dt = n.t - first.t
    # 0.1 s of cpu0 time over dt seconds; 100 switches; 0.1 s of stall
    assert n.cpu_per_core[0] == pytest.approx(0.1 / dt) and n.cpu_per_core[1] == 0.0
    assert n.ctx_per_s == pytest.approx(100 / dt)
    assert n.mem_used_frac == pytest.approx(0.75)
    if psi:
        assert n.psi_cpu == pytest.approx(0.1 / dt)
    else:
        assert math.isnan(n.psi_cpu)


def test_a_busy_process_shows_its_cpu_use_and_memory() -> None:
    m = MetricsSampler()
    m.workload("me", None, [os.getpid()])
    end = time.process_time() + 0.2
    while time.process_time() < end:
        pass
    w = m.workload("me", None, [os.getpid()])
    assert w.cpu_used > 0 and w.rss_mib > 1 and w.pids == (os.getpid(),)
    assert math.isnan(w.psi_cpu)  # no cgroup: no group pressure


def test_a_vanished_process_reads_as_zero_not_an_error() -> None:
    m = MetricsSampler()
    w = m.workload("gone", None, [2**22 + 7])
    assert w.cpu_used == 0.0 and w.rss_mib == 0.0
