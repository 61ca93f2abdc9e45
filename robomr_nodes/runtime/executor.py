"""The embedded executor: a discrete-event, single-threaded ROS 2 graph in one process.

Events (timer expiries and message deliveries) are processed in time order, ties in the order
they were created. The executor's own time plays the part of ROS's system time: on **sim time**
it jumps to the next event, so a run is deterministic and as fast as the callbacks allow; on
**wall time** the executor sleeps until each event is due. Callbacks take no time. A callback
that raises is logged and recorded in :attr:`EmbeddedExecutor.errors`; the run goes on.

Each node has a ROS clock (:mod:`robomr_nodes.runtime.ros_time`): a node with
``use_sim_time: true`` reads its time from ``/clock`` as rclpy does (time 0 and no timer until
the first message), and its timers fire when ``/clock`` reaches them, as rcl's do.

Delivery follows ROS 2 semantics where they matter for correctness: per-subscription KEEP_LAST
queues of the subscription's depth, QoS compatibility (a best-effort publisher does not reach a
reliable subscriber), and transient-local publishers replaying their last messages to late
subscribers.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import queue
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from robomr_nodes.api import QosProfile, RobomrNode, qos_profile
from robomr_nodes.messages import msg_class, new_message, time_msg
from robomr_nodes.params import ParamOverride
from robomr_nodes.runtime.names import apply_remaps, normalize_namespace
from robomr_nodes.runtime.ros_time import NodeClock, RclTimer, period_to_ns

SIM_START_NS = 1_000_000_000  # sim runs start at t = 1 s (a zero stamp reads as "unset" in ROS)
Tap = Callable[[str, str, int, Any, QosProfile], None]
_log = logging.getLogger("robomr.executor")


class GraphError(RuntimeError):
    """An inconsistent graph: one topic with two types, a duplicate node name."""


@dataclass
class CallbackError:
    """A callback that raised. ``where`` is ``topic /x`` or ``timer``."""

    node: str
    where: str
    time_ns: int
    error: str
    traceback: str


@dataclass
class NodeStats:
    """Callback count and wall time spent in one node's callbacks."""

    callbacks: int = 0
    wall_s: float = 0.0
    errors: int = 0
    durations_s: deque = field(default_factory=lambda: deque(maxlen=100_000))


@dataclass
class _Subscription:
    node: str
    topic: str
    typename: str
    callback: Callable[[Any], None]
    qos: QosProfile
    queue: deque = field(default_factory=deque)


@dataclass
class _Publisher:
    node: str
    topic: str
    typename: str
    qos: QosProfile
    history: deque = field(default_factory=deque)


@dataclass
class TopicInfo:
    """A topic in the graph: its type and who publishes / subscribes (node names)."""

    name: str
    typename: str
    publishers: list[str] = field(default_factory=list)
    subscribers: list[str] = field(default_factory=list)


class _Guard:
    """A guard condition of the embedded executor (see ``create_guard_condition``)."""

    def __init__(self, executor: EmbeddedExecutor, node: str, callback: Callable[[], None]):
        self._executor, self.node, self.callback = executor, node, callback

    def trigger(self) -> None:
        self._executor._triggered.put(self)
        self._executor._wake.set()


class EmbeddedPublisher:
    """Publisher returned by :meth:`NodeHandle.create_publisher` on the embedded backend."""

    def __init__(self, executor: EmbeddedExecutor, rec: _Publisher) -> None:
        self._executor = executor
        self._rec = rec
        self.topic = rec.topic
        self.typename = rec.typename

    def publish(self, msg: Any) -> None:
        self._executor._publish(self._rec, msg)


