"""``lidar_detector``: the sparse-CNN vehicle detector (``perception/``) as a node.

Subscribes ``points`` (sensor_msgs/PointCloud2 with x, y, z and any other fields in any order,
sensor-data QoS). Publishes, stamped with the cloud's stamp and frame:

- ``detections``: vision_msgs/Detection3DArray, one hypothesis per box (class, score);
- ``detections/markers``: visualization_msgs/MarkerArray of the boxes for RViz;
- ``/diagnostics``: diagnostic_msgs/DiagnosticArray (status ``lidar_detector``) with the
  processing time and counts.

Any lidar works: the parameters ``sensor_height_m``, ``sensor_pitch_rad``, ``sensor_roll_rad``
and ``sensor_yaw_rad`` say where the lidar sits (its points are moved into the model's ground
frame, docs/perception.md) and ``layout`` how it encodes intensity (``auto`` infers it); boxes
come back in the cloud's own frame. With ``deskew`` on, the node also subscribes ``odom``
(nav_msgs/Odometry, twist in the robot's body frame) and undoes a spinning lidar's rolling
shutter before detecting (``perception.deskew``; ``scan_period_s``, ``scan_start_azimuth_rad``
and ``scan_direction`` describe the sensor's revolution); a cloud without odometry within
``odom_max_age_s`` of its stamp is used as reported (``deskewed`` 0 in the diagnostics).
Leave it off for clouds a driver has already deskewed, and for the built-in simulator's
lidar, which scans each frame at one instant. An empty cloud, or one whose points are all
NaN/Inf or out of range, gives an empty Detection3DArray; a cloud without x/y/z fields is
logged and skipped. The network itself is the plain function ``perception.detect.detect`` on a
batch of clouds, so the same call can run remotely (the edge bridge) without changing this
node's interface.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from perception.config import PRECISIONS
from perception.sensor_input import LAYOUTS
from robomr_nodes.api import NodeHandle, RobomrNode
from robomr_nodes.convert.detections import BoxList, boxes_to_detections
from robomr_nodes.convert.markers import boxes_to_markers
from robomr_nodes.convert.pointcloud import CloudError, cloud_to_xyz
from robomr_nodes.diagnostics import diagnostic_array
from robomr_nodes.launch_yaml import package_share
from robomr_nodes.messages import stamp_ns
from robomr_nodes.odometry_deskew import DeskewParams, OdometryDeskew
from robomr_nodes.params import ParameterError, param
from robomr_nodes.runtime.entry import run_node


@dataclass(frozen=True)
class DetectorParams(DeskewParams):
    model_path: str = param("", "detector weights (.pt); empty: models/detector.pt of the package")
    device: str = param("auto", "inference device", choices=("auto", "cpu", "cuda"))
    score_threshold: float = param(0.3, "drop boxes below this score", min_value=0.0, max_value=1.0)
    max_range_m: float = param(
        0.0,
        "drop points farther than this before detection (m); 0: the model's own range",
        min_value=0.0,
        max_value=500.0,
    )
    # spconv's CPU kernels accumulate in thread order: one thread gives bit-identical outputs
    # (deterministic replay) and avoids OpenMP spin-waiting when the cores are shared.
    threads: int = param(1, "torch CPU threads (0: torch's default)", min_value=0, max_value=256)
    # float32 by default (as ``detect``): the same boxes on every CPU, so a bag recorded before
    # the parameter existed replays as recorded and the edge service gives the node's boxes
    dense_precision: str = param(
        "float32",
        "arithmetic of the dense neck and head (auto: bfloat16 on CPUs with native bfloat16)",
        choices=PRECISIONS,
    )
    sensor_height_m: float = param(
        1.8, "lidar height above the ground (m)", min_value=0.0, max_value=10.0
    )
    sensor_pitch_rad: float = param(
        0.0, "lidar pitch relative to the ground, nose down > 0", min_value=-0.5, max_value=0.5
    )
    sensor_roll_rad: float = param(
        0.0, "lidar roll relative to the ground", min_value=-0.5, max_value=0.5
    )
    sensor_yaw_rad: float = param(
        0.0,
        "turn of the lidar frame about z to face x forward (nuScenes LIDAR_TOP: 1.5708)",
        min_value=-3.1416,
        max_value=3.1416,
    )
    layout: str = param(
        "auto", "intensity and range encoding of the clouds", choices=("auto", *LAYOUTS)
    )
    min_range_m: float = param(
        2.5,
        "drop returns closer than this (m): the robot's own body",
        min_value=0.0,
        max_value=10.0,
    )


def resolve_model_path(path: str) -> Path:
    """The configured model file, or the package's shipped ``models/detector.pt``."""
    return Path(path) if path else package_share("robomr") / "models" / "detector.pt"


