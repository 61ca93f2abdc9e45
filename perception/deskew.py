"""Deskewing: a spinning lidar's scan moved into the frame the lidar has at the scan's end.

A spinning lidar fires its columns one after another over a revolution (``scan_period_s``) and
reports every point in the frame the lidar had when that column fired. On a moving robot the
scan is therefore smeared: a static car beside the road appears shifted along the robot's
motion by up to ``speed * scan_period_s`` (1.2 m at 12 m/s and 10 Hz), by an amount that depends
on where in the revolution it was seen, which no single-scan detector can undo. Robot stacks
correct it with the robot's own motion (odometry) before anything reads the scan (e.g.
Autoware's distortion corrector, LIO-SAM's deskewing); this module does the same.

Formulation (constant velocity and yaw rate over one revolution, the model of
``sim.lidar``'s rolling shutter): a point ``p`` fired at time ``t <= 0`` (the scan's stamp is
its end, ``t = 0``) moves to

    p_end = R_z(yaw_rate * t) p + v * t

with ``v`` the lidar's velocity and ``yaw_rate`` its rotation rate, both in the lidar's frame at
the scan's end. ``t`` comes from the point's azimuth: the revolution starts at
``start_azimuth_rad`` and turns counter-clockwise (``direction=1``, azimuth increasing, as the
simulator's lidar) or clockwise (``-1``, as Velodyne's), so a point at azimuth ``a`` fired at

    t = (((a - a0) * direction) mod 2 pi) / (2 pi) * T - T

(a continuous approximation of the column's firing time: off by at most one column, 0.1 ms
for a 1024-column 10 Hz lidar, a millimetre at 12 m/s). Drivers that stamp every point (a per-
point time column) can pass those times instead (``times_s``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from perception.errors import PerceptionError

MAX_SPEED_MPS = 100.0
MAX_YAW_RATE_RADPS = 10.0


class DeskewError(PerceptionError):
    """A scan motion value is out of its bounds, or per-point times do not fit the cloud."""


@dataclass(frozen=True)
class ScanMotion:
    """How the lidar moved during one scan (from odometry), in its frame at the scan's end.

    Attributes:
        velocity_mps: (vx, vy, vz) linear velocity (m/s), each |v| <= 100.
        yaw_rate_radps: rotation rate about the lidar's z axis (rad/s), |w| <= 10.
        scan_period_s: time of one revolution (s), in [0.01, 1].
        start_azimuth_rad: azimuth of the first column fired, in [-pi, pi].
        direction: 1 counter-clockwise (azimuth increasing), -1 clockwise.
    """

    velocity_mps: tuple[float, float, float] = (0.0, 0.0, 0.0)
    yaw_rate_radps: float = 0.0
    scan_period_s: float = 0.1
    start_azimuth_rad: float = -math.pi
    direction: int = 1

    def __post_init__(self) -> None:
        v = tuple(float(x) for x in self.velocity_mps)
        if len(v) != 3 or not all(math.isfinite(x) and abs(x) <= MAX_SPEED_MPS for x in v):
            raise DeskewError(
                f"velocity_mps={self.velocity_mps}: need 3 finite values, each |v| <= "
                f"{MAX_SPEED_MPS} m/s"
            )
        object.__setattr__(self, "velocity_mps", v)
        checks = (
            ("yaw_rate_radps", self.yaw_rate_radps, -MAX_YAW_RATE_RADPS, MAX_YAW_RATE_RADPS),
            ("scan_period_s", self.scan_period_s, 0.01, 1.0),
            ("start_azimuth_rad", self.start_azimuth_rad, -math.pi, math.pi),
        )
        for name, value, lo, hi in checks:
            if not (math.isfinite(value) and lo <= value <= hi):
                raise DeskewError(f"{name}={value} must be in [{lo}, {hi}]")
        if self.direction not in (1, -1):
            raise DeskewError(f"direction={self.direction} must be 1 (ccw) or -1 (cw)")

    @classmethod
    def from_body_twist(
        cls,
        vx_mps: float,
        vy_mps: float,
        yaw_rate_radps: float,
        R_body_lidar: np.ndarray,  # [3, 3] rotation of the lidar frame in the body frame
        **revolution: float,
    ) -> ScanMotion:
        """The lidar's motion for a body-frame twist (odometry: forward, left, yaw rate) and
        the lidar's mounting rotation; speeds beyond the bounds are clipped. The lever arm
        between the body's reference point and the lidar is neglected (its velocity
        ``yaw_rate x r`` is 0.05 m/s per metre of offset at 0.05 rad/s). ``revolution``:
        ``scan_period_s``, ``start_azimuth_rad``, ``direction``."""
        R = np.asarray(R_body_lidar, dtype=np.float64)
        v = np.clip(R.T @ np.array([vx_mps, vy_mps, 0.0]), -MAX_SPEED_MPS, MAX_SPEED_MPS)
        w = float((R.T @ np.array([0.0, 0.0, yaw_rate_radps]))[2])
        w = min(max(w, -MAX_YAW_RATE_RADPS), MAX_YAW_RATE_RADPS)
        return cls(tuple(v.tolist()), w, **revolution)  # type: ignore[arg-type]

    @property
    def is_static(self) -> bool:
        return self.yaw_rate_radps == 0.0 and not any(self.velocity_mps)


def point_times(points: np.ndarray, motion: ScanMotion) -> np.ndarray:  # [N] float32, s
    """Firing time of each point relative to the scan's end, in [-scan_period_s, 0] (float32:
    about 1e-8 s of rounding, a tenth of a micrometre at 10 m/s)."""
    pts = np.asarray(points)
    x = pts[:, 0].astype(np.float32, copy=False)
    y = pts[:, 1].astype(np.float32, copy=False)
    turned = np.arctan2(y, x) - np.float32(motion.start_azimuth_rad)
    if motion.direction < 0:
        turned = -turned
    turned = np.mod(turned, np.float32(2.0 * math.pi))
    return (turned * np.float32(1.0 / (2.0 * math.pi)) - np.float32(1.0)) * np.float32(
        motion.scan_period_s
    )


def deskew(
    points: np.ndarray,  # [N, C >= 3] x, y, z (, ...) in the lidar frame, as the lidar reports
    motion: ScanMotion,
    times_s: np.ndarray | None = None,  # [N] per-point times relative to the scan's end
    units_per_m: float = 1.0,
) -> np.ndarray:  # [N, C] float32, x, y, z in the lidar frame at the scan's end
    """The cloud with every point moved into the lidar's frame at the scan's end (module
    docstring); other columns are copied, NaN/Inf rows stay non-finite (later steps drop them).
    ``units_per_m``: the cloud's length unit (1000 for a cloud in millimetres).

    Raises:
        DeskewError: ``times_s`` given with a length other than the cloud's, or non-finite.
    """
    pts = np.asarray(points)
    out = pts.astype(np.float32, copy=True)
    if motion.is_static or len(pts) == 0:
        return out
    if times_s is None:
        with np.errstate(invalid="ignore"):
            t = point_times(pts, motion)
    else:
        t = np.asarray(times_s, dtype=np.float32).reshape(-1)
        if len(t) != len(pts):
            raise DeskewError(f"{len(t)} point times for a cloud of {len(pts)} points")
        if not np.all(np.isfinite(t)):
            raise DeskewError("point times must be finite")
    x, y = out[:, 0].copy(), out[:, 1].copy()
    vx, vy, vz = (np.float32(v * units_per_m) for v in motion.velocity_mps)
    if motion.yaw_rate_radps != 0.0:
        angle = np.float32(motion.yaw_rate_radps) * t
        cos, sin = np.cos(angle), np.sin(angle)
        out[:, 0] = cos * x - sin * y + vx * t
        out[:, 1] = sin * x + cos * y + vy * t
    else:
        out[:, 0] = x + vx * t
        out[:, 1] = y + vy * t
    if vz != 0.0:
        out[:, 2] += vz * t
    return out
