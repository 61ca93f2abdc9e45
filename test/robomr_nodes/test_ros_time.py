"""ROS time on the embedded backend: rclpy's use_sim_time and rcl's timers, case by case.

Expected values come from rcl/src/rcl/timer.c and rclpy/rclpy/time_source.py (jazzy): a timer
is due at creation + period, skips missed periods when called late, fires again at once when a
late call lands exactly on a period boundary, and restarts its period after a jump back past its
last call; a node on sim time reads 0 until /clock arrives.
"""

from __future__ import annotations

from typing import Any

import pytest

from robomr_nodes.api import NodeHandle, RobomrNode
from robomr_nodes.messages import new_message, time_msg
from robomr_nodes.params import ParameterError, ParamOverride
from robomr_nodes.runtime.executor import SIM_START_NS, EmbeddedExecutor
from robomr_nodes.runtime.ros_time import NodeClock, RclTimer, TimerError, period_to_ns

MS = 1_000_000


@pytest.mark.parametrize(
    ("next_ns", "now_ns", "expected_next_ns"),
    [
        (100, 100, 200),  # on time: one period on
        (100, 150, 200),  # late within a period: still the next boundary
        (100, 350, 400),  # missed two periods: skipped, not replayed
        (100, 400, 400),  # late onto a boundary: due again at once (rcl rounds up to now)
    ],
)
def test_timer_call_moves_the_next_call_like_rcl(
    next_ns: int, now_ns: int, expected_next_ns: int
) -> None:
    timer = RclTimer("n", 100, lambda: None, next_ns - 100, next_ns)
    timer.call(now_ns)
    assert (timer.last_call_ns, timer.next_call_ns) == (now_ns, expected_next_ns)


@pytest.mark.parametrize(
    ("jump_to_ns", "expected"),
    [
        (250, (100, 200)),  # forward past next_call: ready, times kept
        (150, (100, 200)),  # forward, not yet due: nothing changes
        (120, (100, 200)),  # back, but not before the last call: keeps waiting for 200
        (50, (50, 150)),  # back before the last call: the period restarts from now
    ],
)
def test_time_jumps_follow_rcl_timer_jump_callback(jump_to_ns: int, expected: tuple) -> None:
    clock = NodeClock(lambda: 0, use_sim_time=True)
    clock.set_ros_time_override(130)
    timer = RclTimer.start("n", 100, lambda: None, 100)
    clock.timers.append(timer)
    clock.set_ros_time_override(jump_to_ns)
    assert (timer.last_call_ns, timer.next_call_ns) == expected


@pytest.mark.parametrize("period_s", [0.0, -1.0, float("nan")])
def test_non_positive_timer_periods_are_rejected(period_s: float) -> None:
    with pytest.raises(TimerError, match="must be > 0"):
        period_to_ns(period_s)


class Ticker(RobomrNode):
    """A timer at 100 ms that records the node's time at every call."""

    NAME = "ticker"

    def __init__(self, handle: NodeHandle) -> None:
        super().__init__(handle)
        self.ticks: list[int] = []
        self.start_ns = handle.now_ns()
        handle.create_timer(0.1, lambda: self.ticks.append(handle.now_ns()))


def _sim_time_ticker(ex: EmbeddedExecutor, use_sim_time: Any = True) -> Ticker:
    return ex.add_node(Ticker, params={"use_sim_time": ParamOverride(use_sim_time, "test")})


def _publish_clock(ex: EmbeddedExecutor, at_ns: int, clock_ns: int) -> None:
    pub = ex.create_injector("rosgraph_msgs/msg/Clock", "/clock", "reliable", node="clock_src")
    ex.schedule(
        at_ns, lambda: pub.publish(new_message("rosgraph_msgs/msg/Clock", clock=time_msg(clock_ns)))
    )


def test_sim_time_node_reads_zero_and_runs_no_timer_without_clock() -> None:
    ex = EmbeddedExecutor()
    node = _sim_time_ticker(ex)
    ex.spin(duration_s=5.0)
    assert node.start_ns == 0 and node.ticks == []
    assert node.handle.now_ns() == 0


def test_node_on_its_own_time_ticks_without_clock() -> None:
    ex = EmbeddedExecutor()
    node = _sim_time_ticker(ex, use_sim_time=False)
    ex.spin(duration_s=0.35)
    assert [t - SIM_START_NS for t in node.ticks] == [100 * MS, 200 * MS, 300 * MS]


def test_timers_follow_clock_messages_forward_and_back() -> None:
    ex = EmbeddedExecutor()
    node = _sim_time_ticker(ex)  # created at time 0: first due at 100 ms of /clock time
    start = ex.now_ns()
    for step, clock_ms in enumerate([50, 100, 150, 200, 1050, 1050, 300, 399, 400]):
        _publish_clock(ex, start + (step + 1) * MS, clock_ms * MS)
    ex.spin(duration_s=0.1)
    # 1050: one call for the missed periods; 300 (< last call 1050): period restarts, due 400
    assert [t // MS for t in node.ticks] == [100, 200, 1050, 400]


def test_clock_step_onto_a_period_boundary_fires_twice_like_rcl() -> None:
    ex = EmbeddedExecutor()
    node = _sim_time_ticker(ex)
    _publish_clock(ex, ex.now_ns() + MS, 300 * MS)  # next_call 100 -> 200 -> rounded up to 300
    ex.spin(duration_s=0.01)
    assert [t // MS for t in node.ticks] == [300, 300]


def test_a_clock_source_on_sim_time_never_ticks() -> None:
    """The shipped-config bug: the node that publishes /clock waits for /clock itself."""

    class ClockSource(RobomrNode):
        NAME = "clock_source"

        def __init__(self, handle: NodeHandle) -> None:
            super().__init__(handle)
            pub = handle.create_publisher("rosgraph_msgs/msg/Clock", "/clock")
            handle.create_timer(
                0.05,
                lambda: pub.publish(
                    new_message("rosgraph_msgs/msg/Clock", clock=time_msg(handle.now_ns()))
                ),
            )

    for source_on_sim_time in (True, False):
        ex = EmbeddedExecutor()
        ex.add_node(ClockSource, params={"use_sim_time": ParamOverride(source_on_sim_time, "test")})
        node = _sim_time_ticker(ex)
        ex.spin(duration_s=1.0)
        if source_on_sim_time:
            assert node.ticks == []
        else:  # created at time 0, the timer is overdue at the first /clock (1.05 s), then
            # follows the source's time on its 100 ms boundaries
            ms = [(t - SIM_START_NS) // MS for t in node.ticks]
            assert ms == [50, *range(100, 1001, 100)]


def test_clock_subscription_is_best_effort_depth_one_and_follows_remaps() -> None:
    ex = EmbeddedExecutor()
    ex.add_node(
        Ticker,
        params={"use_sim_time": ParamOverride(True, "test")},
        remaps=[("/clock", "/sim/clock")],
    )
    topics = ex.topics()
    assert "/sim/clock" in topics and "/clock" not in topics
    (sub,) = ex._subs["/sim/clock"]
    assert (sub.qos.reliability, sub.qos.depth) == ("best_effort", 1)


@pytest.mark.parametrize("value", ["true", 1, None])
def test_use_sim_time_must_be_a_bool(value: Any) -> None:
    with pytest.raises(ParameterError, match="use_sim_time"):
        _sim_time_ticker(EmbeddedExecutor(), use_sim_time=value)
