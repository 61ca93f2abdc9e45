"""The rclpy backend: robomr nodes as real ROS 2 nodes (needs a sourced ROS 2 install).

Messages stay rosbags dataclasses inside the node; at the boundary they cross as CDR bytes
(``Publisher.publish(bytes)`` and ``create_subscription(..., raw=True)``), which rclpy
supports natively, so node code is identical on both backends. Parameters are declared with
their description and numeric ranges (``ros2 param describe`` shows them) and validated by the
same :class:`ParameterSpec` as on the embedded backend. As on the embedded backend, a callback
that raises (or a message that does not deserialize) is logged with its traceback and the node
keeps spinning, instead of the exception ending ``rclpy.spin``.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from typing import Any

import rclpy
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
)
from rosidl_runtime_py.utilities import get_message

from robomr_nodes.api import (
    GuardCondition,
    NodeHandle,
    Publisher,
    QosName,
    RobomrNode,
    Timer,
    qos_profile,
)
from robomr_nodes.messages import deserialize, serialize
from robomr_nodes.params import ParameterSpec, ParamValue, descriptor_fields


def _rclpy_qos(name: QosName, depth: int | None) -> QoSProfile:
    q = qos_profile(name, depth)
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=q.depth,
        reliability=ReliabilityPolicy.RELIABLE
        if q.reliability == "reliable"
        else ReliabilityPolicy.BEST_EFFORT,
        durability=DurabilityPolicy.TRANSIENT_LOCAL
        if q.durability == "transient_local"
        else DurabilityPolicy.VOLATILE,
    )


class _RawPublisher:
    def __init__(self, pub: Any, typename: str, topic: str) -> None:
        self._pub = pub
        self.typename = typename
        self.topic = topic

    def publish(self, msg: Any) -> None:
        self._pub.publish(serialize(msg, self.typename))


class _LoggerAdapter(logging.LoggerAdapter):
    """Python logging calls routed to the rclpy node logger (shown by ros2 launch, /rosout)."""

    def __init__(self, rcl_logger: Any, name: str) -> None:
        super().__init__(logging.getLogger(f"robomr.{name}"), {})
        self._rcl = rcl_logger

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        text = str(msg) % args if args else str(msg)
        if level >= logging.ERROR:
            self._rcl.error(text)
        elif level >= logging.WARNING:
            self._rcl.warning(text)
        elif level >= logging.INFO:
            self._rcl.info(text)
        else:
            self._rcl.debug(text)


class RclpyHandle(NodeHandle):
    """A :class:`NodeHandle` over an ``rclpy.node.Node``."""

    def __init__(self, node: Node) -> None:
        self._node = node
        self.name = node.get_name()
        self.namespace = node.get_namespace()
        self._logger = _LoggerAdapter(node.get_logger(), self.name)

    def create_publisher(
        self, typename: str, topic: str, qos: QosName = "reliable", depth: int | None = None
    ) -> Publisher:
        pub = self._node.create_publisher(get_message(typename), topic, _rclpy_qos(qos, depth))
        return _RawPublisher(pub, typename, topic)

    def create_subscription(
        self,
        typename: str,
        topic: str,
        callback: Callable[[Any], None],
        qos: QosName = "reliable",
        depth: int | None = None,
    ) -> Any:
        # one parameter exactly: rclpy passes only the (raw) message to such a callback
        def on_raw(raw: bytes) -> None:
            self._guarded(lambda: callback(deserialize(raw, typename)), f"subscription {topic}")

        return self._node.create_subscription(
            get_message(typename), topic, on_raw, _rclpy_qos(qos, depth), raw=True
        )

    def create_timer(self, period_s: float, callback: Callable[[], None]) -> Timer:
        def on_timer() -> None:  # no parameter: rclpy passes no TimerInfo
            self._guarded(callback, "timer")

        return self._node.create_timer(period_s, on_timer)

    def create_guard_condition(self, callback: Callable[[], None]) -> GuardCondition:
        # rcl guard conditions are triggered thread-safely and wake the executor's wait set
        # (rclpy/node.py: Node.create_guard_condition; rcl/guard_condition.h: rcl_trigger_...)
        return self._node.create_guard_condition(lambda: self._guarded(callback, "guard"))

    def _guarded(self, call: Callable[[], None], what: str) -> None:
        """Runs ``call``; an exception is logged with its traceback instead of raised."""
        try:
            call()
        except Exception:  # one bad message or callback must not stop the node
            self._logger.error("%s callback failed:\n%s", what, traceback.format_exc())

    def declare_parameter(self, spec: ParameterSpec) -> ParamValue:
        # read-only unless the node applies changes: `ros2 param set` must not report success
        # for a value the node never reads again (see robomr_nodes.params.descriptor_fields)
        fields = descriptor_fields(spec)
        desc = ParameterDescriptor(
            description=fields["description"],
            additional_constraints=fields["additional_constraints"],
            read_only=fields["read_only"],
            dynamic_typing=fields["dynamic_typing"],
        )
        if "floating_point_range" in fields:
            lo, hi = fields["floating_point_range"]
            desc.floating_point_range = [FloatingPointRange(from_value=lo, to_value=hi)]
        if "integer_range" in fields:
            lo, hi = fields["integer_range"]
            desc.integer_range = [IntegerRange(from_value=lo, to_value=hi)]
        value = self._node.declare_parameter(spec.name, spec.default, desc).value
        return spec.validate(value, self._node.get_fully_qualified_name())

    def now_ns(self) -> int:
        return self._node.get_clock().now().nanoseconds

    @property
    def logger(self) -> logging.LoggerAdapter:
        return self._logger


def spin_node(node_cls: type[RobomrNode], args: list[str] | None = None) -> int:
    """``rclpy.init``, construct the node, spin until Ctrl-C or shutdown.

    As ros2/demos' demo_nodes_py does (``topics/talker.py``): KeyboardInterrupt (Ctrl-C in a
    terminal) and ExternalShutdownException (``ros2 launch`` shutting the context down on
    SIGINT) end the spin quietly, and ``rclpy.try_shutdown()`` shuts down only a context that is
    still up, so neither path prints a traceback.
    """
    rclpy.init(args=args)
    node = Node(node_cls.NAME)
    instance = None
    try:
        instance = node_cls(RclpyHandle(node))
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if instance is not None:
            instance.close()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0
