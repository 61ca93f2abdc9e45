"""Deskewing a node's lidar clouds with the robot's odometry (``lidar_detector``, ``edge_bridge``).

``DeskewParams`` are the parameters both nodes declare; ``OdometryDeskew`` keeps the latest
nav_msgs/Odometry twist (body frame) and gives the ``perception.deskew.ScanMotion`` of a cloud
stamped within ``odom_max_age_s`` of it (None otherwise: the cloud is used as reported).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from robomr_nodes.messages import stamp_ns
from robomr_nodes.params import param


@dataclass(frozen=True)
class DeskewParams:
    deskew: bool = param(
        False, "undo the rolling shutter of a moving robot with its odometry (odom topic)"
    )
    scan_period_s: float = param(
        0.1, "time of one lidar revolution (s), for deskewing", min_value=0.01, max_value=1.0
    )
    scan_start_azimuth_rad: float = param(
        -math.pi,
        "azimuth (lidar frame) the revolution starts at; the cloud's stamp is its end",
        min_value=-math.pi,
        max_value=math.pi,
    )
    scan_direction: str = param(
        "ccw", "turn of the revolution seen from above", choices=("ccw", "cw")
    )
    odom_max_age_s: float = param(
        0.5,
        "odometry farther than this from a cloud's stamp is not used to deskew it (s)",
        min_value=0.0,
        max_value=10.0,
    )


class OdometryDeskew:
    """The latest odometry twist and the scan motion it gives a cloud (module docstring).

    ``R_body_lidar`` [3, 3]: the lidar frame's rotation in the robot's body frame (a
    ``SensorSetup``'s ``T_model_sensor[:3, :3]``; identity for a lidar mounted level, x forward).
    """

    def __init__(self, params: DeskewParams, R_body_lidar: np.ndarray, log: Any) -> None:
        self.params = params
        self.R_body_lidar = np.asarray(R_body_lidar, dtype=np.float64)
        self.log = log
        self.latest: tuple[int, float, float, float] | None = None  # stamp ns, vx, vy, wz

    def on_odom(self, msg: Any) -> None:
        twist = msg.twist.twist
        odom = (float(twist.linear.x), float(twist.linear.y), float(twist.angular.z))
        if not all(math.isfinite(v) for v in odom):
            self.log.warning("skipping odometry with NaN/Inf twist: %s", odom)
            return
        self.latest = (stamp_ns(msg.header.stamp), *odom)

    def motion(self, cloud_stamp_ns: int) -> Any:
        """The ScanMotion of the cloud stamped ``cloud_stamp_ns``, or None (deskewing off, no
        odometry yet, or none within ``odom_max_age_s``). The lever arm between the robot's
        reference point and the lidar is neglected (``ScanMotion.from_body_twist``)."""
        from perception.deskew import ScanMotion

        p = self.params
        if not p.deskew or self.latest is None:
            return None
        stamp, vx, vy, wz = self.latest
        if abs(cloud_stamp_ns - stamp) > p.odom_max_age_s * 1e9:
            return None
        return ScanMotion.from_body_twist(
            vx,
            vy,
            wz,
            self.R_body_lidar,
            scan_period_s=p.scan_period_s,
            start_azimuth_rad=min(max(p.scan_start_azimuth_rad, -math.pi), math.pi),
            direction=1 if p.scan_direction == "ccw" else -1,
        )
