"""``cloud_markers``: finds above-ground clusters in a cloud and publishes them as boxes.

Subscribes ``points`` (PointCloud2, any field layout); publishes ``markers``
(visualization_msgs/MarkerArray) and ``clusters`` (vision_msgs/Detection3DArray), stamped
with the cloud's stamp and frame. Clusters are connected cells of an occupancy grid of the
points more than ``ground_clearance_m`` above the lowest points; boxes are axis-aligned.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from robomr_nodes.api import NodeHandle, RobomrNode
from robomr_nodes.convert.detections import BoxList, boxes_to_detections
from robomr_nodes.convert.markers import boxes_to_markers
from robomr_nodes.convert.pointcloud import CloudError, cloud_to_xyz
from robomr_nodes.params import param
from robomr_nodes.runtime.entry import run_node


@dataclass(frozen=True)
class CloudMarkersParams:
    cell_m: float = param(0.5, "grid cell size (m)", min_value=0.05, max_value=5.0)
    ground_clearance_m: float = param(
        0.3,
        "height above the ground below which points are ground (m)",
        min_value=0.0,
        max_value=5.0,
    )
    min_points: int = param(20, "smallest cluster reported", min_value=1)


def cluster_boxes(points: np.ndarray, p: CloudMarkersParams) -> np.ndarray:
    """Axis-aligned boxes [K, 7] of above-ground clusters of points [N, >=3]."""
    xyz = points[np.all(np.isfinite(points[:, :3]), axis=1), :3]
    if len(xyz) == 0:
        return np.zeros((0, 7))
    ground_z = np.percentile(xyz[:, 2], 5)
    above = xyz[xyz[:, 2] > ground_z + p.ground_clearance_m]
    if len(above) == 0:
        return np.zeros((0, 7))
    cells = np.floor((above[:, :2] - above[:, :2].min(axis=0)) / p.cell_m).astype(np.int64)
    grid = np.zeros(cells.max(axis=0) + 1, dtype=bool)
    grid[cells[:, 0], cells[:, 1]] = True
    labels, count = ndimage.label(grid, structure=np.ones((3, 3)))
    owner = labels[cells[:, 0], cells[:, 1]]
    boxes = []
    for k in range(1, count + 1):
        pts = above[owner == k]
        if len(pts) < p.min_points:
            continue
        lo, hi = pts.min(axis=0), pts.max(axis=0)
        size = np.maximum(hi - lo, 0.05)
        boxes.append([*(0.5 * (lo + hi)), *size, 0.0])
    return np.asarray(boxes, dtype=np.float64).reshape(-1, 7)


class CloudMarkersNode(RobomrNode):
    NAME = "cloud_markers"

    def __init__(self, handle: NodeHandle) -> None:
        super().__init__(handle)
        self.params = handle.declare_params(CloudMarkersParams)
        self._markers = handle.create_publisher("visualization_msgs/msg/MarkerArray", "markers")
        self._clusters = handle.create_publisher("vision_msgs/msg/Detection3DArray", "clusters")
        handle.create_subscription(
            "sensor_msgs/msg/PointCloud2", "points", self._on_cloud, "sensor_data"
        )

    def _on_cloud(self, msg: object) -> None:
        try:
            points = cloud_to_xyz(msg)
        except CloudError as err:
            self.log.warning("dropping a malformed cloud: %s", err)
            return
        boxes = cluster_boxes(points, self.params)
        labels = ["cluster"] * len(boxes)
        scores = np.ones(len(boxes))
        self._clusters.publish(boxes_to_detections(BoxList(boxes, labels, scores), msg.header))
        self._markers.publish(boxes_to_markers(msg.header, boxes, labels))


def main(args: list[str] | None = None) -> int:
    return run_node(CloudMarkersNode, args)
