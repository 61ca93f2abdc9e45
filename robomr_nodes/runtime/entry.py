"""``main()`` of every node executable: runs the node on rclpy (``ros2 run robomr <exec>``)."""

from __future__ import annotations

import sys

from robomr_nodes.api import RobomrNode


def rclpy_available() -> bool:
    try:
        import rclpy  # noqa: F401
    except ImportError:
        return False
    return True


def run_node(node_cls: type[RobomrNode], args: list[str] | None = None) -> int:
    """Runs one node on rclpy until shutdown. Without ROS 2, explains how to run it instead."""
    if not rclpy_available():
        print(
            f"{node_cls.NAME}: rclpy is not installed, so this node cannot run as a ROS 2 "
            "process here. Run the graph on the embedded backend instead: "
            "`robomr launch launch/robomr.launch.yaml`.",
            file=sys.stderr,
        )
        return 1
    from robomr_nodes.runtime.rclpy_backend import spin_node

    return spin_node(node_cls, args)
