"""Embedded executor semantics: ordering, QoS, timers on sim time, error isolation."""

from __future__ import annotations

import time
from typing import Any

import pytest

from robomr_nodes.api import NodeHandle, RobomrNode
from robomr_nodes.messages import new_message
from robomr_nodes.runtime.executor import SIM_START_NS, EmbeddedExecutor, GraphError

STRING = "std_msgs/msg/String"


def _string(text: str) -> Any:
    return new_message(STRING, data=text)


class Recorder(RobomrNode):
    """Subscribes to /a and /b with the QoS set on the class; remembers (topic, data, time)."""

    NAME = "recorder"
    qos = "reliable"
    depth: int | None = None

    def __init__(self, handle: NodeHandle) -> None:
        super().__init__(handle)
        self.got: list[tuple[str, str, int]] = []
        for topic in ("/a", "/b"):
            handle.create_subscription(
                STRING,
                topic,
                lambda m, t=topic: self.got.append((t, m.data, handle.now_ns())),
                self.qos,
                self.depth,
            )


def test_messages_are_delivered_in_time_order_across_topics() -> None:
    ex = EmbeddedExecutor()
    a, b = ex.create_injector(STRING, "/a"), ex.create_injector(STRING, "/b")
    rec = ex.add_node(Recorder)
    ex.schedule(SIM_START_NS + 30, lambda: a.publish(_string("a30")))
    ex.schedule(SIM_START_NS + 10, lambda: b.publish(_string("b10")))
    ex.schedule(SIM_START_NS + 20, lambda: a.publish(_string("a20")))
    ex.spin()
    assert [(d, t - SIM_START_NS) for _, d, t in rec.got] == [("b10", 10), ("a20", 20), ("a30", 30)]


@pytest.mark.parametrize(
    ("depth", "expected"),
    [(1, ["m4"]), (3, ["m2", "m3", "m4"]), (10, ["m0", "m1", "m2", "m3", "m4"])],
)
def test_keep_last_depth_drops_the_oldest_queued_messages(depth: int, expected: list[str]) -> None:
    ex = EmbeddedExecutor()
    pub = ex.create_injector(STRING, "/a")

    class Shallow(Recorder):
        pass

    Shallow.depth = depth
    rec = ex.add_node(Shallow)
    # five messages published in one callback queue up before the subscriber runs
    ex.schedule(SIM_START_NS, lambda: [pub.publish(_string(f"m{i}")) for i in range(5)])
    ex.spin()
    assert [d for _, d, _ in rec.got] == expected


def test_best_effort_publisher_does_not_reach_reliable_subscriber() -> None:
    ex = EmbeddedExecutor()
    pub = ex.create_injector(STRING, "/a", "sensor_data")
    rec = ex.add_node(Recorder)  # reliable
    ex.schedule(SIM_START_NS, lambda: pub.publish(_string("x")))
    ex.spin()
    assert rec.got == []


def test_transient_local_publisher_replays_last_message_to_late_subscriber() -> None:
    ex = EmbeddedExecutor()
    pub = ex.create_injector(STRING, "/a", "latched")
    pub.publish(_string("old"))
    pub.publish(_string("map"))

    class Late(Recorder):
        qos = "latched"

    rec = ex.add_node(Late)
    ex.spin()
    assert [d for _, d, _ in rec.got] == ["map"]  # depth 1: only the newest


def test_timer_fires_every_period_on_sim_time() -> None:
    ex = EmbeddedExecutor()
    fired: list[int] = []

    class Ticker(RobomrNode):
        NAME = "ticker"

        def __init__(self, handle: NodeHandle) -> None:
            super().__init__(handle)
            handle.create_timer(0.25, lambda: fired.append(handle.now_ns() - SIM_START_NS))

    ex.add_node(Ticker)
    ex.spin(duration_s=1.0)
    assert fired == [250_000_000, 500_000_000, 750_000_000, 1_000_000_000]
    assert ex.now_ns() == SIM_START_NS + 1_000_000_000


def test_callback_that_raises_is_recorded_and_the_run_continues() -> None:
    ex = EmbeddedExecutor()
    pub = ex.create_injector(STRING, "/a")

    class Fragile(RobomrNode):
        NAME = "fragile"

        def __init__(self, handle: NodeHandle) -> None:
            super().__init__(handle)
            self.ok: list[str] = []
            handle.create_subscription(STRING, "/a", self.on_msg)

        def on_msg(self, msg: Any) -> None:
            if msg.data == "bad":
                raise ValueError("cannot handle this one")
            self.ok.append(msg.data)

    node = ex.add_node(Fragile)
    for i, text in enumerate(["one", "bad", "two"]):
        ex.schedule(SIM_START_NS + i, lambda t=text: pub.publish(_string(t)))
    ex.spin()
    assert node.ok == ["one", "two"]
    assert len(ex.errors) == 1
    assert ex.errors[0].node == "/fragile" and "cannot handle" in ex.errors[0].error
    assert ex.stats["/fragile"].errors == 1


def test_one_topic_with_two_types_is_rejected() -> None:
    ex = EmbeddedExecutor()
    ex.create_injector(STRING, "/a")
    with pytest.raises(GraphError, match="/a has type std_msgs/msg/String"):
        ex.create_injector("std_msgs/msg/Int32", "/a")


def test_duplicate_node_name_is_rejected() -> None:
    ex = EmbeddedExecutor()
    ex.add_node(Recorder)
    with pytest.raises(GraphError, match="duplicate node name /recorder"):
        ex.add_node(Recorder)


def test_wall_clock_never_fires_a_timer_early() -> None:
    ex = EmbeddedExecutor(clock="wall")
    stamps: list[int] = []
    start_ns = time.time_ns()

    class Ticker(RobomrNode):
        NAME = "ticker"

        def __init__(self, handle: NodeHandle) -> None:
            super().__init__(handle)
            handle.create_timer(0.01, lambda: stamps.append(handle.now_ns()))

    ex.add_node(Ticker)
    ex.spin(duration_s=0.1)
    assert len(stamps) >= 1
    # the k-th expiry is due one period after the previous due time, never before it
    assert all(t >= start_ns + (k + 1) * 10_000_000 for k, t in enumerate(stamps))


def test_clock_driver_publishes_sim_time_on_clock_topic() -> None:
    ex = EmbeddedExecutor(clock_hz=10.0)
    seen: list[int] = []
    ex.add_tap(
        lambda topic, _t, stamp, msg, _q: (
            seen.append(msg.clock.sec * 10**9 + msg.clock.nanosec) if topic == "/clock" else None
        )
    )
    ex.spin(duration_s=0.3)
    assert [s - SIM_START_NS for s in seen] == [100_000_000, 200_000_000, 300_000_000]
