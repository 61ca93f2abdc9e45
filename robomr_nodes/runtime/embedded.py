"""The embedded backend's :class:`NodeHandle`: topics, timers and parameters on an executor."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from robomr_nodes.api import GuardCondition, NodeHandle, Publisher, QosName, Timer, qos_profile
from robomr_nodes.params import ParameterError, ParameterSpec, ParamOverride, ParamValue
from robomr_nodes.runtime.names import apply_remaps, normalize_namespace

if TYPE_CHECKING:
    from robomr_nodes.runtime.executor import EmbeddedExecutor

# Parameters every ROS 2 node accepts; the embedded executor decides the clock itself.
_STANDARD_PARAMS = {"use_sim_time"}


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
        return self._executor.add_timer(self.fq_name, period_s, callback)

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
            return spec.validate(spec.default, self.fq_name)
        override = self._overrides[spec.name]
        try:
            return spec.validate(override.value, self.fq_name)
        except ParameterError as err:
            raise ParameterError(f"{err} (set in {override.source})") from None

    def check_unused_params(self) -> None:
        """Raises ParameterError for overrides that name no declared parameter (typos)."""
        unknown = sorted(
            k
            for k, o in self._overrides.items()
            if k not in self._declared and k not in _STANDARD_PARAMS and not o.wildcard
        )
        if unknown:
            sources = sorted({self._overrides[k].source for k in unknown})
            raise ParameterError(
                f"{', '.join(sources)}: {unknown} not declared by node {self.fq_name}; "
                f"its parameters are {sorted(self._declared) or 'none'}"
            )

    def now_ns(self) -> int:
        return self._executor.now_ns()

    @property
    def logger(self) -> logging.Logger:
        return self._logger
