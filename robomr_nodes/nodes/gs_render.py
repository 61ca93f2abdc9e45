"""``gs_render``: renders the robot's camera view from a Gaussian-splatting map (GSRMR).

Subscribes ``camera/camera_info`` (the real camera's intrinsics and stamps, sensor-data QoS),
``odom`` (in ``odom``) and ``/tf_static`` (map -> odom, base_link -> camera and lidar frames).
For every camera info it renders the map at the camera pose of the newest odometry and
publishes ``gs/image`` (sensor_msgs/Image, rgb8) with the camera info's header, so the render
and the real frame pair up by stamp. Just before it, ``gs/forecast`` (DiagnosticArray, same
stamp) carries the map's coverage of the view at this pose and at the next ``forecast_frames``
poses along the planned path ``croa/path`` (or straight ahead at the odometry's speed), with
those poses' x, y: what the scheduler forecasts L_t from. ``/diagnostics`` (DiagnosticArray,
status ``gs_render``) reports timings.

The map (``map_source``):

* ``sensors`` (default): learned online from the robot's own data
  (``gs_render.SensorGaussianMap``): geometry from the lidar scans on ``points`` (every
  ``scan_every``-th, placed with the odometry and the static lidar transform), colours, sky and
  a photometric refinement (``refine_iterations`` steps) from each image on
  ``gsclo/uploaded``, i.e. from what the robot uploads. Renders improve as frames are uploaded.
* ``surface``: built at start-up from the simulator scenario's surface samples (``scenario``,
  ``seed``, ``spacing_m``): a ground-truth map, for comparison only.
* a 3DGS .ply (``model_path`` non-empty): a map from an earlier mapping run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from geometry.transforms import pose_to_transform
from planning.gsclo.forecast import poses_along_path
from robomr_nodes.api import NodeHandle, RobomrNode
from robomr_nodes.convert.image import ImageError, array_to_image, camera_info_to_k, image_to_array
from robomr_nodes.convert.path import PathError, path_to_poses
from robomr_nodes.convert.pointcloud import CloudError, cloud_to_xyz
from robomr_nodes.convert.tf import odometry_in_frame
from robomr_nodes.diagnostics import diagnostic_array
from robomr_nodes.messages import stamp_ns
from robomr_nodes.params import param
from robomr_nodes.runtime.entry import run_node
from robomr_nodes.tf_static import StaticTransforms


@dataclass(frozen=True)
class GsRenderParams:
    model_path: str = param("", "3DGS .ply map; empty: map_source decides")
    map_source: str = param(
        "sensors",
        "sensors: learned online; surface: sim ground truth",
        choices=("sensors", "surface"),
    )
    voxel_m: float = param(0.25, "lidar voxel of a learned map (m)", min_value=0.05, max_value=2.0)
    scan_every: int = param(2, "use every n-th lidar scan for the map", min_value=1, max_value=100)
    refine_iterations: int = param(
        1, "photometric steps per uploaded frame (learned map)", min_value=0, max_value=100
    )
    refine_scale: float = param(
        0.25, "keyframe scale of the refinement", min_value=0.05, max_value=1.0
    )
    # Each upload continues the colour least squares from the last solution (a warm start), so
    # a few steps per upload suffice online; 10 per call cost 60 splat-backs per upload.
    colour_iterations: int = param(
        2, "colour least-squares steps per uploaded frame (learned map)", min_value=0,
        max_value=1000,
    )  # fmt: skip
    forecast_frames: int = param(
        4, "future poses whose coverage gs/forecast carries", min_value=0, max_value=1000
    )
    lidar_frame: str = param("lidar", "frame of the points (for a learned map)")
    scenario: str = param("urban-clutter", "scenario of a surface map")
    seed: int = param(-1, "scenario seed (-1: the scenario's default)", min_value=-1)
    spacing_m: float = param(
        0.3, "surface sample spacing of a built map (m)", min_value=0.05, max_value=5.0
    )
    backend: str = param("auto", "rasterizer", choices=("auto", "torch", "gsplat"))
    base_frame: str = param("base_link", "robot frame of the odometry")
    map_frame: str = param("map", "frame of the Gaussian map (REP 105 map)")
    threads: int = param(1, "torch CPU threads (0: torch's default)", min_value=0, max_value=256)


def build_map(scenario: str, seed: int, spacing_m: float) -> Any:
    """A Gaussian map of a simulator scene's static surfaces (parked vehicles included)."""
    from gs_render import from_surface_samples
    from sim import load_or_generate, surface_samples

    scene = load_or_generate(scenario, None if seed < 0 else seed)
    s = surface_samples(scene, spacing_m)
    return from_surface_samples(s.points, s.normals, s.colors, spacing_m)


