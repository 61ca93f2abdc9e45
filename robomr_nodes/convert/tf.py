"""tf2_msgs/TFMessage, geometry_msgs/TransformStamped and nav_msgs/Odometry builders."""

from __future__ import annotations

from typing import Any

import numpy as np

from geometry.transforms import matrix_to_quaternion
from robomr_nodes.convert.path import pose_msg, pose_to_xyyaw
from robomr_nodes.messages import header, new_message


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
    frame_id: str = "map",
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
