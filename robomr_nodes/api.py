"""The node API: what a robomr node may use, implemented by the rclpy and embedded backends.

A node is a class constructed with a :class:`NodeHandle`; it creates its publishers,
subscriptions and timers and declares its parameters in ``__init__``. Messages are the
rosbags message dataclasses of :mod:`robomr_nodes.messages` in both backends (the rclpy backend
converts through CDR bytes at the boundary), so node code never imports rclpy.

Messages are shared, not copied, between nodes of one process (like ROS 2 intra-process
communication): a callback must not modify the message it receives.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Protocol, TypeVar

from robomr_nodes.messages import time_msg
from robomr_nodes.params import ParameterSpec, ParamValue, build_params, specs_of

P = TypeVar("P")
QosName = Literal["sensor_data", "reliable", "latched"]


@dataclass(frozen=True)
class QosProfile:
    """The QoS settings robomr uses (history is always KEEP_LAST).

    Attributes:
        reliability: "reliable" or "best_effort".
        durability: "volatile", or "transient_local" (late joiners get the last ``depth``).
        depth: queue depth per subscription (KEEP_LAST).
    """

    reliability: Literal["reliable", "best_effort"]
    durability: Literal["volatile", "transient_local"]
    depth: int

    def compatible_with(self, subscriber: QosProfile) -> bool:
        """Whether a publisher with this profile connects to ``subscriber`` (ROS 2 rules)."""
        if self.reliability == "best_effort" and subscriber.reliability == "reliable":
            return False
        return not (self.durability == "volatile" and subscriber.durability == "transient_local")


QOS_PROFILES: dict[str, QosProfile] = {
    # rclpy.qos.qos_profile_sensor_data: best effort, volatile, depth 5
    "sensor_data": QosProfile("best_effort", "volatile", 5),
    # the rclpy default: reliable, volatile, depth 10
    "reliable": QosProfile("reliable", "volatile", 10),
    # static data (/tf_static, maps, camera info): reliable, transient local, depth 1
    "latched": QosProfile("reliable", "transient_local", 1),
}


def qos_profile(name: QosName, depth: int | None = None) -> QosProfile:
    """The named profile, optionally with another depth.

    Raises:
        ValueError: unknown name or depth < 1.
    """
    if name not in QOS_PROFILES:
        raise ValueError(f"unknown QoS profile {name!r}; known: {sorted(QOS_PROFILES)}")
    base = QOS_PROFILES[name]
    if depth is None:
        return base
    if depth < 1:
        raise ValueError(f"QoS depth must be >= 1, got {depth}")
    return QosProfile(base.reliability, base.durability, depth)


class Publisher(Protocol):
    topic: str
    typename: str

    def publish(self, msg: Any) -> None: ...


class Timer(Protocol):
    def cancel(self) -> None: ...


class GuardCondition(Protocol):
    def trigger(self) -> None:
        """Thread-safe: makes the executor call the guard's callback in its own thread."""


class NodeHandle(abc.ABC):
    """One node's view of the middleware. Created by a backend, passed to the node class."""

    name: str
    namespace: str

    @abc.abstractmethod
    def create_publisher(
        self, typename: str, topic: str, qos: QosName = "reliable", depth: int | None = None
    ) -> Publisher:
        """A publisher of ``typename`` (e.g. ``sensor_msgs/msg/PointCloud2``) on ``topic``."""

    @abc.abstractmethod
    def create_subscription(
        self,
        typename: str,
        topic: str,
        callback: Callable[[Any], None],
        qos: QosName = "reliable",
        depth: int | None = None,
    ) -> Any:
        """Calls ``callback(msg)`` for each message on ``topic``."""

    @abc.abstractmethod
    def create_timer(self, period_s: float, callback: Callable[[], None]) -> Timer:
        """Calls ``callback()`` every ``period_s`` of node time (sim or wall), first after one
        period."""

    def create_guard_condition(self, callback: Callable[[], None]) -> GuardCondition:
        """A guard condition (rclpy ``Node.create_guard_condition``): ``trigger()``, callable from
        any thread, makes the executor run ``callback()`` in its thread soon after. This is how
        work finished on a worker thread (e.g. an HTTP answer) gets back to the node. On the
        embedded executor's sim time it is not deterministic (it follows wall time): nodes then
        use :attr:`virtual_time` to pick a synchronous path instead.

        Raises:
            NotImplementedError: the backend has no guard conditions.
        """
        raise NotImplementedError(f"{type(self).__name__} has no guard conditions")

    @property
    def virtual_time(self) -> bool:
        """True when node time only moves between callbacks (the embedded executor on sim
        time): a callback's wall duration then costs no node time, and replays are
        deterministic only if the node does not depend on wall-clock completion order."""
        return False

    @abc.abstractmethod
    def declare_parameter(self, spec: ParameterSpec) -> ParamValue:
        """Declares one parameter and returns its validated value (override or default).

        Raises:
            ParameterError: the override has the wrong type or is out of bounds.
        """

    @abc.abstractmethod
    def now_ns(self) -> int:
        """Node time in int nanoseconds (sim time or wall time, as the backend runs)."""

    @property
    @abc.abstractmethod
    def logger(self) -> logging.Logger | logging.LoggerAdapter:
        """Logger named after the node."""

    def declare_params(self, params_cls: type[P]) -> P:
        """Declares every field of a :func:`robomr_nodes.params.param` dataclass."""
        values = {spec.name: self.declare_parameter(spec) for spec in specs_of(params_cls)}
        return build_params(params_cls, values)

    def stamp(self) -> Any:
        """builtin_interfaces/Time of :meth:`now_ns`."""
        return time_msg(self.now_ns())


class RobomrNode:
    """Base class of robomr nodes.

    Subclasses set ``NAME`` (default node name), optionally ``Params`` (a param dataclass), and
    build everything in ``__init__(handle)``; ``close()`` releases resources at shutdown.
    """

    NAME: ClassVar[str] = "robomr_node"

    def __init__(self, handle: NodeHandle) -> None:
        self.handle = handle
        self.log = handle.logger

    def close(self) -> None:
        """Called once when the run ends; default: nothing to release."""
