"""``robomr_sim``: the built-in simulator as a node (the place Gazebo or a real robot takes).

Runs the robot (kinematic bicycle, pure pursuit along the last received path) in a scene of
``sim/`` and publishes, stamped with node time:

- ``points``: sensor_msgs/PointCloud2 (x, y, z, intensity, ring) in ``lidar``, sensor-data QoS,
  at ``lidar_rate_hz``;
- ``camera/image`` (rgb8) and ``camera/camera_info`` in ``camera_optical``, sensor-data QoS, at
  ``camera_rate_hz``;
- ``odom`` (nav_msgs/Odometry in ``odom``, child ``base_link``) and ``/tf`` (odom ->
  base_link) at ``odom_rate_hz`` (also the control period); ``/tf_static`` (map -> odom, the
  identity since the simulated odometry does not drift; base_link -> lidar, camera_optical),
  latched. Frames follow REP 105 (map -> odom -> base_link);
- ``ground_truth``: vision_msgs/Detection3DArray of every vehicle in the lidar frame with each
  scan; ``id`` is the scene name, the hypothesis ``class_id`` the class and its ``score`` the
  visibility, 1 - occlusion ratio (sim/truth.py);
- ``map/obstacles``: vision_msgs/Detection3DArray of the static map (buildings, poles, trees,
  clutter; no vehicles) in ``map``, latched;
- ``target_request``: geometry_msgs/PoseStamped, where the operator asks the robot to look (the
  scene's target with ``target_prior_noise_m`` of error), latched;
- ``/diagnostics``: diagnostic_msgs/DiagnosticArray (pose, odometer, collisions), 1 Hz, where
  rqt_runtime_monitor and diagnostic_aggregator read it;
- ``/clock``: rosgraph_msgs/Clock (``publish_clock``), the time source of every node started
  with ``use_sim_time``: published at the start of each of the simulator's timer callbacks whose
  time is new (at the odometry rate when the sensor rates divide it), so a message stamped t is
  always preceded by ``/clock`` = t and a node on sim time reads its stamp as "now". The
  simulator itself must run on its own time (``use_sim_time: false``): on sim time its timers
  would wait for a ``/clock`` that only they publish.

Subscribes ``croa/path`` (nav_msgs/Path in ``map``): the robot follows the newest path; an
empty path stops it where it is. Moving vehicles keep their lane and wait while the robot is in
front of them (``sim.traffic``); any contact of the robot's footprint with an object counts as
a collision (logged and in the diagnostics).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from geometry.transforms import invert_transform
from robomr_nodes.api import NodeHandle, RobomrNode
from robomr_nodes.convert.detections import BoxList, boxes_to_detections
from robomr_nodes.convert.image import array_to_image, camera_info
from robomr_nodes.convert.path import PathError, path_to_poses
from robomr_nodes.convert.pointcloud import array_to_cloud, xyz_to_structured
from robomr_nodes.convert.tf import odometry, tf_message, transform_stamped
from robomr_nodes.diagnostics import diagnostic_array
from robomr_nodes.messages import header, new_message, time_msg
from robomr_nodes.params import param
from robomr_nodes.runtime.entry import run_node
from robomr_nodes.scene_static import VEHICLE_KINDS, publish_scene_static
from sim import (
    BicycleRobot,
    Camera,
    CameraConfig,
    Lidar,
    LidarConfig,
    PurePursuit,
    RobotState,
    World,
    ground_truth,
    load_or_generate,
)
from sim.placement import convex_overlap, footprint
from sim.traffic import Traffic


@dataclass(frozen=True)
class SimParams:
    scenario: str = param("urban-clutter", "scenario name, scenario file or scene file")
    seed: int = param(-1, "scenario seed (-1: the scenario's default)", min_value=-1)
    lidar_rate_hz: float = param(10.0, "lidar scans per second", min_value=0.5, max_value=50.0)
    lidar_beams: int = param(32, "lidar beams (16, 32, 64 or 128)", min_value=16, max_value=128)
    lidar_azimuth_resolution_deg: float = param(
        0.2, "lidar azimuth step (deg)", min_value=0.05, max_value=5.0
    )
    camera_rate_hz: float = param(5.0, "camera frames per second", min_value=0.5, max_value=60.0)
    camera_width_px: int = param(320, "camera image width", min_value=16, max_value=4096)
    camera_height_px: int = param(240, "camera image height", min_value=16, max_value=4096)
    odom_rate_hz: float = param(
        20.0, "odometry/TF rate; also the control period", min_value=1.0, max_value=200.0
    )
    target_prior_noise_m: float = param(
        1.0, "error of the target request position (m)", min_value=0.0, max_value=20.0
    )
    sensor_seed: int = param(0, "seed of lidar noise/dropout and the target prior", min_value=0)
    map_frame: str = param("map", "world frame id")
    odom_frame: str = param("odom", "odometry frame id (REP 105; map -> odom is the identity)")
    publish_clock: bool = param(
        True,
        "publish /clock (rosgraph_msgs/Clock) for nodes with use_sim_time",
    )


class SimNode(RobomrNode):
    NAME = "sim"

    def __init__(self, handle: NodeHandle) -> None:
        super().__init__(handle)
        p = self.params = handle.declare_params(SimParams)
        self.scene = load_or_generate(p.scenario, None if p.seed < 0 else p.seed)
        self.traffic = Traffic(self.scene)  # moving vehicles yield to the robot
        self.world = World(self.scene)
        self._world_stale = False
        self.robot = BicycleRobot(state=RobotState(*self.scene.ego_start))
        self.follower = PurePursuit(self.robot.config)
        self.lidar = Lidar(
            LidarConfig(beams=p.lidar_beams, azimuth_resolution_deg=p.lidar_azimuth_resolution_deg)
        )
        self.camera = Camera(CameraConfig(width_px=p.camera_width_px, height_px=p.camera_height_px))
        self._rng = np.random.default_rng(p.sensor_seed)
        self._dt_s = 1.0 / p.odom_rate_hz
        self.collisions = 0
        self._colliding = False
        self._clock_ns = -1  # time of the last /clock published
        self._pubs = {
            "points": handle.create_publisher(
                "sensor_msgs/msg/PointCloud2", "points", "sensor_data"
            ),
            "image": handle.create_publisher(
                "sensor_msgs/msg/Image", "camera/image", "sensor_data"
            ),
            "info": handle.create_publisher(
                "sensor_msgs/msg/CameraInfo", "camera/camera_info", "sensor_data"
            ),
            "odom": handle.create_publisher("nav_msgs/msg/Odometry", "odom"),
            "tf": handle.create_publisher("tf2_msgs/msg/TFMessage", "/tf"),
            "truth": handle.create_publisher("vision_msgs/msg/Detection3DArray", "ground_truth"),
            "diag": handle.create_publisher("diagnostic_msgs/msg/DiagnosticArray", "/diagnostics"),
        }
        if p.publish_clock:
            self._pubs["clock"] = handle.create_publisher("rosgraph_msgs/msg/Clock", "/clock")
        handle.create_subscription("nav_msgs/msg/Path", "croa/path", self._on_path)
        self._publish_static()
        handle.create_timer(self._dt_s, self._step)
        handle.create_timer(1.0 / p.lidar_rate_hz, self._scan)
        handle.create_timer(1.0 / p.camera_rate_hz, self._frame)
        handle.create_timer(1.0, self._diagnose)

    # -- static data ------------------------------------------------------------------------
    def _publish_static(self) -> None:
        p = self.params  # map -> odom is the identity: the simulated odometry does not drift
        publish_scene_static(self.handle, self.scene, self.robot, np.eye(4), self._rng,
                             p.target_prior_noise_m, p.map_frame, p.odom_frame)  # fmt: skip

    # -- callbacks --------------------------------------------------------------------------
    def _on_path(self, msg: Any) -> None:
        try:
            poses, _ = path_to_poses(msg)
            if len(poses) == 0:
                self.follower.set_path(self.robot.state.pose[None, :])  # empty path: stop here
            else:
                self.follower.set_path(poses)
        except (PathError, ValueError) as err:
            self.log.warning("ignoring a malformed path: %s", err)

    def _tick_clock(self) -> int:
        """Publishes /clock at the current time if not done yet; returns the time (ns)."""
        now = self.handle.now_ns()
        if "clock" in self._pubs and now != self._clock_ns:
            self._clock_ns = now
            self._pubs["clock"].publish(new_message("rosgraph_msgs/msg/Clock", clock=time_msg(now)))
        return now

    def _step(self) -> None:
        self._tick_clock()
        if len(self.follower.path):
            cmd = self.follower.command(self.robot.state)
            self.robot.step(cmd.accel_mps2, cmd.steer_rad, self._dt_s)
        if self.traffic.has_movers:
            self.traffic.step(self._dt_s, [footprint(self.robot.footprint_box())])
            self._world_stale = True
        self._check_collision()
        now = self.handle.now_ns()
        odom = self.robot.odometry()
        x, y, yaw = odom.pose
        odom_frame = self.params.odom_frame  # map -> odom is the identity (see /tf_static)
        self._pubs["odom"].publish(
            odometry(x, y, yaw, *odom.linear_mps, odom.yaw_rate_radps, now, odom_frame)
        )
        self._pubs["tf"].publish(
            tf_message([transform_stamped(self.robot.T_world_base(), odom_frame, "base_link", now)])
        )

    def _scene_now(self) -> World:
        if self._world_stale:
            self.world = World(self.traffic.scene())
            self._world_stale = False
        return self.world

    def _check_collision(self) -> None:
        me = footprint(self.robot.footprint_box())
        boxes, _ = self.traffic.scene().obstacle_boxes()
        hit = any(
            convex_overlap(me, footprint(b))
            for b in boxes
            if np.hypot(b[0] - self.robot.state.x_m, b[1] - self.robot.state.y_m) < 20.0
        )
        if hit and not self._colliding:
            self.collisions += 1
            self.log.warning(
                "collision at (%.2f, %.2f)", self.robot.state.x_m, self.robot.state.y_m
            )
        self._colliding = hit

    def _scan(self) -> None:
        now = self._tick_clock()
        world = self._scene_now()
        T_world_lidar = self.robot.T_world_lidar()
        scan = self.lidar.scan(world, T_world_lidar, self._rng)
        self._pubs["points"].publish(
            array_to_cloud(xyz_to_structured(scan.points), header(now, "lidar"))
        )
        truth = ground_truth(world, T_world_lidar, scan)
        boxes = BoxList(
            truth.boxes,
            [VEHICLE_KINDS[i] for i in truth.labels],
            1.0 - truth.occlusion,
            list(truth.names),
        )
        self._pubs["truth"].publish(boxes_to_detections(boxes, header(now, "lidar")))

    def _frame(self) -> None:
        now = self._tick_clock()
        frame = self.camera.render(self._scene_now(), self.robot.T_world_camera_optical())
        hdr = header(now, "camera_optical")
        self._pubs["image"].publish(array_to_image(frame.rgb, hdr, "rgb8"))
        self._pubs["info"].publish(
            camera_info(hdr, frame.K, self.params.camera_width_px, self.params.camera_height_px)
        )

    def _diagnose(self) -> None:
        self._tick_clock()
        s = self.robot.state
        self._pubs["diag"].publish(
            diagnostic_array(
                self.handle.now_ns(),
                "sim",
                {
                    "x_m": s.x_m,
                    "y_m": s.y_m,
                    "yaw_rad": s.yaw_rad,
                    "speed_mps": s.v_mps,
                    "odometer_m": s.odometer_m,
                    "collisions": self.collisions,
                },
            )
        )

    def T_world_lidar(self) -> np.ndarray:
        """The current lidar pose (for evaluation code that drives the node)."""
        return self.robot.T_world_lidar()

    def T_lidar_world(self) -> np.ndarray:
        return invert_transform(self.robot.T_world_lidar())


def main(args: list[str] | None = None) -> int:
    return run_node(SimNode, args)
