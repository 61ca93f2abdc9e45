"""The robot of an exported Gazebo world: a differential-drive body with the lidar and camera.

gz-sim has no kinematic-bicycle system that takes a path, so the exported robot drives with
gz-sim's DiffDrive system (``gz-sim-diff-drive-system``; its SDF parameters as
``src/systems/diff_drive/DiffDrive.cc`` reads them): two wheels on the axis through
``base_link`` and two frictionless spherical casters, the body box of ``RobotConfig`` above
them. DiffDrive takes ``geometry_msgs/Twist``-like commands on ``robomr/cmd_vel`` and
publishes odometry (``odom -> base_link``, starting at the spawn pose) on ``robomr/odom`` and
``robomr/tf``; the path follower turns the planner's path into those commands (the built-in
simulator's pure pursuit, its steering angle as a yaw rate ``v tan(delta) / wheelbase``).

Sensors sit where the built-in simulator has them (``RobotConfig``), with their ROS frame ids
set by ``gz_frame_id`` (gz-sensors reads it; SDF 1.9 parsers keep it as an unknown element):
a ``gpu_lidar`` with the ``LidarConfig`` beam pattern on ``robomr/points`` in ``lidar``, and a
camera with the ``CameraConfig`` image on ``robomr/camera/image`` (camera info on
``robomr/camera/camera_info``) in ``camera_optical``. Gazebo's camera looks along +x of its
frame, the built-in ``camera`` frame; the image is the same one the optical frame describes.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

from sim.camera import CameraConfig
from sim.lidar import LidarConfig
from sim.robot import RobotConfig

WHEEL_RADIUS_M = 0.35
WHEEL_WIDTH_M = 0.25
BODY_CLEARANCE_M = 0.2  # the body box starts this far above the ground
MASS_KG = 1500.0
GZ_TOPICS = {  # gz transport topic names; config/gz_bridge.yaml maps them to ROS
    "cmd_vel": "robomr/cmd_vel",
    "odom": "robomr/odom",
    "tf": "robomr/tf",
    "points": "robomr/points",
    "image": "robomr/camera/image",
}


def _el(parent: ET.Element, tag: str, text: str | None = None, **attrib: str) -> ET.Element:
    child = ET.SubElement(parent, tag, attrib)
    if text is not None:
        child.text = text
    return child


def _nums(*values: float) -> str:
    return " ".join(f"{v:.9g}" for v in values)


def _inertial(link: ET.Element, mass_kg: float, ixx: float, iyy: float, izz: float) -> None:
    inertial = _el(link, "inertial")
    _el(inertial, "mass", _nums(mass_kg))
    inertia = _el(inertial, "inertia")
    for tag, value in (("ixx", ixx), ("iyy", iyy), ("izz", izz)):
        _el(inertia, tag, _nums(value))
    for tag in ("ixy", "ixz", "iyz"):
        _el(inertia, tag, "0")


def _shape(link: ET.Element, pose: str, geometry: tuple[str, dict[str, str]]) -> None:
    for tag in ("collision", "visual"):
        element = _el(link, tag, name=tag)
        _el(element, "pose", pose)
        shape = _el(_el(element, "geometry"), geometry[0])
        for key, value in geometry[1].items():
            _el(shape, key, value)


def _body(model: ET.Element, robot: RobotConfig) -> ET.Element:
    link = _el(model, "link", name="base_link")
    height = robot.height_m - BODY_CLEARANCE_M
    length, width = robot.length_m, robot.width_m
    _inertial(
        link,
        MASS_KG,
        MASS_KG * (width**2 + height**2) / 12.0,  # solid box
        MASS_KG * (length**2 + height**2) / 12.0,
        MASS_KG * (length**2 + width**2) / 12.0,
    )
    z = BODY_CLEARANCE_M + 0.5 * height
    _shape(link, _nums(0, 0, z, 0, 0, 0), ("box", {"size": _nums(length, width, height)}))
    return link


def _wheel(model: ET.Element, name: str, y_m: float) -> None:
    link = _el(model, "link", name=name)
    _el(link, "pose", _nums(0.0, y_m, WHEEL_RADIUS_M, -0.5 * math.pi, 0.0, 0.0))
    mass, r, w = 30.0, WHEEL_RADIUS_M, WHEEL_WIDTH_M  # solid cylinder about its axis (z)
    _inertial(
        link, mass, mass * (3 * r**2 + w**2) / 12, mass * (3 * r**2 + w**2) / 12, mass * r**2 / 2
    )
    cylinder = {"radius": _nums(r), "length": _nums(w)}
    _shape(link, _nums(0, 0, 0, 0, 0, 0), ("cylinder", cylinder))
    joint = _el(model, "joint", name=f"{name}_joint", type="revolute")
    _el(joint, "parent", "base_link")
    _el(joint, "child", name)
    axis = _el(joint, "axis")
    _el(axis, "xyz", "0 0 1")  # the wheel's own axis, along base_link's y
    limit = _el(axis, "limit")
    _el(limit, "lower", "-1e16")
    _el(limit, "upper", "1e16")


def _caster(model: ET.Element, name: str, x_m: float) -> None:
    link = _el(model, "link", name=name)
    r = 0.5 * WHEEL_RADIUS_M
    _el(link, "pose", _nums(x_m, 0.0, r, 0, 0, 0))
    mass = 5.0
    _inertial(link, mass, 0.4 * mass * r**2, 0.4 * mass * r**2, 0.4 * mass * r**2)
    _shape(link, _nums(0, 0, 0, 0, 0, 0), ("sphere", {"radius": _nums(r)}))
    friction = _el(_el(_el(link.find("collision"), "surface"), "friction"), "ode")
    _el(friction, "mu", "0")
    _el(friction, "mu2", "0")
    joint = _el(model, "joint", name=f"{name}_joint", type="ball")
    _el(joint, "parent", "base_link")
    _el(joint, "child", name)


def _diff_drive(model: ET.Element, robot: RobotConfig) -> None:
    plugin = _el(
        model, "plugin", filename="gz-sim-diff-drive-system", name="gz::sim::systems::DiffDrive"
    )
    settings = {
        "left_joint": "left_wheel_joint",
        "right_joint": "right_wheel_joint",
        "wheel_separation": _nums(robot.width_m + WHEEL_WIDTH_M),
        "wheel_radius": _nums(WHEEL_RADIUS_M),
        "max_linear_acceleration": _nums(robot.max_accel_mps2),
        "min_linear_acceleration": _nums(-robot.max_accel_mps2),
        "max_linear_velocity": _nums(robot.max_speed_mps),  # max_velocity would also cap yaw rate
        "min_linear_velocity": _nums(-robot.max_reverse_speed_mps),
        "topic": GZ_TOPICS["cmd_vel"],
        "odom_topic": GZ_TOPICS["odom"],
        "tf_topic": GZ_TOPICS["tf"],
        "frame_id": "odom",
        "child_frame_id": "base_link",
        "odom_publish_frequency": "20",
    }
    for key, value in settings.items():
        _el(plugin, key, value)


def _lidar(link: ET.Element, robot: RobotConfig, lidar: LidarConfig) -> None:
    sensor = _el(link, "sensor", name="lidar", type="gpu_lidar")
    _el(sensor, "pose", _nums(robot.lidar_x_m, 0.0, robot.lidar_z_m, 0.0, 0.0, 0.0))
    _el(sensor, "topic", GZ_TOPICS["points"])
    _el(sensor, "gz_frame_id", "lidar")
    _el(sensor, "update_rate", "10")
    _el(sensor, "always_on", "true")
    lidar_el = _el(sensor, "lidar")
    scan = _el(lidar_el, "scan")
    horizontal = _el(scan, "horizontal")
    _el(horizontal, "samples", str(lidar.columns))
    _el(horizontal, "resolution", "1")
    _el(horizontal, "min_angle", _nums(-math.pi))
    _el(horizontal, "max_angle", _nums(math.pi - math.radians(lidar.azimuth_resolution_deg)))
    vertical = _el(scan, "vertical")
    _el(vertical, "samples", str(lidar.beams))
    _el(vertical, "resolution", "1")
    _el(vertical, "min_angle", _nums(math.radians(lidar.vertical_fov_down_deg)))
    _el(vertical, "max_angle", _nums(math.radians(lidar.vertical_fov_up_deg)))
    range_el = _el(lidar_el, "range")
    _el(range_el, "min", _nums(max(lidar.min_range_m, 0.01)))
    _el(range_el, "max", _nums(lidar.max_range_m))
    _el(range_el, "resolution", "0.01")
    noise = _el(lidar_el, "noise")
    _el(noise, "type", "gaussian")
    _el(noise, "mean", "0")
    _el(noise, "stddev", _nums(lidar.range_noise_std_m))


def _camera(link: ET.Element, robot: RobotConfig, camera: CameraConfig) -> None:
    sensor = _el(link, "sensor", name="camera", type="camera")
    pitch = robot.camera_pitch_rad  # positive looks down: a rotation about +y, as T_base_camera
    _el(sensor, "pose", _nums(robot.camera_x_m, 0.0, robot.camera_z_m, 0.0, pitch, 0.0))
    _el(sensor, "topic", GZ_TOPICS["image"])  # camera info: robomr/camera/camera_info
    _el(sensor, "gz_frame_id", "camera_optical")
    _el(sensor, "update_rate", "5")
    _el(sensor, "always_on", "true")
    cam = _el(sensor, "camera")
    _el(cam, "horizontal_fov", _nums(math.radians(camera.hfov_deg)))
    image = _el(cam, "image")
    _el(image, "width", str(camera.width_px))
    _el(image, "height", str(camera.height_px))
    _el(image, "format", "R8G8B8")
    clip = _el(cam, "clip")
    _el(clip, "near", "0.1")
    _el(clip, "far", "300")


def robot_model(
    world: ET.Element,
    name: str,
    pose_xy_yaw: tuple[float, float, float],
    robot: RobotConfig,
    lidar: LidarConfig,
    camera: CameraConfig,
) -> ET.Element:
    """Appends the robot model at ``pose_xy_yaw`` (base_link on the ground) to ``world``."""
    model = _el(world, "model", name=name)
    x, y, yaw = pose_xy_yaw
    _el(model, "pose", _nums(x, y, 0.0, 0.0, 0.0, yaw))
    body = _body(model, robot)
    _lidar(body, robot, lidar)
    _camera(body, robot, camera)
    half_track = 0.5 * (robot.width_m + WHEEL_WIDTH_M)
    _wheel(model, "left_wheel", half_track)
    _wheel(model, "right_wheel", -half_track)
    _caster(model, "front_caster", 0.5 * robot.wheelbase_m)
    _caster(model, "rear_caster", -0.5 * robot.wheelbase_m)
    _diff_drive(model, robot)
    return model
