"""Rigid transforms and quaternions (x, y, z, w order, as in geometry_msgs)."""

from __future__ import annotations

import numpy as np


class TransformError(ValueError):
    """A transform or quaternion argument is malformed."""


def wrap_angle(angle_rad: np.ndarray | float) -> np.ndarray | float:
    """Wraps angles to [-pi, pi)."""
    return (np.asarray(angle_rad) + np.pi) % (2.0 * np.pi) - np.pi


def yaw_to_quaternion(yaw_rad: float) -> tuple[float, float, float, float]:
    """Quaternion (x, y, z, w) of a rotation by ``yaw_rad`` about +z."""
    half = 0.5 * float(yaw_rad)
    return (0.0, 0.0, float(np.sin(half)), float(np.cos(half)))


def quaternion_to_yaw(x: float, y: float, z: float, w: float) -> float:
    """Yaw (rad) of a quaternion (x, y, z, w); roll and pitch are ignored."""
    return float(np.arctan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z)))


def quaternion_to_matrix(q_xyzw: np.ndarray) -> np.ndarray:
    """Rotation matrix [3, 3] of a unit quaternion (x, y, z, w).

    Raises:
        TransformError: the quaternion has zero or non-finite norm.
    """
    q = np.asarray(q_xyzw, dtype=np.float64)
    norm = np.linalg.norm(q)
    if not np.isfinite(norm) or norm < 1e-12:
        raise TransformError(f"quaternion {q.tolist()} has zero or non-finite norm")
    x, y, z, w = q / norm
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def matrix_to_quaternion(rotation: np.ndarray) -> np.ndarray:
    """Unit quaternion (x, y, z, w) with w >= 0 of a rotation matrix [3, 3]."""
    r = np.asarray(rotation, dtype=np.float64)
    trace = np.trace(r)
    if trace > 0.0:
        s = 2.0 * np.sqrt(trace + 1.0)
        q = [(r[2, 1] - r[1, 2]) / s, (r[0, 2] - r[2, 0]) / s, (r[1, 0] - r[0, 1]) / s, 0.25 * s]
    else:
        i = int(np.argmax(np.diag(r)))
        j, k = (i + 1) % 3, (i + 2) % 3
        s = 2.0 * np.sqrt(max(1.0 + r[i, i] - r[j, j] - r[k, k], 1e-12))
        q = [0.0, 0.0, 0.0, (r[k, j] - r[j, k]) / s]
        q[i] = 0.25 * s
        q[j] = (r[j, i] + r[i, j]) / s
        q[k] = (r[k, i] + r[i, k]) / s
    q = np.asarray(q)
    q /= np.linalg.norm(q)
    return q if q[3] >= 0 else -q


def rotation_z(yaw_rad: float) -> np.ndarray:
    """Rotation matrix [3, 3] about +z."""
    c, s = np.cos(yaw_rad), np.sin(yaw_rad)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def make_transform(rotation: np.ndarray, translation_m: np.ndarray) -> np.ndarray:
    """Homogeneous transform [4, 4] from a rotation [3, 3] and a translation [3]."""
    t = np.eye(4)
    t[:3, :3] = rotation
    t[:3, 3] = np.asarray(translation_m, dtype=np.float64).reshape(3)
    return t


def pose_to_transform(x_m: float, y_m: float, z_m: float, yaw_rad: float) -> np.ndarray:
    """Transform [4, 4] of a planar pose (position and yaw)."""
    return make_transform(rotation_z(yaw_rad), np.array([x_m, y_m, z_m]))


def invert_transform(t: np.ndarray) -> np.ndarray:
    """Inverse of a rigid transform [4, 4]."""
    inv = np.eye(4)
    rot_t = t[:3, :3].T
    inv[:3, :3] = rot_t
    inv[:3, 3] = -rot_t @ t[:3, 3]
    return inv


def transform_points(t: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Applies ``t`` [4, 4] to points [N, 3]; returns [N, 3] in float64."""
    p = np.asarray(points, dtype=np.float64)
    return p @ t[:3, :3].T + t[:3, 3]
