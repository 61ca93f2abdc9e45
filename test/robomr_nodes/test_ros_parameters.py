"""ROS 2 parameter behaviour that does not need rclpy: descriptors, read-only parameters, and
the shutdown path of a node process (run against a stand-in for rclpy, since ROS 2 is absent)."""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

import pytest

from robomr_nodes.api import NodeHandle, RobomrNode
from robomr_nodes.params import ParameterSpec, descriptor_fields


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            ParameterSpec("rate_hz", 10.0, "rate", min_value=0.5),
            {"dynamic_typing": True, "floating_point_range": (0.5, 1e308)},
        ),
        (
            ParameterSpec("beams", 32, "beams", min_value=16, max_value=128),
            {"dynamic_typing": False, "integer_range": (16, 128)},
        ),
        (
            ParameterSpec("mode", "a", "mode", choices=("a", "b")),
            {"dynamic_typing": False, "additional_constraints": "one of ['a', 'b']"},
        ),
    ],
)
def test_descriptor_fields_carry_ranges_and_choices(spec: ParameterSpec, expected: dict) -> None:
    fields = descriptor_fields(spec)
    assert fields["read_only"] is True  # nodes read parameters once, at start
    assert {k: fields[k] for k in expected} == expected


class _ExternalShutdown(Exception):
    pass


def _stand_in_rclpy(monkeypatch: pytest.MonkeyPatch, spin_raises: type[BaseException]) -> list:
    """Modules named like rclpy's that record calls; ``rclpy.spin`` raises ``spin_raises``."""
    calls: list[str] = []

    class Node:
        def __init__(self, name: str) -> None:
            calls.append(f"node {name}")

        def get_name(self) -> str:
            return "n"

        def get_namespace(self) -> str:
            return "/"

        def get_logger(self) -> Any:
            return types.SimpleNamespace(error=print, warning=print, info=print, debug=print)

        def destroy_node(self) -> None:
            calls.append("destroy_node")

    def spin(node: Any) -> None:
        raise spin_raises()

    modules = {
        "rclpy": types.SimpleNamespace(
            init=lambda args=None: calls.append("init"),
            spin=spin,
            try_shutdown=lambda: calls.append("try_shutdown"),
        ),
        "rclpy.executors": types.SimpleNamespace(ExternalShutdownException=_ExternalShutdown),
        "rclpy.node": types.SimpleNamespace(Node=Node),
        "rclpy.qos": types.SimpleNamespace(
            DurabilityPolicy=None, HistoryPolicy=None, QoSProfile=None, ReliabilityPolicy=None
        ),
        "rcl_interfaces": types.SimpleNamespace(),
        "rcl_interfaces.msg": types.SimpleNamespace(
            FloatingPointRange=None, IntegerRange=None, ParameterDescriptor=None
        ),
        "rosidl_runtime_py": types.SimpleNamespace(),
        "rosidl_runtime_py.utilities": types.SimpleNamespace(get_message=None),
    }
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.delitem(sys.modules, "robomr_nodes.runtime.rclpy_backend", raising=False)
    return calls


@pytest.mark.parametrize("stop", [KeyboardInterrupt, _ExternalShutdown])
def test_ctrl_c_and_external_shutdown_end_the_node_cleanly(
    monkeypatch: pytest.MonkeyPatch, stop: type[BaseException]
) -> None:
    calls = _stand_in_rclpy(monkeypatch, stop)
    backend = importlib.import_module("robomr_nodes.runtime.rclpy_backend")

    class Closing(RobomrNode):
        NAME = "closing"

        def __init__(self, handle: NodeHandle) -> None:
            super().__init__(handle)

        def close(self) -> None:
            calls.append("close")

    try:
        assert backend.spin_node(Closing) == 0
    finally:
        sys.modules.pop("robomr_nodes.runtime.rclpy_backend", None)
    assert calls == ["init", "node closing", "close", "destroy_node", "try_shutdown"]
