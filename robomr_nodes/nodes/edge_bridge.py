"""``edge_bridge``: runs detection (and the operator view) on the inference service, with local
fallback, in place of ``lidar_detector`` (and ``gs_render``).

Subscribes ``points`` (sensor-data QoS) and, with ``render``, ``camera/camera_info``, ``odom`` and
``/tf_static``; with ``deskew`` (as ``lidar_detector``'s, the lidar taken as mounted level) also
``odom``, and each cloud is deskewed before it is sent or run locally. Publishes what the local
nodes publish, with the same types, stamps and frames: ``detections``, ``detections/markers`` (and
``gs/image``), and on ``/diagnostics`` (diagnostic_msgs/DiagnosticArray) a status per frame
(``edge_bridge/detect``: processing time, counts, whether it was offloaded; ``edge_bridge/render``)
where the local nodes publish theirs, plus every ``diagnostics_period_s`` the status
``edge_bridge``: offload ratio, fallbacks by reason, RTT p50/p90, dropped frames and each replica's
circuit-breaker state (0 closed, 1 half-open, 2 open).

Each frame goes to the service (``offload.client``: deadline ``deadline_ms``, keep-alive
connections, a retry on another replica, a breaker per replica); when no answer comes in time or
the service refuses, the frame is processed locally with the same model the local node runs, so
no frame is lost, only late. Local-only results are equal to ``lidar_detector``'s.

Never blocking the executor (``mode``): ``async`` runs requests and fallbacks on a worker
thread and publishes through a guard condition (the default on rclpy and on wall time);
``sync`` waits in the callback for at most the deadline plus a local run (the default on the
embedded executor's sim time, where a callback costs no node time and outputs must not depend on
wall-clock completion order); ``local`` never calls the service (bit-exact replays).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from robomr_nodes.api import NodeHandle, RobomrNode
from robomr_nodes.bridge_worker import BridgeStats, JobRunner
from robomr_nodes.convert.detections import BoxList, boxes_to_detections
from robomr_nodes.convert.image import array_to_image, camera_info_to_k
from robomr_nodes.convert.markers import boxes_to_markers
from robomr_nodes.convert.pointcloud import CloudError, cloud_to_xyz
from robomr_nodes.convert.tf import odometry_in_frame
from robomr_nodes.diagnostics import OK, WARN, diagnostic_array
from robomr_nodes.messages import stamp_ns
from robomr_nodes.nodes.lidar_detector import crop_range, resolve_model_path
from robomr_nodes.odometry_deskew import DeskewParams, OdometryDeskew
from robomr_nodes.params import param
from robomr_nodes.runtime.entry import run_node
from robomr_nodes.tf_static import StaticTransforms


@dataclass(frozen=True)
class EdgeBridgeParams(DeskewParams):
    service_url: str = param("http://127.0.0.1:8700", "service replicas, comma-separated URLs")
    token_file: str = param("", "bearer token file; empty: $ROBOMR_SERVICE_TOKEN or none")
    mode: str = param("auto", "where requests run", choices=("auto", "async", "sync", "local"))
    detect: bool = param(True, "offload detection (points -> detections)")
    render: bool = param(False, "offload the operator view (camera_info -> gs/image)")
    deadline_ms: float = param(
        250.0, "answer time for a detection (ms)", min_value=1.0, max_value=10000.0
    )
    render_deadline_ms: float = param(
        400.0, "answer time for a render (ms)", min_value=1.0, max_value=10000.0
    )
    connect_timeout_ms: float = param(
        50.0, "TCP connect timeout (ms)", min_value=1.0, max_value=5000.0
    )
    max_attempts: int = param(2, "tries per frame across replicas", min_value=1, max_value=10)
    breaker_failures: int = param(
        3, "failures that open a replica's breaker", min_value=1, max_value=100
    )
    breaker_open_s: float = param(
        2.0, "time an open breaker waits to probe (s)", min_value=0.01, max_value=600.0
    )
    max_pending: int = param(
        4, "frames waiting for the worker (async), older dropped", min_value=1, max_value=100
    )
    diagnostics_period_s: float = param(
        1.0, "period of /diagnostics (s)", min_value=0.05, max_value=60.0
    )
    # local fallback: the lidar_detector's parameters ...
    model_path: str = param("", "detector weights (.pt); empty: models/detector.pt of the package")
    device: str = param("auto", "fallback inference device", choices=("auto", "cpu", "cuda"))
    score_threshold: float = param(0.3, "drop boxes below this score", min_value=0.0, max_value=1.0)
    max_range_m: float = param(
        0.0, "drop points farther than this (m); 0: none", min_value=0.0, max_value=500.0
    )
    threads: int = param(1, "torch CPU threads (0: torch's default)", min_value=0, max_value=256)
    # ... and the gs_render node's
    map_path: str = param("", "3DGS .ply map; empty: build from the scenario below")
    scenario: str = param("urban-clutter", "scenario of a built map (map_path empty)")
    seed: int = param(-1, "scenario seed (-1: the scenario's default)", min_value=-1)
    spacing_m: float = param(
        0.3, "surface sample spacing of a built map (m)", min_value=0.05, max_value=5.0
    )
    backend: str = param("auto", "fallback rasterizer", choices=("auto", "torch", "gsplat"))
    base_frame: str = param("base_link", "robot frame of the odometry")
    map_frame: str = param("map", "frame of the Gaussian map (REP 105 map)")


class EdgeBridgeNode(RobomrNode):
    NAME = "edge_bridge"

    def __init__(self, handle: NodeHandle) -> None:
        super().__init__(handle)
        p = self.params = handle.declare_params(EdgeBridgeParams)
        self.client = None if p.mode == "local" else self._client_or_none(p)
        asynchronous = p.mode == "async" or (p.mode == "auto" and not handle.virtual_time)
        self.stats = {"detect": BridgeStats(), "render": BridgeStats()}
        guard = handle.create_guard_condition(self._deliver) if asynchronous else None
        self.runner = JobRunner(asynchronous, guard.trigger if guard else None, p.max_pending)
        self._fallbacks_reported = 0  # fallbacks up to the last /diagnostics
        self._diag = handle.create_publisher("diagnostic_msgs/msg/DiagnosticArray", "/diagnostics")
        handle.create_timer(p.diagnostics_period_s, self._publish_diagnostics)
        if p.detect:
            self._setup_detect(handle)
        if p.render:
            self._setup_render(handle)
        self.log.info("edge bridge (%s) to %s", "async" if asynchronous else p.mode, p.service_url)

    def _client_or_none(self, p: EdgeBridgeParams) -> Any:
        """The service client; on a bad URL or an unreadable token the bridge logs the error
        and runs everything locally rather than not at all (e.g. replaying an old bag whose
        token file is gone)."""
        from offload.client import OffloadError
        from offload.serving.auth import AuthError

        try:
            return _make_client(p)
        except (OffloadError, AuthError) as err:
            self.log.error("offload disabled, every frame runs locally: %s", err)
            return None

    # -- detection ------------------------------------------------------------------------
    def _setup_detect(self, handle: NodeHandle) -> None:
        import torch

        from perception.checkpoint import load_detector

        if self.params.threads:
            torch.set_num_threads(self.params.threads)
        self.model = load_detector(resolve_model_path(self.params.model_path), self.params.device)
        self._det = handle.create_publisher("vision_msgs/msg/Detection3DArray", "detections")
        self._markers = handle.create_publisher(
            "visualization_msgs/msg/MarkerArray", "detections/markers"
        )
        # the clouds' lidar is taken as mounted level, x forward (as the fallback's default setup)
        self.odometry = OdometryDeskew(self.params, np.eye(3), self.log)
        if self.params.deskew:
            handle.create_subscription("nav_msgs/msg/Odometry", "odom", self.odometry.on_odom)
        handle.create_subscription(
            "sensor_msgs/msg/PointCloud2", "points", self._on_cloud, "sensor_data"
        )

    def _on_cloud(self, msg: Any) -> None:
        try:
            points = crop_range(cloud_to_xyz(msg), self.params.max_range_m)
        except CloudError as err:
            self.log.error("skipping cloud stamped %d: %s", stamp_ns(msg.header.stamp), err)
            return
        header = msg.header
        motion = self.odometry.motion(stamp_ns(header.stamp))
        self.runner.submit(
            lambda: self._detect_job(points, motion),
            lambda r: self._publish_det(header, r),
            self.stats["detect"].drop,
        )

    def _detect_job(self, points: np.ndarray, motion: Any) -> tuple[BoxList, dict[str, Any]]:
        from perception.config import CLASSES
        from perception.deskew import deskew
        from perception.detect import detect

        start = time.perf_counter()
        if motion is not None:  # deskewed here, so the service gets the cloud it should see
            points = deskew(points, motion)
        found = self._offload("detect", lambda c, d: c.detect(points, d), self.params.deadline_ms)
        if found is not None:
            boxes, labels, scores, _ = found
            labels = np.asarray(labels, dtype=np.int64)
        else:
            (det,) = detect(self.model, [points])
            boxes, labels, scores = det.boxes, det.labels, det.scores
        keep = np.asarray(scores) >= self.params.score_threshold
        result = BoxList(boxes[keep], [CLASSES[i] for i in labels[keep]], np.asarray(scores)[keep])
        info = {
            "processing_ms": 1e3 * (time.perf_counter() - start),
            "points": len(points),
            "detections": len(result),
            "offloaded": found is not None,
            "deskewed": int(motion is not None),
        }
        return result, info

    def _publish_det(self, header: Any, result: tuple[BoxList, dict[str, Any]]) -> None:
        boxes, info = result
        self._det.publish(boxes_to_detections(boxes, header))
        self._markers.publish(
            boxes_to_markers(header, boxes.boxes, boxes.labels, boxes.scores, ns="detections")
        )
        self._diag.publish(diagnostic_array(self.handle.now_ns(), "edge_bridge/detect", info))

    # -- rendering -------------------------------------------------------------------------
    def _setup_render(self, handle: NodeHandle) -> None:
        from gs_render import GaussianRenderer, RendererConfig, SkyGradient, load_ply
        from robomr_nodes.nodes.gs_render import build_map

        p = self.params
        model = load_ply(p.map_path) if p.map_path else build_map(p.scenario, p.seed, p.spacing_m)
        self.renderer = GaussianRenderer(
            model, RendererConfig(backend=p.backend, sky=SkyGradient())
        )
        self._static = StaticTransforms()
        self._T_world_base: np.ndarray | None = None
        self._image = handle.create_publisher("sensor_msgs/msg/Image", "gs/image", "sensor_data")
        handle.create_subscription(
            "tf2_msgs/msg/TFMessage", "/tf_static", self._static.update, "latched"
        )
        handle.create_subscription("nav_msgs/msg/Odometry", "odom", self._on_odom)
        handle.create_subscription(
            "sensor_msgs/msg/CameraInfo", "camera/camera_info", self._on_info, "sensor_data"
        )

    def _on_odom(self, msg: Any) -> None:  # as gs_render: odometry composed with map -> odom
        from geometry.transforms import pose_to_transform

        pose = odometry_in_frame(msg, self._static, self.params.map_frame)
        if pose is None:
            return
        x, y, yaw, _ = pose
        if np.all(np.isfinite([x, y, yaw])):
            self._T_world_base = pose_to_transform(x, y, 0.0, yaw)

    def _on_info(self, msg: Any) -> None:
        T_base_cam = self._static.lookup(self.params.base_frame, msg.header.frame_id)
        if self._T_world_base is None or T_base_cam is None:
            return  # no pose yet, as gs_render
        pose, k = self._T_world_base @ T_base_cam, camera_info_to_k(msg)
        w, h, header = int(msg.width), int(msg.height), msg.header
        self.runner.submit(
            lambda: self._render_job(pose, k, w, h),
            lambda r: self._publish_image(header, r),
            self.stats["render"].drop,
        )

    def _render_job(self, pose: np.ndarray, k: np.ndarray, w: int, h: int) -> tuple[Any, float]:
        start = time.perf_counter()
        found = self._offload(
            "render", lambda c, d: c.render(pose, k, w, h, d), self.params.render_deadline_ms
        )
        rgb = found[0] if found is not None else self.renderer.render(pose, k, w, h)[0]
        return rgb, 1e3 * (time.perf_counter() - start)

    def _publish_image(self, header: Any, result: tuple[Any, float]) -> None:
        self._image.publish(array_to_image(result[0], header, "rgb8"))
        self._diag.publish(
            diagnostic_array(self.handle.now_ns(), "edge_bridge/render", {"render_ms": result[1]})
        )

    # -- shared ----------------------------------------------------------------------------
    def _offload(self, task: str, call: Any, deadline_ms: float) -> Any | None:
        """The service's answer, or None after recording why the frame falls back."""
        from offload.client import OffloadError

        if self.client is None:
            self.stats[task].fallback("local_mode")
            return None
        try:
            found = call(self.client, deadline_ms / 1e3)
        except OffloadError as err:
            self.stats[task].fallback(err.reason, str(err))
            return None
        self.stats[task].offload(found[-1].rtt_s)
        return found

    def _deliver(self) -> None:
        self.runner.deliver_ready()

    def _publish_diagnostics(self) -> None:
        values: dict[str, Any] = {}
        tasks = [t for t in ("detect", "render") if getattr(self.params, t)]
        for task in tasks:
            values.update({f"{task}_{k}": v for k, v in self.stats[task].values().items()})
        breakers = self.client.breaker_state() if self.client is not None else {}
        values.update({f"breaker {url}": state for url, state in breakers.items()})
        fallbacks = sum(self.stats[t].values()["fallbacks"] for t in tasks)
        degraded = any(breakers.values()) or fallbacks > self._fallbacks_reported
        self._fallbacks_reported = fallbacks
        self._diag.publish(
            diagnostic_array(
                self.handle.now_ns(),
                "edge_bridge",
                values,
                level=WARN if degraded else OK,
                message="falling back to local inference" if degraded else "offloading",
            )
        )

    def close(self) -> None:
        self.runner.close()
        self.runner.deliver_ready()
        if self.client is not None:
            self.client.close()


def _make_client(p: EdgeBridgeParams) -> Any:
    from offload.breaker import BreakerConfig
    from offload.client import ClientConfig, OffloadClient
    from offload.serving.auth import load_token

    urls = tuple(u.strip().rstrip("/") for u in p.service_url.split(",") if u.strip())
    config = ClientConfig(
        urls=urls,
        token=load_token(p.token_file or None),
        connect_timeout_s=p.connect_timeout_ms / 1e3,
        max_attempts=p.max_attempts,
        breaker=BreakerConfig(p.breaker_failures, p.breaker_open_s),
    )
    return OffloadClient(config)


def main(args: list[str] | None = None) -> int:
    return run_node(EdgeBridgeNode, args)