class GsRenderNode(RobomrNode):
    NAME = "gs_render"

    def __init__(self, handle: NodeHandle) -> None:
        super().__init__(handle)
        import torch

        from gs_render import GaussianRenderer, RendererConfig, SkyGradient, load_ply
        from gs_render.lidar_map import LidarMapConfig
        from gs_render.sensor_map import SensorGaussianMap, SensorMapConfig

        p = self.params = handle.declare_params(GsRenderParams)
        if p.threads:
            torch.set_num_threads(p.threads)
        self.map: SensorGaussianMap | None = None
        self.renderer: Any = None
        if p.model_path or p.map_source == "surface":
            model = (
                load_ply(p.model_path)
                if p.model_path
                else build_map(p.scenario, p.seed, p.spacing_m)
            )
            self.renderer = GaussianRenderer(
                model, RendererConfig(backend=p.backend, sky=SkyGradient())
            )
            self.log.info("map of %d Gaussians, %s backend", len(model), self.renderer.backend)
        else:
            config = SensorMapConfig(
                lidar=LidarMapConfig(voxel_m=p.voxel_m),
                refine_iterations=p.refine_iterations,
                refine_scale=p.refine_scale,
                colour_iterations=p.colour_iterations,
                backend=p.backend,
            )
            self.map = SensorGaussianMap(config)
            self.log.info("map learned online from points and gsclo/uploaded")
        self._static = StaticTransforms()
        self._T_world_base: np.ndarray | None = None
        self._speed_mps = 0.0
        self._path_xy: np.ndarray | None = None
        self._scans = 0
        self._camera_poses: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # stamp -> (pose, K)
        self._last_info_ns: int | None = None
        self._period_s = 0.2
        self._image = handle.create_publisher("sensor_msgs/msg/Image", "gs/image", "sensor_data")
        self._forecast = handle.create_publisher(
            "diagnostic_msgs/msg/DiagnosticArray", "gs/forecast", "sensor_data"
        )
        self._status = handle.create_publisher(
            "diagnostic_msgs/msg/DiagnosticArray", "/diagnostics"
        )
        handle.create_subscription(
            "tf2_msgs/msg/TFMessage", "/tf_static", self._static.update, "latched"
        )
        handle.create_subscription("nav_msgs/msg/Odometry", "odom", self._on_odom)
        handle.create_subscription(
            "sensor_msgs/msg/CameraInfo", "camera/camera_info", self._on_info, "sensor_data"
        )
        handle.create_subscription("nav_msgs/msg/Path", "croa/path", self._on_path)
        if self.map is not None:
            handle.create_subscription(
                "sensor_msgs/msg/PointCloud2", "points", self._on_points, "sensor_data"
            )
            handle.create_subscription("sensor_msgs/msg/Image", "gsclo/uploaded", self._on_upload)

    def _on_odom(self, msg: Any) -> None:
        pose = odometry_in_frame(msg, self._static, self.params.map_frame)
        if pose is None:
            self.log.debug("no %s -> %s transform yet", self.params.map_frame, msg.header.frame_id)
            return
        x, y, yaw, speed = pose
        if np.all(np.isfinite([x, y, yaw, speed])):
            self._T_world_base = pose_to_transform(x, y, 0.0, yaw)
            self._speed_mps = speed

    def _on_path(self, msg: Any) -> None:
        try:
            poses, _ = path_to_poses(msg)
        except PathError as err:
            self.log.warning("ignoring a malformed path: %s", err)
            return
        self._path_xy = poses[:, :2] if len(poses) >= 2 else None

    def _on_points(self, msg: Any) -> None:
        self._scans += 1
        T_base_lidar = self._static.lookup(self.params.base_frame, msg.header.frame_id)
        if (
            self._scans % self.params.scan_every
            or self._T_world_base is None
            or T_base_lidar is None
        ):
            return
        try:
            xyz = cloud_to_xyz(msg, extra=()).astype(np.float64)
        except CloudError as err:
            self.log.warning("dropping a scan: %s", err)
            return
        T = self._T_world_base @ T_base_lidar
        self.map.add_scan(xyz @ T[:3, :3].T + T[:3, 3], T[:3, 3])

    def _on_upload(self, msg: Any) -> None:
        from gs_render.sensor_map import Frame, SensorMapError

        seen = self._camera_poses.get(stamp_ns(msg.header.stamp))
        if seen is None:
            self.log.warning("uploaded frame without a camera pose: not learned")
            return
        start = time.perf_counter()
        try:
            self.map.add_frames([Frame(image_to_array(msg), seen[1], seen[0])])
        except (ImageError, SensorMapError) as err:
            self.log.warning("uploaded frame not learned: %s", err)
            return
        self._learn_ms = 1e3 * (time.perf_counter() - start)

    def _on_info(self, msg: Any) -> None:
        T_base_cam = self._static.lookup(self.params.base_frame, msg.header.frame_id)
        if self._T_world_base is None or T_base_cam is None:
            self.log.debug("no pose for %s yet: skipping a frame", msg.header.frame_id)
            return
        start = time.perf_counter()
        stamp = stamp_ns(msg.header.stamp)
        if self._last_info_ns is not None and stamp > self._last_info_ns:
            self._period_s = 1e-9 * (stamp - self._last_info_ns)
        self._last_info_ns = stamp
        pose, k = self._T_world_base @ T_base_cam, camera_info_to_k(msg)
        width, height = int(msg.width), int(msg.height)
        self._camera_poses[stamp] = (pose, k)
        for old in sorted(self._camera_poses)[:-50]:  # uploads arrive within a few frames
            del self._camera_poses[old]
        if self.map is not None:
            self._publish_forecast(msg.header, pose, k, T_base_cam, width, height)
            rgb, _ = self.map.render(pose, k, width, height)
        else:
            rgb, _ = self.renderer.render(pose, k, width, height)
        self._image.publish(array_to_image(rgb, msg.header, "rgb8"))
        values = {"render_ms": 1e3 * (time.perf_counter() - start)}
        if self.map is not None:
            values |= {"gaussians": len(self.map), "frames_learned": self.map.frames_added,
                       "learn_ms": getattr(self, "_learn_ms", 0.0)}  # fmt: skip
        self._status.publish(diagnostic_array(self.handle.now_ns(), "gs_render", values))

    def _publish_forecast(
        self, header: Any, pose: np.ndarray, k: np.ndarray, T_base_cam: np.ndarray,
        width: int, height: int,
    ) -> None:  # fmt: skip
        """Coverage now and at the next planned poses (quarter-size renders)."""
        small = k.copy()
        small[:2] /= 4.0
        size = (max(width // 4, 8), max(height // 4, 8))
        x, y = float(self._T_world_base[0, 3]), float(self._T_world_base[1, 3])
        yaw = float(np.arctan2(self._T_world_base[1, 0], self._T_world_base[0, 0]))
        ahead = poses_along_path(
            self._path_xy, x, y, yaw, self._speed_mps, self._period_s, self.params.forecast_frames
        )
        values: dict[str, Any] = {
            "coverage_0": self.map.coverage(pose, small, *size),
            "x_0": x,
            "y_0": y,
        }
        for i, (px, py, pyaw) in enumerate(ahead, start=1):
            future = pose_to_transform(px, py, 0.0, pyaw) @ T_base_cam
            values[f"coverage_{i}"] = self.map.coverage(future, small, *size)
            values[f"x_{i}"], values[f"y_{i}"] = float(px), float(py)
        self._forecast.publish(diagnostic_array(stamp_ns(header.stamp), "gs_forecast", values))


def main(args: list[str] | None = None) -> int:
    return run_node(GsRenderNode, args)
