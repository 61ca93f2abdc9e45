"""tf2_msgs/TFMessage, geometry_msgs/TransformStamped and nav_msgs/Odometry builders.

Frames follow REP 105: ``map -> odom -> base_link``; odometry is reported in ``odom``, and a
node that needs the robot in ``map`` composes it with the ``map -> odom`` transform
(:func:`odometry_in_frame`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from geometry.transforms import matrix_to_quaternion, pose_to_transform
from robomr_nodes.convert.path import pose_msg, pose_to_xyyaw
from robomr_nodes.messages import header, new_message
from robomr_nodes.tf_static import StaticTransforms


def transform_stamped(T_parent_child: np.ndarray, parent: str, child: str, stamp: int) -> Any:
    """A TransformStamped of a 4x4 transform (``T_parent_child`` maps child -> parent)."""
    qx, qy, qz, qw = matrix_to_quaternion(T_parent_child[:3, :3])
    tx, ty, tz = (float(v) for v in T_parent_child[:3, 3])
    return new_message(
        "geometry_msgs/msg/TransformStamped",
        header=header(stamp, parent),
        child_frame_id=child,
        transform=new_message(
            "geometry_msgs/msg/Transform",
            translation=new_message("geometry_msgs/msg/Vector3", x=tx, y=ty, z=tz),
            rotation=new_message(
                "geometry_msgs/msg/Quaternion", x=float(qx), y=float(qy), z=float(qz), w=float(qw)
            ),
        ),
    )


def tf_message(transforms: list[Any]) -> Any:
    return new_message("tf2_msgs/msg/TFMessage", transforms=transforms)


def odometry(
    x_m: float,
    y_m: float,
    yaw_rad: float,
    vx_mps: float,
    vy_mps: float,
    yaw_rate_radps: float,
    stamp: int,
    frame_id: str = "odom",
    child_frame_id: str = "base_link",
) -> Any:
    """nav_msgs/Odometry of a planar pose (in ``frame_id``) and body-frame velocity."""
    twist = new_message(
        "geometry_msgs/msg/Twist",
        linear=new_message("geometry_msgs/msg/Vector3", x=float(vx_mps), y=float(vy_mps)),
        angular=new_message("geometry_msgs/msg/Vector3", z=float(yaw_rate_radps)),
    )
    return new_message(
        "nav_msgs/msg/Odometry",
        header=header(stamp, frame_id),
        child_frame_id=child_frame_id,
        pose=new_message("geometry_msgs/msg/PoseWithCovariance", pose=pose_msg(x_m, y_m, yaw_rad)),
        twist=new_message("geometry_msgs/msg/TwistWithCovariance", twist=twist),
    )


def odometry_to_pose(msg: Any) -> tuple[float, float, float, float]:
    """(x, y, yaw, forward speed) of a nav_msgs/Odometry."""
    x, y, yaw = pose_to_xyyaw(msg.pose.pose)
    return x, y, yaw, float(msg.twist.twist.linear.x)


def odometry_in_frame(
    msg: Any, transforms: StaticTransforms, frame: str
) -> tuple[float, float, float, float] | None:
    """(x, y, yaw, forward speed) of the odometry's child frame in ``frame`` (e.g. ``map``).

    The odometry pose is in its header frame (``odom``); it is composed with the static
    ``frame -> odom`` transform. None until that transform is known; odometry already in
    ``frame`` is returned as is.
    """
    x, y, yaw, v = odometry_to_pose(msg)
    parent = msg.header.frame_id
    if parent == frame:
        return x, y, yaw, v
    T_frame_odom = transforms.lookup(frame, parent)
    if T_frame_odom is None:
        return None
    T = T_frame_odom @ pose_to_transform(x, y, 0.0, yaw)
    return float(T[0, 3]), float(T[1, 3]), math.atan2(T[1, 0], T[0, 0]), v
