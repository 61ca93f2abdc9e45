"""``path_follower``: drives the planner's path in Gazebo, publishing ``cmd_vel``.

Subscribes ``croa/path`` (nav_msgs/Path in ``map``; an empty path stops the robot),
``odom`` (nav_msgs/Odometry in ``odom``) and ``/tf_static`` (``map -> odom``). Every
``1 / control_rate_hz`` of node time (sim time: Gazebo's clock) it runs the built-in simulator's
pure pursuit (``sim.pursuit.PurePursuit``, the same controller that drives the simulator's
bicycle) on the robot's pose in ``map`` and publishes ``cmd_vel`` (geometry_msgs/Twist) for
Gazebo's DiffDrive: the speed the controller's acceleration reaches after one period, clipped
to the speed limits, and the yaw rate of a bicycle with that steering angle,
``v tan(steer) / wheelbase``. Until a path and odometry (and map -> odom) arrive it publishes
nothing; a malformed path is logged and ignored.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from robomr_nodes.api import NodeHandle, RobomrNode
from robomr_nodes.convert.path import PathError, path_to_poses
from robomr_nodes.convert.tf import odometry_in_frame
from robomr_nodes.messages import new_message
from robomr_nodes.params import param
from robomr_nodes.runtime.entry import run_node
from robomr_nodes.tf_static import StaticTransforms
from sim.pursuit import DriveCommand, PurePursuit, PurePursuitConfig
from sim.robot import RobotConfig, RobotState


@dataclass(frozen=True)
class PathFollowerParams:
    control_rate_hz: float = param(20.0, "cmd_vel rate (Hz)", min_value=1.0, max_value=200.0)
    target_speed_mps: float = param(4.0, "cruise speed (m/s)", min_value=0.1, max_value=30.0)
    lookahead_min_m: float = param(4.0, "least look-ahead (m)", min_value=0.1, max_value=50.0)
    wheelbase_m: float = param(2.7, "wheelbase of the steering model (m)", min_value=0.1,
                               max_value=20.0)  # fmt: skip
    max_speed_mps: float = param(8.0, "forward speed limit (m/s)", min_value=0.1, max_value=60.0)
    max_reverse_speed_mps: float = param(2.0, "reverse speed limit (m/s)", min_value=0.0,
                                         max_value=20.0)  # fmt: skip
    max_steer_rad: float = param(0.6, "steering limit (rad)", min_value=0.01, max_value=1.2)
    map_frame: str = param("map", "frame of the paths")


def twist_command(
    cmd: DriveCommand, v_mps: float, dt_s: float, p: PathFollowerParams
) -> tuple[float, float]:
    """(speed m/s, yaw rate rad/s) for DiffDrive from a pure-pursuit bicycle command."""
    v = float(np.clip(v_mps + cmd.accel_mps2 * dt_s, -p.max_reverse_speed_mps, p.max_speed_mps))
    steer = float(np.clip(cmd.steer_rad, -p.max_steer_rad, p.max_steer_rad))
    return v, v * math.tan(steer) / p.wheelbase_m


class PathFollowerNode(RobomrNode):
    NAME = "path_follower"

    def __init__(self, handle: NodeHandle) -> None:
        super().__init__(handle)
        p = self.params = handle.declare_params(PathFollowerParams)
        robot = RobotConfig(wheelbase_m=p.wheelbase_m, max_speed_mps=p.max_speed_mps,
                            max_reverse_speed_mps=p.max_reverse_speed_mps,
                            max_steer_rad=p.max_steer_rad,
                            length_m=max(RobotConfig().length_m, p.wheelbase_m))  # fmt: skip
        pursuit = PurePursuitConfig(target_speed_mps=p.target_speed_mps,
                                    lookahead_min_m=p.lookahead_min_m)  # fmt: skip
        self.pursuit = PurePursuit(robot, pursuit)
        self._dt_s = 1.0 / p.control_rate_hz
        self._static = StaticTransforms()
        self._state: RobotState | None = None
        self._steer_rad = 0.0
        self._cmd = handle.create_publisher("geometry_msgs/msg/Twist", "cmd_vel")
        handle.create_subscription("tf2_msgs/msg/TFMessage", "/tf_static", self._static.update,
                                   "latched")  # fmt: skip
        handle.create_subscription("nav_msgs/msg/Odometry", "odom", self._on_odom)
        handle.create_subscription("nav_msgs/msg/Path", "croa/path", self._on_path)
        handle.create_timer(self._dt_s, self._control)

    def _on_odom(self, msg: Any) -> None:
        pose = odometry_in_frame(msg, self._static, self.params.map_frame)
        if pose is not None and all(math.isfinite(v) for v in pose):
            self._state = RobotState(*pose[:3], v_mps=pose[3], steer_rad=self._steer_rad)

    def _on_path(self, msg: Any) -> None:
        if msg.header.frame_id != self.params.map_frame:
            self.log.warning("ignoring a path in frame %r (expected %r)", msg.header.frame_id,
                             self.params.map_frame)  # fmt: skip
            return
        try:
            poses, _ = path_to_poses(msg)
            if len(poses) == 0:  # an empty path: stop where the robot is
                if self._state is None:
                    return
                poses = np.array([[self._state.x_m, self._state.y_m, self._state.yaw_rad]])
            self.pursuit.set_path(poses)
        except (PathError, ValueError) as err:  # PursuitError is a ValueError
            self.log.warning("ignoring a malformed path: %s", err)

    def _control(self) -> None:
        if self._state is None or len(self.pursuit.path) == 0:
            return
        cmd = self.pursuit.command(self._state)
        v, yaw_rate = twist_command(cmd, self._state.v_mps, self._dt_s, self.params)
        self._steer_rad = cmd.steer_rad
        twist = new_message(
            "geometry_msgs/msg/Twist",
            linear=new_message("geometry_msgs/msg/Vector3", x=v),
            angular=new_message("geometry_msgs/msg/Vector3", z=yaw_rate),
        )
        self._cmd.publish(twist)


def main(args: list[str] | None = None) -> int:
    return run_node(PathFollowerNode, args)
