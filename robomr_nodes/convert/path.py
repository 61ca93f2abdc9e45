"""nav_msgs/Path and geometry_msgs/PoseStamped <-> planar poses [N, 3] (x, y, yaw)."""

from __future__ import annotations

from typing import Any

import numpy as np

from geometry.transforms import quaternion_to_yaw, yaw_to_quaternion
from robomr_nodes.messages import header as make_header
from robomr_nodes.messages import new_message, stamp_ns


class PathError(ValueError):
    """Poses of the wrong shape, non-finite, or stamps that do not match them."""


def pose_msg(x_m: float, y_m: float, yaw_rad: float, z_m: float = 0.0) -> Any:
    """geometry_msgs/Pose of a planar pose."""
    qx, qy, qz, qw = yaw_to_quaternion(yaw_rad)
    return new_message(
        "geometry_msgs/msg/Pose",
        position=new_message("geometry_msgs/msg/Point", x=float(x_m), y=float(y_m), z=float(z_m)),
        orientation=new_message("geometry_msgs/msg/Quaternion", x=qx, y=qy, z=qz, w=qw),
    )


def pose_stamped(x_m: float, y_m: float, yaw_rad: float, stamp: int, frame_id: str) -> Any:
    return new_message(
        "geometry_msgs/msg/PoseStamped",
        header=make_header(stamp, frame_id),
        pose=pose_msg(x_m, y_m, yaw_rad),
    )


def poses_to_path(poses: np.ndarray, header: Any, stamps_ns: np.ndarray | None = None) -> Any:
    """A Path of poses [N, 3] (x, y, yaw); each pose stamped ``stamps_ns[i]`` or the header's.

    Raises:
        PathError: wrong shape, non-finite values, or stamps of another length.
    """
    p = np.asarray(poses, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 3 or not np.all(np.isfinite(p)):
        raise PathError(f"poses must be finite [N, 3] (x, y, yaw), got shape {list(p.shape)}")
    base = stamp_ns(header.stamp)
    stamps = np.full(len(p), base, dtype=np.int64) if stamps_ns is None else np.asarray(stamps_ns)
    if len(stamps) != len(p):
        raise PathError(f"{len(stamps)} stamps for {len(p)} poses")
    items = [
        pose_stamped(x, y, yaw, int(t), header.frame_id)
        for (x, y, yaw), t in zip(p, stamps, strict=True)
    ]
    return new_message("nav_msgs/msg/Path", header=header, poses=items)


def pose_to_xyyaw(pose: Any) -> tuple[float, float, float]:
    o = pose.orientation
    return float(pose.position.x), float(pose.position.y), quaternion_to_yaw(o.x, o.y, o.z, o.w)


def path_to_poses(msg: Any) -> tuple[np.ndarray, np.ndarray]:
    """Poses [N, 3] (x, y, yaw) and their stamps [N] (ns) of a Path."""
    poses = np.array([pose_to_xyyaw(ps.pose) for ps in msg.poses], dtype=np.float64)
    stamps = np.array([stamp_ns(ps.header.stamp) for ps in msg.poses], dtype=np.int64)
    return poses.reshape(-1, 3), stamps
