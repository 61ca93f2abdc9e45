"""The edge bridge's job runner: in-order delivery through the trigger, KEEP_LAST-style drops,
errors reported on the executor side; and its counters."""

from __future__ import annotations

import threading

import pytest

from robomr_nodes.bridge_worker import BridgeStats, JobRunner


def test_sync_runner_delivers_inline() -> None:
    out: list[int] = []
    JobRunner(False).submit(lambda: 7, out.append)
    assert out == [7]


def test_async_runner_delivers_in_order_and_drops_the_oldest_waiting() -> None:
    gate, started, triggered = threading.Event(), threading.Event(), threading.Event()
    runner = JobRunner(True, triggered.set, max_pending=2)
    out: list[int] = []
    dropped: list[int] = []

    def job(i: int):
        def run() -> int:
            started.set()
            gate.wait(10.0)
            return i

        return run

    runner.submit(job(0), out.append, lambda: dropped.append(0))
    assert started.wait(10.0)  # job 0 runs on the worker, blocked on the gate
    for i in range(1, 5):  # 1..4 wait: only the newest two are kept
        runner.submit(job(i), out.append, lambda i=i: dropped.append(i))
    gate.set()
    runner.close()
    assert triggered.is_set()
    runner.deliver_ready()  # what the guard condition's callback does on the executor thread
    assert out == [0, 3, 4] and dropped == [1, 2]


def test_a_failing_job_is_raised_on_the_executor_side_after_the_others() -> None:
    runner = JobRunner(True, lambda: None)
    out: list[int] = []
    runner.submit(lambda: 1, out.append)
    runner.submit(lambda: 1 / 0, out.append)
    runner.submit(lambda: 3, out.append)
    runner.close()
    with pytest.raises(ZeroDivisionError):
        runner.deliver_ready()
    assert out == [1, 3]


def test_async_runner_needs_a_trigger() -> None:
    with pytest.raises(ValueError, match="trigger"):
        JobRunner(True, None)


def test_stats_report_ratio_fallbacks_and_rtt() -> None:
    s = BridgeStats()
    for rtt in (0.1, 0.2, 0.3):
        s.offload(rtt)
    s.fallback("deadline", "late")
    s.drop()
    v = s.values()
    assert v["frames"] == 4 and v["offload_ratio"] == 0.75 and v["fallbacks_deadline"] == 1
    assert v["rtt_ms_p50"] == pytest.approx(200.0) and v["dropped"] == 1
    assert v["last_error"] == "late"
