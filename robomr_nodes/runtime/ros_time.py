"""ROS time and timers on the embedded backend, exactly as rcl and rclpy define them.

Upstream sources followed (jazzy branches):

- ``rclpy/rclpy/time_source.py``: a node declares ``use_sim_time`` (bool, default false). With
  it true, the node's ROS clock has its time override enabled, starting from the TimeSource's
  last time, ``Time()`` = 0 ("zero time is a special value that means time is uninitialized"),
  and subscribes to ``/clock`` (rosgraph_msgs/Clock, best effort, depth 1); every message sets
  the override (``clock.set_ros_time_override``). Until the first message the node's time is 0.
- ``rcl/src/rcl/time.c`` (``rcl_set_ros_time_override``): while the override is active, a new
  value is a time jump of ``new - old``; jump callbacks run before and after it.
- ``rcl/src/rcl/timer.c``: a timer created at ``now`` has ``last_call = now`` and
  ``next_call = now + period``; it is ready when ``next_call - now <= 0``. ``rcl_timer_call``
  sets ``last_call = now`` and moves ``next_call`` one period forward, then forward by as many
  whole periods as needed to reach ``now`` (missed periods are skipped, not replayed). Timers on
  a ROS clock register a jump callback (any jump of 1 ns or more, either way): after a forward
  jump that makes it ready it wakes the executor; after a backward jump to before
  ``last_call`` it restarts its period from the new time (``next_call = now + period``).

So a node on sim time sees time 0 and runs no timer callback until ``/clock`` arrives, a large
``/clock`` step fires each due timer once (not once per missed period), and a jump back (a bag
replayed from its start, a simulator reset) restarts the timers' periods.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


class TimerError(ValueError):
    """A timer period that is not a positive number of seconds."""


def period_to_ns(period_s: float) -> int:
    """The timer period in int nanoseconds (at least 1).

    Raises:
        TimerError: ``period_s`` is not > 0.
    """
    if not period_s > 0:
        raise TimerError(f"timer period must be > 0 s, got {period_s}")
    return max(1, round(period_s * 1e9))


@dataclass
class RclTimer:
    """The state of one ``rcl_timer_t`` (times in int ns of the timer's clock)."""

    node: str
    period_ns: int
    callback: Callable[[], None]
    last_call_ns: int
    next_call_ns: int
    cancelled: bool = False
    queued: bool = field(default=False, repr=False)  # a fire event waits in the executor

    @classmethod
    def start(
        cls, node: str, period_ns: int, callback: Callable[[], None], now_ns: int
    ) -> RclTimer:
        """A timer created at ``now_ns`` (``rcl_timer_init``)."""
        return cls(node, period_ns, callback, now_ns, now_ns + period_ns)

    def cancel(self) -> None:
        self.cancelled = True

    def is_ready(self, now_ns: int) -> bool:
        """``rcl_timer_is_ready``: not cancelled and ``next_call - now <= 0``."""
        return not self.cancelled and self.next_call_ns - now_ns <= 0

    def call(self, now_ns: int) -> None:
        """The bookkeeping of ``rcl_timer_call`` (the caller then runs the callback)."""
        self.last_call_ns = now_ns
        next_ns = self.next_call_ns + self.period_ns
        if next_ns < now_ns:  # missed at least one period: skip ahead, rounding up
            next_ns += (1 + (now_ns - next_ns - 1) // self.period_ns) * self.period_ns
        self.next_call_ns = next_ns

    def after_jump(self, now_ns: int) -> None:
        """``_rcl_timer_time_jump`` after a jump without a clock change."""
        if self.next_call_ns <= now_ns:
            return  # ready: the executor picks it up (rcl triggers the guard condition)
        if now_ns < self.last_call_ns:  # back past the last call: restart the period
            self.next_call_ns = now_ns + self.period_ns
            self.last_call_ns = now_ns


class NodeClock:
    """A node's ROS clock: the executor's (system) time, or ``/clock`` time with use_sim_time.

    Args:
        system_now_ns: the executor's time, used while the time override is inactive.
        use_sim_time: the node's ``use_sim_time`` parameter.
    """

    def __init__(self, system_now_ns: Callable[[], int], use_sim_time: bool) -> None:
        self._system_now_ns = system_now_ns
        self.use_sim_time = use_sim_time
        self._override_ns = 0  # TimeSource._last_time_set starts as Time() == 0
        self.timers: list[RclTimer] = []
        self.clock_messages = 0

    def now_ns(self) -> int:
        return self._override_ns if self.use_sim_time else self._system_now_ns()

    def set_ros_time_override(self, time_ns: int) -> None:
        """A ``/clock`` message: sets the time and runs the timers' jump callbacks."""
        self.clock_messages += 1
        delta = time_ns - self._override_ns
        self._override_ns = time_ns
        if self.use_sim_time and delta != 0:  # thresholds: forward >= 1 ns, backward <= -1 ns
            for timer in self.timers:
                timer.after_jump(time_ns)

    def ready_timers(self) -> list[RclTimer]:
        """Timers that are ready now and have no fire event queued yet."""
        now = self.now_ns()
        return [t for t in self.timers if not t.queued and t.is_ready(now)]
