"""Cgroup management: detection and its messages, limits written where permitted."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from offload.cluster.cgroups import (
    Cgroup,
    CgroupError,
    CgroupUnavailable,
    detect,
    format_cpus,
    parse_cpus,
    parse_pressure,
)


@pytest.mark.parametrize(
    ("text", "cpus"), [("0", [0]), ("0-2,5", [0, 1, 2, 5]), ("3,1-2", [1, 2, 3]), ("", [])]
)
def test_cpu_lists_parse_like_the_kernel_writes_them(text: str, cpus: list[int]) -> None:
    assert parse_cpus(text) == cpus
    assert parse_cpus(format_cpus(cpus)) == cpus


@pytest.mark.parametrize("bad", ["a", "2-1", "1-", "0,,x"])
def test_a_malformed_cpu_list_is_a_clear_error(bad: str) -> None:
    with pytest.raises(CgroupError, match="cpu"):
        parse_cpus(bad)


def test_pressure_lines_parse_into_named_fields() -> None:
    text = (
        "some avg10=1.50 avg60=0.20 avg300=0.00 total=12345\nfull avg10=0.00 avg60=0.00 "
        "avg300=0.00 total=7\n"
    )
    p = parse_pressure(text)
    assert p["some_avg10"] == 1.5 and p["some_total_us"] == 12345 and p["full_total_us"] == 7


@pytest.mark.parametrize(
    ("mounts", "version", "missing"),
    [
        # v1 controllers plus an empty unified hierarchy (the development VMs)
        (
            "cgroup {d}/cpu cgroup rw,cpu 0 0\ncgroup {d}/cpuacct cgroup rw,cpuacct 0 0\n"
            "cgroup {d}/cpuset cgroup rw,cpuset 0 0\ncgroup {d}/freezer cgroup rw,freezer 0 0\n"
            "cgroup2 {d}/unified cgroup2 rw 0 0\n",
            "v1",
            set(),
        ),
        # v1 without freezer and without a unified hierarchy
        ("cgroup {d}/cpu cgroup rw,cpu,cpuacct 0 0\n", "v1", {"cpuset", "freeze", "pressure"}),
        # nothing mounted
        (
            "proc /proc proc rw 0 0\n",
            "none",
            {"cpu", "weight", "usage", "cpuset", "freeze", "pressure"},
        ),
    ],
)
def test_detection_names_every_missing_role_with_a_reason(
    tmp_path: Path, mounts: str, version: str, missing: set[str]
) -> None:
    for sub in ("cpu", "cpuacct", "cpuset", "freezer", "unified"):
        (tmp_path / sub).mkdir()
    (tmp_path / "unified" / "cgroup.controllers").write_text("hugetlb\n")
    f = tmp_path / "mounts"
    f.write_text(mounts.format(d=tmp_path))
    s = detect(f)
    assert s.version == version
    assert set(s.missing) == missing
    assert all(len(why) > 20 for why in s.missing.values())
    for role in missing:
        assert f"{role}: missing" in s.summary()


def test_an_unavailable_role_raises_its_reason(tmp_path: Path) -> None:
    f = tmp_path / "mounts"
    f.write_text("proc /proc proc rw 0 0\n")
    g = Cgroup(detect(f), "robomr/x")
    with pytest.raises(CgroupUnavailable, match="no cgroup hierarchy"):
        g.set_cpu_limit(0.5)


def test_limits_weights_cpusets_and_freezing_are_applied(need, support, tree: str) -> None:
    need("cpu", "weight", "usage", "cpuset", "freeze")
    g = Cgroup(support, f"{tree}/be/hog").create()
    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        g.add_pid(proc.pid)
        assert g.pids() == [proc.pid]
        g.set_cpu_limit(0.25)
        assert g.cpu_limit() == pytest.approx(0.25)
        g.set_cpu_weight(2)
        g.set_cpuset([0])
        assert g.cpuset() == [0]
        g.freeze()
        assert g.frozen()
        used = g.usage_ns()
        time.sleep(0.3)
        assert g.usage_ns() == used  # a frozen group runs nothing
        g.freeze(False)
        assert not g.frozen()
        g.set_cpu_limit(None)
        assert g.cpu_limit() is None
    finally:
        g.freeze(False)  # a frozen process cannot die
        proc.kill()
        proc.wait()


def test_a_group_capped_to_the_floor_still_freezes(need, support, tree: str) -> None:
    """Escalation pauses a co-runner only after capping it to the floor: its busy tasks are
    throttled most of each period when the freeze is asked for (a bench run once saw such a
    freeze stay FREEZING; the v1 path re-asks, as runc does)."""
    need("cpu", "usage", "freeze")
    g = Cgroup(support, f"{tree}/be/capped").create()
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(3)]
    try:
        for proc in procs:
            g.add_pid(proc.pid)
        g.set_cpu_limit(0.01)  # the kernel's least quota: 1 ms per 100 ms for three busy tasks
        time.sleep(0.2)
        g.freeze()
        assert g.frozen()
    finally:
        g.freeze(False)
        for proc in procs:
            proc.kill()
            proc.wait()


def test_a_capped_child_of_a_capped_group_never_fails_on_the_nesting_rule(
    need, support, tree: str
) -> None:
    """The BE group (CPU suppress) and a co-runner's own group (escalation) are both capped,
    in either order. cgroup v1 refuses a child quota above its parent's (EINVAL), so there the
    child is clamped and lowered with its parent; v2 takes the minimum itself."""
    need("cpu")
    be = Cgroup(support, f"{tree}/be").create()
    hog = Cgroup(support, f"{tree}/be/hog").create()
    be.set_cpu_limit(0.5)
    hog.set_cpu_limit(0.8)  # above the parent's
    v1 = not be._is_v2("cpu")
    assert hog.cpu_limit() == pytest.approx(0.5 if v1 else 0.8)
    be.set_cpu_limit(0.2)  # the parent falls below the child's
    assert be.cpu_limit() == pytest.approx(0.2)
    assert hog.cpu_limit() == pytest.approx(0.2 if v1 else 0.8)
    be.set_cpu_limit(None)
    hog.set_cpu_limit(0.3)
    assert hog.cpu_limit() == pytest.approx(0.3)


@pytest.mark.parametrize("bad", [0.0, -1.0])
def test_a_non_positive_cpu_limit_is_refused(need, support, tree: str, bad: float) -> None:
    need("cpu")
    g = Cgroup(support, f"{tree}/x").create()
    with pytest.raises(CgroupError, match="must be > 0"):
        g.set_cpu_limit(bad)


def test_removing_a_tree_moves_leftover_processes_out(need, support, tree: str) -> None:
    need("cpu")
    g = Cgroup(support, f"{tree}/ls/r0").create()
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        g.add_pid(proc.pid)
        Cgroup(support, tree).remove()
        assert not any(d.exists() for d in g.dirs.values())
        assert proc.poll() is None  # moved to the root group, not killed
    finally:
        proc.kill()
        proc.wait()