class EmbeddedExecutor:
    """Runs robomr nodes in one process on sim or wall time.

    Args:
        clock: "sim" (deterministic, jumps to the next event) or "wall".
        start_ns: sim time at start (ignored on wall time).
        clock_hz: rate of rosgraph_msgs/Clock on /clock (0 disables), like a sim's clock driver.
    """

    def __init__(
        self,
        clock: Literal["sim", "wall"] = "sim",
        start_ns: int = SIM_START_NS,
        clock_hz: float = 0.0,
    ) -> None:
        if clock not in ("sim", "wall"):
            raise ValueError(f"clock must be 'sim' or 'wall', got {clock!r}")
        self.clock = clock
        self._now_ns = start_ns if clock == "sim" else time.time_ns()
        self._events: list[tuple[int, int, str, Any]] = []
        self._seq = itertools.count()
        self._subs: dict[str, list[_Subscription]] = {}
        self._pubs: dict[str, list[_Publisher]] = {}
        self._types: dict[str, str] = {}
        self._taps: list[Tap] = []
        self._stop = False
        # guard conditions triggered from other threads, run at the next step of spin()
        self._triggered: queue.SimpleQueue = queue.SimpleQueue()
        self._wake = threading.Event()
        self.nodes: dict[str, RobomrNode] = {}
        self.stats: dict[str, NodeStats] = {}
        self.errors: list[CallbackError] = []
        self.system_clock = NodeClock(self.now_ns, use_sim_time=False)
        if clock_hz > 0:
            clock_pub = self.create_injector(
                "rosgraph_msgs/msg/Clock", "/clock", "reliable", node="clock"
            )
            self.add_timer(
                "clock",
                1.0 / clock_hz,
                lambda: clock_pub.publish(
                    new_message("rosgraph_msgs/msg/Clock", clock=time_msg(self.now_ns()))
                ),
            )

    # -- time -------------------------------------------------------------------------------
    def now_ns(self) -> int:
        return self._now_ns if self.clock == "sim" else time.time_ns()

    # -- graph ------------------------------------------------------------------------------
    def add_node(
        self,
        node_cls: type[RobomrNode],
        name: str | None = None,
        namespace: str = "/",
        params: dict[str, ParamOverride] | None = None,
        remaps: list[tuple[str, str]] | None = None,
    ) -> RobomrNode:
        """Constructs ``node_cls`` with an embedded handle and adds it to the graph.

        ``params`` maps parameter names to overrides (value and the file or launch entry it
        came from, for error messages).

        Raises:
            GraphError: a node of that fully qualified name exists.
            ParameterError: a bad or unknown parameter override.
        """
        from robomr_nodes.runtime.embedded import EmbeddedHandle

        name = name or node_cls.NAME
        fq = _fq_name(namespace, name)
        if fq in self.nodes:
            raise GraphError(f"duplicate node name {fq}")
        handle = EmbeddedHandle(self, name, namespace, params or {}, remaps or [])
        self.stats.setdefault(fq, NodeStats())
        node = node_cls(handle)
        handle.check_unused_params()
        self.nodes[fq] = node
        return node

    def topics(self) -> dict[str, TopicInfo]:
        """Every topic with its type, publishers and subscribers."""
        out = {t: TopicInfo(t, ty) for t, ty in self._types.items()}
        for t, pubs in self._pubs.items():
            out[t].publishers = [p.node for p in pubs]
        for t, subs in self._subs.items():
            out[t].subscribers = [s.node for s in subs]
        return out

    def add_tap(self, tap: Tap) -> None:
        """Calls ``tap(topic, typename, time_ns, msg, qos)`` for every published message."""
        self._taps.append(tap)

    def create_injector(
        self, typename: str, topic: str, qos: str = "reliable", node: str = "injector"
    ) -> EmbeddedPublisher:
        """A publisher that belongs to no node (bag player, tests, external drivers)."""
        profile = qos_profile(qos)  # type: ignore[arg-type]
        return self._add_publisher(node, typename, topic, profile)

    def schedule(self, time_ns: int, callback: Callable[[], None], node: str = "executor") -> None:
        """Runs ``callback()`` once at ``time_ns`` (not before the current time)."""
        self._push(max(time_ns, self._now_ns), "call", (node, callback))

    def create_guard_condition(self, node: str, callback: Callable[[], None]) -> _Guard:
        """A guard whose thread-safe ``trigger()`` queues ``callback`` to run in :meth:`spin`
        (at the current node time; on sim time that instant depends on wall timing)."""
        return _Guard(self, node, callback)

    def _take_triggered(self) -> None:
        while not self._triggered.empty():
            guard = self._triggered.get_nowait()
            self._push(self.now_ns(), "call", (guard.node, guard.callback))

    def add_timer(
        self,
        node: str,
        period_s: float,
        callback: Callable[[], None],
        clock: NodeClock | None = None,
    ) -> RclTimer:
        """A timer on ``clock`` (default: the executor's time), first due one period from now.

        Raises:
            TimerError: ``period_s`` is not > 0.
        """
        clock = clock or self.system_clock
        rec = RclTimer.start(node, period_to_ns(period_s), callback, clock.now_ns())
        if clock.use_sim_time:
            clock.timers.append(rec)  # driven by /clock: see clock_updated
        else:
            self._push(rec.next_call_ns, "timer", rec)
        return rec

    def clock_updated(self, clock: NodeClock) -> None:
        """Queues the timers of a sim-time clock that a ``/clock`` message made ready."""
        for rec in clock.ready_timers():
            rec.queued = True
            self._push(self.now_ns(), "sim_timer", (rec, clock))

    def _add_publisher(
        self, node: str, typename: str, topic: str, qos: QosProfile
    ) -> EmbeddedPublisher:
        self._check_type(topic, typename)
        rec = _Publisher(node, topic, typename, qos, deque(maxlen=qos.depth))
        self._pubs.setdefault(topic, []).append(rec)
        return EmbeddedPublisher(self, rec)

    def _add_subscription(
        self, node: str, typename: str, topic: str, callback: Callable[[Any], None], qos: QosProfile
    ) -> _Subscription:
        self._check_type(topic, typename)
        sub = _Subscription(node, topic, typename, callback, qos, deque(maxlen=qos.depth))
        self._subs.setdefault(topic, []).append(sub)
        if qos.durability == "transient_local":
            for pub in self._pubs.get(topic, []):
                if pub.qos.compatible_with(qos):
                    for msg in pub.history:
                        self._enqueue(sub, msg)
        return sub

    def _check_type(self, topic: str, typename: str) -> None:
        msg_class(typename)  # raises MessageError for an unknown type
        known = self._types.setdefault(topic, typename)
        if known != typename:
            raise GraphError(f"topic {topic} has type {known}; cannot also use it as {typename}")

    # -- events -----------------------------------------------------------------------------
    def _push(self, time_ns: int, kind: str, payload: Any) -> None:
        heapq.heappush(self._events, (time_ns, next(self._seq), kind, payload))

    def _publish(self, pub: _Publisher, msg: Any) -> None:
        if getattr(msg, "__msgtype__", pub.typename) != pub.typename:
            raise GraphError(
                f"{pub.node}: publishing {msg.__msgtype__} on {pub.topic} ({pub.typename})"
            )
        now = self.now_ns()
        if pub.qos.durability == "transient_local":
            pub.history.append(msg)
        for tap in self._taps:
            tap(pub.topic, pub.typename, now, msg, pub.qos)
        for sub in self._subs.get(pub.topic, []):
            if pub.qos.compatible_with(sub.qos):
                self._enqueue(sub, msg)

    def _enqueue(self, sub: _Subscription, msg: Any) -> None:
        sub.queue.append(msg)  # deque(maxlen=depth): KEEP_LAST drops the oldest
        self._push(self.now_ns(), "deliver", sub)

    def request_stop(self) -> None:
        """Makes :meth:`spin` return after the current callback."""
        self._stop = True

    def spin(
        self,
        duration_s: float | None = None,
        until: Callable[[], bool] | None = None,
        on_advance: Callable[[int], None] | None = None,
    ) -> int:
        """Processes events for ``duration_s`` of node time (or until none are left, ``until()``
        is true, or :meth:`request_stop`). Returns the number of callbacks run."""
        end_ns = None if duration_s is None else self.now_ns() + round(duration_s * 1e9)
        self._stop = False
        ran = 0
        while not self._stop and not (until and until()):
            self._take_triggered()
            if not self._events:
                break
            time_ns = self._events[0][0]
            if end_ns is not None and time_ns > end_ns:
                break
            if self.clock == "wall":
                delay = (time_ns - time.time_ns()) / 1e9
                if delay > 0:
                    self._wake.wait(min(delay, 0.05))  # a triggered guard wakes it early
                    self._wake.clear()
                    continue
            elif time_ns > self._now_ns:
                self._now_ns = time_ns
                if on_advance:
                    on_advance(time_ns)
            _, _, kind, payload = heapq.heappop(self._events)
            ran += self._dispatch(kind, payload)
        if end_ns is not None and self.clock == "sim" and not self._stop:
            self._now_ns = max(self._now_ns, end_ns)
        return ran

    def _dispatch(self, kind: str, payload: Any) -> int:
        if kind == "deliver":
            sub: _Subscription = payload
            if not sub.queue:
                return 0  # dropped by KEEP_LAST before delivery
            msg = sub.queue.popleft()
            return self._run(sub.node, f"topic {sub.topic}", lambda: sub.callback(msg))
        if kind == "timer":  # a timer on the executor's time
            rec: RclTimer = payload
            if rec.cancelled:
                return 0
            rec.call(self.now_ns())
            self._push(rec.next_call_ns, "timer", rec)
            return self._run(rec.node, "timer", rec.callback)
        if kind == "sim_timer":  # a timer on /clock time, made ready by a /clock message
            rec, clock = payload
            rec.queued = False
            if not rec.is_ready(clock.now_ns()):  # cancelled, or /clock jumped back meanwhile
                return 0
            rec.call(clock.now_ns())
            ran = self._run(rec.node, "timer", rec.callback)
            self.clock_updated(clock)  # still ready (rcl: next_call == now): fires again
            return ran
        node, fn = payload
        return self._run(node, "scheduled call", fn)

    def _run(self, node: str, where: str, fn: Callable[[], None]) -> int:
        stats = self.stats.setdefault(node, NodeStats())
        start = time.perf_counter()
        try:
            fn()
        except Exception as err:  # a failing callback must not take the graph down
            stats.errors += 1
            tb = traceback.format_exc()
            self.errors.append(CallbackError(node, where, self.now_ns(), repr(err), tb))
            logging.getLogger(f"robomr.{node.strip('/').replace('/', '.')}").error(
                "callback for %s raised %r (the node keeps running)", where, err
            )
        finally:
            elapsed = time.perf_counter() - start
            stats.callbacks += 1
            stats.wall_s += elapsed
            stats.durations_s.append(elapsed)
        return 1

    def shutdown(self) -> None:
        """Calls ``close()`` on every node (errors are logged, not raised)."""
        for fq, node in self.nodes.items():
            try:
                node.close()
            except Exception as err:
                _log.error("%s: close() raised %r", fq, err)
        self._events.clear()


def _fq_name(namespace: str, name: str) -> str:
    ns = normalize_namespace(namespace)
    return f"/{name}" if ns == "/" else f"{ns}/{name}"


def resolve_topic(namespace: str, name: str, topic: str, remaps: list[tuple[str, str]]) -> str:
    """Fully qualified topic of a node's relative or absolute topic name after remapping."""
    return apply_remaps(topic, namespace, name, remaps)
