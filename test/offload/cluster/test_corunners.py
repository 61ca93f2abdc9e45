"""Best-effort co-runners of every kind: start, make progress, throttle, pause, resume, stop."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import pytest

from offload.cluster.cgroups import Cgroup, CgroupUnavailable
from offload.cluster.corunner import CoRunnerError, make_kernel
from offload.cluster.corunners import CoRunner, CoRunnerSpec


def _progress_over(c: CoRunner, seconds: float) -> int:
    before = c.units()
    time.sleep(seconds)
    return c.units() - before


def _wait_progress(c: CoRunner, timeout_s: float = 30.0) -> None:
    """The first unit can take a while on a loaded machine (imports, page faults)."""
    end = time.monotonic() + timeout_s
    while c.units() == 0 and time.monotonic() < end:
        time.sleep(0.05)
    assert c.units() > 0, f"{c.spec.kind} made no progress in {timeout_s} s"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"name": "x", "kind": "gpu"}, "kind"),
        ({"name": "Bad_Name", "kind": "cpu"}, "name"),
        ({"name": "x", "kind": "cpu", "duty": 0.0}, "duty"),
        ({"name": "x", "kind": "cpu", "cpus": (-1,)}, "cpus"),
    ],
)
def test_bad_specs_are_refused_naming_the_field(kwargs: dict, match: str) -> None:
    with pytest.raises(CoRunnerError, match=match):
        CoRunnerSpec(**kwargs)


def test_the_io_kernel_needs_a_directory() -> None:
    with pytest.raises(CoRunnerError, match="--dir"):
        make_kernel("io", 4.0, None, 0)


@pytest.mark.parametrize("kind", ["cpu", "membw", "cache", "io"])
def test_every_kind_runs_pauses_resumes_and_stops(
    need, support, tree: str, tmp_path: Path, kind: str
) -> None:
    need("freeze", "usage")
    spec = CoRunnerSpec(f"{kind}-0", kind, working_set_mib=4.0 if kind != "cpu" else None)
    c = CoRunner(spec, Cgroup(support, f"{tree}/be/{spec.name}").create(), tmp_path)
    c.start()
    try:
        _wait_progress(c)
        c.pause()
        assert c.describe()["state"] == "paused"
        time.sleep(0.1)  # a unit under way when frozen is counted when thawed
        assert _progress_over(c, 0.4) == 0
        c.resume()
        assert c.describe()["state"] == "running"
        _wait_progress(c)
        done = c.units()
    finally:
        c.stop()
    assert c.describe()["state"] == "stopped" and not c.alive()
    assert c.units() >= done > 0  # the work it did is still counted once it is gone


def test_throttling_caps_the_cpu_a_corunner_gets(need, support, tree: str, tmp_path: Path) -> None:
    need("cpu", "usage")
    g = Cgroup(support, f"{tree}/be/hog").create()
    c = CoRunner(CoRunnerSpec("hog", "cpu"), g, tmp_path)
    c.start()
    try:
        _wait_progress(c)
        c.throttle(0.05)
        assert c.describe()["limit_cores"] == pytest.approx(0.05)
        used = g.usage_ns()
        time.sleep(1.0)
        # CFS enforces the quota per 100 ms period: over 1 s at most 0.05 s plus one period's
        # overrun (the kernel charges the period in which the quota ran out): 0.05 + 0.05 s
        assert (g.usage_ns() - used) / 1e9 <= 0.10
        periods, throttled, _ = g.throttling()
        assert throttled > 0 and periods > 0
    finally:
        c.stop()


def test_without_cgroups_pause_falls_back_to_signals_and_throttle_says_why(
    tmp_path: Path,
) -> None:
    c = CoRunner(CoRunnerSpec("lone", "cpu", cpus=(0,)), None, tmp_path)
    c.start()
    try:
        _wait_progress(c)
        c.pause()
        time.sleep(0.1)
        assert _progress_over(c, 0.3) == 0
        c.resume()
        _wait_progress(c)
        with pytest.raises(CgroupUnavailable, match="without cgroups"):
            c.throttle(0.5)
    finally:
        c.stop()


def test_stopping_a_paused_corunner_ends_it(need, support, tree: str, tmp_path: Path) -> None:
    need("freeze")
    c = CoRunner(CoRunnerSpec("frozen", "cpu"), Cgroup(support, f"{tree}/be/f").create(), tmp_path)
    c.start()
    c.pause()
    c.stop(evicted=True)
    assert not c.alive() and c.describe()["state"] == "evicted"


def test_stop_ends_a_corunner_that_another_writer_keeps_refreezing(
    need, support, tree: str, tmp_path: Path
) -> None:
    """The agent may freeze the group again between stop's thaw and its signal (seen in the
    bench: a frozen task with SIGKILL pending hung the router); stop thaws every round."""
    import threading

    need("freeze")
    group = Cgroup(support, f"{tree}/be/r").create()
    c = CoRunner(CoRunnerSpec("refrozen", "cpu"), group, tmp_path)
    c.start()
    group.freeze(True)
    done = threading.Event()

    def refreeze() -> None:
        while not done.is_set():
            with contextlib.suppress(Exception):
                group.freeze(True, timeout_s=0.2)
            time.sleep(0.02)

    writer = threading.Thread(target=refreeze, daemon=True)
    writer.start()
    try:
        c.stop(timeout_s=0.3)
    finally:
        done.set()
        writer.join()
    assert not c.alive() and c.describe()["state"] == "stopped"
