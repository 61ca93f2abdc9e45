"""The embedded backend's :class:`NodeHandle`: topics, timers and parameters on an executor.

``use_sim_time`` is handled as rclpy's TimeSource does (``rclpy/rclpy/time_source.py``): the
parameter is a bool (any other type is an error, as rclpy's declare_parameter raises), and a
node with it true subscribes to ``/clock`` (best effort, depth 1, subject to the node's remaps)
and takes its time from it; see :mod:`robomr_nodes.runtime.ros_time`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from robomr_nodes.api import GuardCondition, NodeHandle, Publisher, QosName, Timer, qos_profile
from robomr_nodes.params import ParameterError, ParameterSpec, ParamOverride, ParamValue
from robomr_nodes.runtime.names import apply_remaps, normalize_namespace
from robomr_nodes.runtime.ros_time import NodeClock

if TYPE_CHECKING:
    from robomr_nodes.runtime.executor import EmbeddedExecutor

USE_SIM_TIME = "use_sim_time"  # declared by every rclpy node (TimeSource.attach_node)


class EmbeddedHandle(NodeHandle):
    """A node's handle on an :class:`EmbeddedExecutor` (created by ``executor.add_node``)."""

    def __init__(
        self,
        executor: EmbeddedExecutor,
        name: str,
        namespace: str,
        params: dict[str, ParamOverride],
        remaps: list[tuple[str, str]],
    ) -> None:
        self._executor = executor
        self.name = name
        self.namespace = normalize_namespace(namespace)
        self.fq_name = f"/{name}" if self.namespace == "/" else f"{self.namespace}/{name}"
        self._overrides = dict(params)
        self._declared: dict[str, ParameterSpec] = {}
        self._remaps = list(remaps)
        self._logger = logging.getLogger("robomr." + self.fq_name.strip("/").replace("/", "."))
        self.values: dict[str, ParamValue] = {}  # every declared parameter's value
        use_sim_time = self._declare_use_sim_time()
        self.clock = NodeClock(executor.now_ns, use_sim_time)
        if use_sim_time:
            executor._add_subscription(
                self.fq_name,
                "rosgraph_msgs/msg/Clock",
                self.resolve("/clock"),
                self._on_clock,
                qos_profile("sensor_data", 1),  # TimeSource: best effort, depth 1
            )

    def _declare_use_sim_time(self) -> bool:
        spec = ParameterSpec(USE_SIM_TIME, False, "take node time from /clock", read_only=False)
        value = self.declare_parameter(spec)
        return bool(value)

    def _on_clock(self, msg: Any) -> None:
        self.clock.set_ros_time_override(
            int(msg.clock.sec) * 1_000_000_000 + int(msg.clock.nanosec)
        )
        self._executor.clock_updated(self.clock)

    def resolve(self, topic: str) -> str:
        """The fully qualified, remapped name of ``topic`` for this node."""
        return apply_remaps(topic, self.namespace, self.name, self._remaps)

    def create_publisher(
        self, typename: str, topic: str, qos: QosName = "reliable", depth: int | None = None
    ) -> Publisher:
        return self._executor._add_publisher(
            self.fq_name, typename, self.resolve(topic), qos_profile(qos, depth)
        )

    def create_subscription(
        self,
        typename: str,
        topic: str,
        callback: Callable[[Any], None],
        qos: QosName = "reliable",
        depth: int | None = None,
    ) -> Any:
        return self._executor._add_subscription(
            self.fq_name, typename, self.resolve(topic), callback, qos_profile(qos, depth)
        )

    def create_timer(self, period_s: float, callback: Callable[[], None]) -> Timer:
        return self._executor.add_timer(self.fq_name, period_s, callback, self.clock)

    def create_guard_condition(self, callback: Callable[[], None]) -> GuardCondition:
        return self._executor.create_guard_condition(self.fq_name, callback)

    @property
    def virtual_time(self) -> bool:
        return self._executor.clock == "sim"

    def declare_parameter(self, spec: ParameterSpec) -> ParamValue:
        if spec.name in self._declared:
            raise ParameterError(f"{self.fq_name}: parameter {spec.name!r} declared twice")
        self._declared[spec.name] = spec
        if spec.name not in self._overrides:
            value = spec.validate(spec.default, self.fq_name)
        else:
            override = self._overrides[spec.name]
            try:
                value = spec.validate(override.value, self.fq_name)
            except ParameterError as err:
                raise ParameterError(f"{err} (set in {override.source})") from None
        self.values[spec.name] = value
        return value

    def check_unused_params(self) -> None:
        """Raises ParameterError for overrides that name no declared parameter (typos)."""
        unknown = sorted(
            k for k, o in self._overrides.items() if k not in self._declared and not o.wildcard
        )
        if unknown:
            sources = sorted({self._overrides[k].source for k in unknown})
            raise ParameterError(
                f"{', '.join(sources)}: {unknown} not declared by node {self.fq_name}; "
                f"its parameters are {sorted(self._declared) or 'none'}"
            )

    def now_ns(self) -> int:
        return self.clock.now_ns()

    @property
    def logger(self) -> logging.Logger:
        return self._logger
