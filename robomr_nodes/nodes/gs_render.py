"""``gs_render``: renders the robot's camera view from a Gaussian-splatting map (GSRMR).

Subscribes ``camera/camera_info`` (the real camera's intrinsics and stamps, sensor-data QoS),
``odom`` (in ``odom``) and ``/tf_static`` (map -> odom, base_link -> camera frame). For every camera
info it renders the map at the camera pose of the newest odometry and publishes ``gs/image``
(sensor_msgs/Image, rgb8) with the camera info's header, so the render and the real frame pair
up by stamp. ``/diagnostics`` (DiagnosticArray, status ``gs_render``) reports the render time.

The map is a 3DGS .ply (``model_path``), or, when that is empty, built at start-up from the
simulator scenario's surface samples (``scenario``, ``seed``, ``spacing_m``) — what a robot
would load from its mapping run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from geometry.transforms import pose_to_transform
from robomr_nodes.api import NodeHandle, RobomrNode
from robomr_nodes.convert.image import array_to_image, camera_info_to_k
from robomr_nodes.convert.tf import odometry_in_frame
from robomr_nodes.diagnostics import diagnostic_array
from robomr_nodes.params import param
from robomr_nodes.runtime.entry import run_node
from robomr_nodes.tf_static import StaticTransforms


@dataclass(frozen=True)
class GsRenderParams:
    model_path: str = param("", "3DGS .ply map; empty: build from the scenario below")
    scenario: str = param("urban-clutter", "scenario to build the map from (model_path empty)")
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

        p = self.params = handle.declare_params(GsRenderParams)
        if p.threads:
            torch.set_num_threads(p.threads)
        model = (
            load_ply(p.model_path) if p.model_path else build_map(p.scenario, p.seed, p.spacing_m)
        )
        self.renderer = GaussianRenderer(
            model, RendererConfig(backend=p.backend, sky=SkyGradient())
        )
        self.log.info("map of %d Gaussians, %s backend", len(model), self.renderer.backend)
        self._static = StaticTransforms()
        self._T_world_base: np.ndarray | None = None
        self._image = handle.create_publisher("sensor_msgs/msg/Image", "gs/image", "sensor_data")
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

    def _on_odom(self, msg: Any) -> None:
        pose = odometry_in_frame(msg, self._static, self.params.map_frame)
        if pose is None:
            self.log.debug("no %s -> %s transform yet", self.params.map_frame, msg.header.frame_id)
            return
        x, y, yaw, _ = pose
        if np.all(np.isfinite([x, y, yaw])):
            self._T_world_base = pose_to_transform(x, y, 0.0, yaw)

    def _on_info(self, msg: Any) -> None:
        T_base_cam = self._static.lookup(self.params.base_frame, msg.header.frame_id)
        if self._T_world_base is None or T_base_cam is None:
            self.log.debug("no pose for %s yet: skipping a frame", msg.header.frame_id)
            return
        start = time.perf_counter()
        rgb, _ = self.renderer.render(
            self._T_world_base @ T_base_cam, camera_info_to_k(msg), int(msg.width), int(msg.height)
        )
        self._image.publish(array_to_image(rgb, msg.header, "rgb8"))
        self._status.publish(
            diagnostic_array(
                self.handle.now_ns(),
                "gs_render",
                {"render_ms": 1e3 * (time.perf_counter() - start)},
            )
        )


def main(args: list[str] | None = None) -> int:
    return run_node(GsRenderNode, args)
