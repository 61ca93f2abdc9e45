"""The car-like robot model of the CROA planner (arXiv 2412.18453): footprint, kinematic
bicycle limits and lidar mount, with the same field names and defaults as sim/robot.py's
RobotConfig except the planning speed limits (3 m/s forward, 1.5 m/s reverse: MAD moves
slowly through clutter, and d_min must exceed the footprint's sweep per step,
CroaConfig.sweep_bound_m)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from planning.croa.validation import check_number


@dataclass(frozen=True)
class RobotModel:
    """Car-like robot: footprint box, kinematic bicycle limits, lidar mount.

    The bicycle's reference point is the rear axle; ``base_link`` (the footprint centre) is
    ``wheelbase_m / 2`` ahead of it, as in sim/robot.py. Field names match sim's RobotConfig.

    Attributes:
        length_m: footprint length (m), in (0, 20].
        width_m: footprint width (m), in (0, 5].
        wheelbase_m: axle distance (m), in (0, length_m].
        max_speed_mps: forward speed limit used for planning (m/s), in (0, 30].
        max_reverse_speed_mps: reverse speed limit (m/s), in [0, 10].
        max_accel_mps2: acceleration and braking limit (m/s^2), in (0, 10].
        max_steer_rad: steering angle limit (rad), in (0, 1.2].
        max_steer_rate_radps: steering rate limit (rad/s), in (0, 10].
        lidar_x_m: lidar position ahead of base_link (m), in [-10, 10].
        lidar_z_m: lidar height above the ground (m), in (0, 5].
    """

    length_m: float = 4.5
    width_m: float = 1.9
    wheelbase_m: float = 2.7
    max_speed_mps: float = 3.0
    max_reverse_speed_mps: float = 1.5
    max_accel_mps2: float = 2.5
    max_steer_rad: float = 0.6
    max_steer_rate_radps: float = 1.0
    lidar_x_m: float = 0.0
    lidar_z_m: float = 1.8

    def __post_init__(self) -> None:
        for name, lo, hi in (
            ("length_m", 1e-3, 20.0),
            ("width_m", 1e-3, 5.0),
            ("max_speed_mps", 1e-3, 30.0),
            ("max_reverse_speed_mps", 0.0, 10.0),
            ("max_accel_mps2", 1e-3, 10.0),
            ("max_steer_rad", 1e-3, 1.2),
            ("max_steer_rate_radps", 1e-3, 10.0),
            ("lidar_x_m", -10.0, 10.0),
            ("lidar_z_m", 1e-3, 5.0),
        ):
            check_number(self, name, lo, hi)
        check_number(self, "wheelbase_m", 1e-3, self.length_m)

    @classmethod
    def from_object(cls, config: Any) -> RobotModel:
        """Copies the same-named fields of another robot config (e.g. sim's RobotConfig)."""
        names = [f for f in cls.__dataclass_fields__ if hasattr(config, f)]
        return cls(**{name: float(getattr(config, name)) for name in names})

    @property
    def rear_to_base_m(self) -> float:
        """Distance from the rear axle (bicycle reference) forward to base_link (m)."""
        return 0.5 * self.wheelbase_m

    def body_halfspaces(self) -> tuple[np.ndarray, np.ndarray]:
        """Footprint ``{x : G x <= g}`` in the rear-axle frame: G [4, 2] rows +x, +y, -x, -y."""
        c, hl, hw = self.rear_to_base_m, 0.5 * self.length_m, 0.5 * self.width_m
        g_mat = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
        return g_mat, np.array([c + hl, hw, hl - c, hw])

    def max_yaw_rate_radps(self) -> float:
        return self.max_speed_mps * math.tan(self.max_steer_rad) / self.wheelbase_m
