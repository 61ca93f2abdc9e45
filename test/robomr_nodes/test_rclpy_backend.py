"""The rclpy backend runs only where ROS 2 is installed; here it is skipped with the reason."""

from __future__ import annotations

import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy (ROS 2) is not installed on this machine")


def test_synthetic_cloud_node_publishes_on_rclpy() -> None:
    from rclpy.node import Node

    from robomr_nodes.nodes.synthetic_cloud import SyntheticCloudNode
    from robomr_nodes.runtime.rclpy_backend import RclpyHandle

    rclpy.init()
    try:
        node = Node("synthetic_cloud")
        received = []
        node.create_subscription(
            __import__("sensor_msgs.msg").msg.PointCloud2, "points", received.append, 10
        )
        SyntheticCloudNode(RclpyHandle(node))
        for _ in range(50):
            rclpy.spin_once(node, timeout_sec=0.1)
            if received:
                break
        assert received and received[0].width > 0
        node.destroy_node()
    finally:
        rclpy.shutdown()


def test_a_callback_that_raises_is_logged_and_the_node_keeps_spinning() -> None:
    from rclpy.node import Node

    from robomr_nodes.runtime.rclpy_backend import RclpyHandle

    rclpy.init()
    try:
        node = Node("raiser")
        handle = RclpyHandle(node)
        calls = []

        def tick() -> None:
            calls.append(1)
            raise RuntimeError("boom")

        handle.create_timer(0.01, tick)
        for _ in range(50):
            rclpy.spin_once(node, timeout_sec=0.05)  # would raise RuntimeError unguarded
            if len(calls) >= 3:
                break
        assert len(calls) >= 3
        node.destroy_node()
    finally:
        rclpy.shutdown()