def crop_range(points: np.ndarray, max_range_m: float) -> np.ndarray:
    """Points [N, C] within ``max_range_m`` (horizontal) of the sensor; all if 0."""
    if max_range_m <= 0.0:
        return points
    return points[np.hypot(points[:, 0], points[:, 1]) <= max_range_m]


class LidarDetectorNode(RobomrNode):
    NAME = "lidar_detector"

    def __init__(self, handle: NodeHandle) -> None:
        super().__init__(handle)
        import torch

        from perception.checkpoint import load_detector

        self.params = handle.declare_params(DetectorParams)
        if self.params.threads:
            torch.set_num_threads(self.params.threads)
        from perception.sensor_input import SensorSetup

        path = resolve_model_path(self.params.model_path)
        self.model = load_detector(path, self.params.device)
        p = self.params
        from perception.dense_layers import PrecisionError, resolve_precision

        try:  # refused at start, not on every cloud (bfloat16 is for CPUs)
            resolve_precision(p.dense_precision, self.model.device)
        except PrecisionError as err:
            raise ParameterError(f"dense_precision: {err}") from err
        self.setup = SensorSetup(
            p.sensor_height_m,
            p.sensor_pitch_rad,
            p.sensor_roll_rad,
            p.sensor_yaw_rad,
            p.layout,
            p.min_range_m,
        )
        self.log.info("loaded %s on %s", path, self.model.device)
        self._det = handle.create_publisher("vision_msgs/msg/Detection3DArray", "detections")
        self._markers = handle.create_publisher(
            "visualization_msgs/msg/MarkerArray", "detections/markers"
        )
        self._status = handle.create_publisher(
            "diagnostic_msgs/msg/DiagnosticArray", "/diagnostics"
        )
        self.odometry = OdometryDeskew(p, self.setup.T_model_sensor[:3, :3], self.log)
        if p.deskew:
            handle.create_subscription("nav_msgs/msg/Odometry", "odom", self.odometry.on_odom)
        handle.create_subscription(
            "sensor_msgs/msg/PointCloud2", "points", self._on_cloud, "sensor_data"
        )

    def detect(self, points: np.ndarray, motion: Any = None) -> BoxList:
        """Boxes in one cloud [N, >=3] (lidar frame) above the score threshold; ``motion``
        (a ScanMotion) deskews it first."""
        from perception.config import CLASSES
        from perception.detect import detect

        cloud = crop_range(points, self.params.max_range_m)
        precision = self.params.dense_precision
        (det,) = detect(self.model, [cloud], self.setup, motions=motion, precision=precision)
        keep = det.scores >= self.params.score_threshold
        return BoxList(det.boxes[keep], [CLASSES[i] for i in det.labels[keep]], det.scores[keep])

    def _on_cloud(self, msg: Any) -> None:
        start = time.perf_counter()
        try:
            points = cloud_to_xyz(msg)
        except CloudError as err:
            self.log.error("skipping cloud stamped %d: %s", stamp_ns(msg.header.stamp), err)
            return
        motion = self.odometry.motion(stamp_ns(msg.header.stamp))
        boxes = self.detect(points, motion)
        self._det.publish(boxes_to_detections(boxes, msg.header))
        self._markers.publish(
            boxes_to_markers(msg.header, boxes.boxes, boxes.labels, boxes.scores, ns="detections")
        )
        elapsed_ms = 1e3 * (time.perf_counter() - start)
        self._status.publish(
            diagnostic_array(
                self.handle.now_ns(),
                "lidar_detector",
                {
                    "processing_ms": elapsed_ms,
                    "points": len(points),
                    "detections": len(boxes),
                    "deskewed": int(motion is not None),
                },
            )
        )


def main(args: list[str] | None = None) -> int:
    return run_node(LidarDetectorNode, args)
