"""``synthetic_cloud``: publishes a seeded synthetic lidar-like cloud (ground plus boxes).

A minimal sensor for exercising the runtime, bags and RViz without the simulator.
Publishes ``points`` (sensor_msgs/PointCloud2: x, y, z, intensity, ring; sensor-data QoS) and,
like the simulator, is the graph's clock source: it runs on its own time and publishes
``/clock`` (rosgraph_msgs/Clock) just before each cloud, for the nodes on sim time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from robomr_nodes.api import NodeHandle, RobomrNode
from robomr_nodes.convert.pointcloud import array_to_cloud, xyz_to_structured
from robomr_nodes.messages import header, new_message, time_msg
from robomr_nodes.params import param
from robomr_nodes.runtime.entry import run_node


@dataclass(frozen=True)
class SyntheticCloudParams:
    rate_hz: float = param(10.0, "publish rate (Hz)", min_value=0.1, max_value=100.0)
    num_points: int = param(20000, "points per cloud", min_value=1, max_value=5_000_000)
    num_boxes: int = param(
        6, "box-shaped objects scattered around the sensor", min_value=0, max_value=100
    )
    range_m: float = param(
        30.0, "half-width of the square area covered (m)", min_value=1.0, max_value=200.0
    )
    seed: int = param(0, "random seed (same seed, same clouds)", min_value=0)
    frame_id: str = param("lidar", "frame of the published clouds")
    publish_clock: bool = param(True, "publish /clock before each cloud (the graph's time source)")


def synthetic_cloud(rng: np.random.Generator, p: SyntheticCloudParams) -> np.ndarray:
    """Points [N, 5] (x, y, z, intensity, ring): a ground plane 1.8 m below and box surfaces."""
    n_ground = p.num_points if p.num_boxes == 0 else p.num_points // 2
    ground = np.column_stack(
        [rng.uniform(-p.range_m, p.range_m, (n_ground, 2)), np.full(n_ground, -1.8)]
    )
    n_obj = p.num_points - n_ground
    centers = rng.uniform(-p.range_m * 0.7, p.range_m * 0.7, (max(p.num_boxes, 1), 2))
    owner = rng.integers(0, max(p.num_boxes, 1), n_obj)
    local = rng.uniform(-1.0, 1.0, (n_obj, 3)) * np.array([2.2, 0.9, 0.75])
    objects = np.column_stack([centers[owner] + local[:, :2], local[:, 2] - 1.05])
    xyz = np.vstack([ground, objects])
    intensity = rng.uniform(0.0, 1.0, len(xyz))
    ring = np.clip((np.arctan2(xyz[:, 2], np.hypot(xyz[:, 0], xyz[:, 1]) + 1e-6) + 0.5) * 32, 0, 31)
    return np.column_stack([xyz, intensity, np.floor(ring)]).astype(np.float32)


class SyntheticCloudNode(RobomrNode):
    NAME = "synthetic_cloud"

    def __init__(self, handle: NodeHandle) -> None:
        super().__init__(handle)
        self.params = handle.declare_params(SyntheticCloudParams)
        self._rng = np.random.default_rng(self.params.seed)
        self._pub = handle.create_publisher("sensor_msgs/msg/PointCloud2", "points", "sensor_data")
        self._clock = (
            handle.create_publisher("rosgraph_msgs/msg/Clock", "/clock")
            if self.params.publish_clock
            else None
        )
        handle.create_timer(1.0 / self.params.rate_hz, self._tick)

    def _tick(self) -> None:
        now = self.handle.now_ns()
        if self._clock is not None:
            self._clock.publish(new_message("rosgraph_msgs/msg/Clock", clock=time_msg(now)))
        points = synthetic_cloud(self._rng, self.params)
        self._pub.publish(
            array_to_cloud(xyz_to_structured(points), header(now, self.params.frame_id))
        )


def main(args: list[str] | None = None) -> int:
    return run_node(SyntheticCloudNode, args)
