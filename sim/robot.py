"""The simulated car-like robot: a kinematic bicycle model with actuator limits, its footprint
polytope and its sensor transforms.

Model (rear-axle reference, wheelbase ``L``; ``base_link`` is the footprint centre, ``L / 2``
ahead of the rear axle, as docs/conventions.md puts base_link at the robot centre):

    x_r' = v cos(yaw),  y_r' = v sin(yaw),  yaw' = v tan(steer) / L,
    v' = clip(accel, -a_max, a_max),  v in [-v_reverse_max, v_max],
    steer' = clip((steer_cmd - steer) / dt, -steer_rate_max, steer_rate_max),  |steer| <= steer_max.

A step integrates the arc exactly for the step's mean speed and its end steering angle. The
footprint is the ``length x width`` box, the polytope ``G p <= g`` that CROA's collision
constraints use (OBCA form, arXiv 1711.03449). Frames: map -> base_link -> lidar, and
base_link -> camera -> camera_optical (OpenCV optical axes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from geometry.transforms import make_transform, pose_to_transform

# camera (x forward, y left, z up) -> camera_optical (z forward, x right, y down).
R_CAMERA_OPTICAL = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])


class RobotError(ValueError):
    """Bad robot configuration, state or command (the message names the field and limit)."""


def _check(name: str, value: float, lo: float, hi: float) -> None:
    if isinstance(value, bool) or not math.isfinite(value) or not lo <= value <= hi:
        raise RobotError(f"{name}={value!r}: must be finite and in [{lo}, {hi}]")


@dataclass(frozen=True)
class RobotConfig:
    """Robot geometry, limits and sensor mounts (metres, seconds, radians).

    Attributes:
        length_m: footprint length, in (0, 20].
        width_m: footprint width, in (0, 5].
        height_m: body height, in (0, 5].
        wheelbase_m: axle distance, in (0, length_m].
        max_speed_mps: forward speed limit, in (0, 60].
        max_reverse_speed_mps: reverse speed limit, in [0, 20].
        max_accel_mps2: acceleration/braking limit, in (0, 20].
        max_steer_rad: steering angle limit, in (0, 1.2].
        max_steer_rate_radps: steering rate limit, in (0, 10].
        lidar_x_m: lidar position ahead of base_link, in [-10, 10].
        lidar_z_m: lidar height above the ground, in (0, 5].
        camera_x_m: camera position ahead of base_link, in [-10, 10].
        camera_z_m: camera height above the ground, in (0, 5].
        camera_pitch_rad: camera pitch, positive looking down, in [-1.5, 1.5].
    """

    length_m: float = 4.5
    width_m: float = 1.9
    height_m: float = 1.6
    wheelbase_m: float = 2.7
    max_speed_mps: float = 8.0
    max_reverse_speed_mps: float = 2.0
    max_accel_mps2: float = 2.5
    max_steer_rad: float = 0.6
    max_steer_rate_radps: float = 1.0
    lidar_x_m: float = 0.0
    lidar_z_m: float = 1.8
    camera_x_m: float = 1.0
    camera_z_m: float = 1.5
    camera_pitch_rad: float = 0.05

    def __post_init__(self) -> None:
        for name, lo, hi in (
            ("length_m", 1e-3, 20.0),
            ("width_m", 1e-3, 5.0),
            ("height_m", 1e-3, 5.0),
            ("wheelbase_m", 1e-3, self.length_m),
            ("max_speed_mps", 1e-3, 60.0),
            ("max_reverse_speed_mps", 0.0, 20.0),
            ("max_accel_mps2", 1e-3, 20.0),
            ("max_steer_rad", 1e-3, 1.2),
            ("max_steer_rate_radps", 1e-3, 10.0),
            ("lidar_x_m", -10.0, 10.0),
            ("lidar_z_m", 1e-3, 5.0),
            ("camera_x_m", -10.0, 10.0),
            ("camera_z_m", 1e-3, 5.0),
            ("camera_pitch_rad", -1.5, 1.5),
        ):
            _check(name, getattr(self, name), lo, hi)


@dataclass(frozen=True)
class RobotState:
    """Pose of base_link in the map and actuator state.

    Attributes:
        x_m, y_m: position (m). yaw_rad: heading (rad). v_mps: forward speed (m/s).
        steer_rad: front wheel angle (rad). odometer_m: distance driven (m, always >= 0).
    """

    x_m: float
    y_m: float
    yaw_rad: float
    v_mps: float = 0.0
    steer_rad: float = 0.0
    odometer_m: float = 0.0

    def __post_init__(self) -> None:
        for name in ("x_m", "y_m", "yaw_rad", "v_mps", "steer_rad", "odometer_m"):
            _check(name, getattr(self, name), -math.inf, math.inf)

    @property
    def pose(self) -> np.ndarray:
        """(x, y, yaw) float64 [3]."""
        return np.array([self.x_m, self.y_m, self.yaw_rad])


@dataclass(frozen=True)
class Odometry:
    """Ground-truth odometry of base_link (what a nav_msgs/Odometry would carry).

    Attributes:
        pose: (x_m, y_m, yaw_rad) in the map frame.
        linear_mps: (vx, vy) of base_link in base_link: (v, yaw_rate * L / 2), since base_link
            sits L / 2 ahead of the rear axle.
        yaw_rate_radps: v tan(steer) / L.
        odometer_m: distance driven by the rear axle.
    """

    pose: tuple[float, float, float]
    linear_mps: tuple[float, float]
    yaw_rate_radps: float
    odometer_m: float


class BicycleRobot:
    """A kinematic bicycle robot; ``step`` advances it, the ``T_*`` methods give its frames."""

    def __init__(self, config: RobotConfig | None = None, state: RobotState | None = None) -> None:
        self.config = config or RobotConfig()
        self.state = state or RobotState(0.0, 0.0, 0.0)

    def step(self, accel_mps2: float, steer_cmd_rad: float, dt_s: float) -> RobotState:
        """Advances ``dt_s`` seconds under an acceleration and a steering-angle command (both
        clipped to the limits); returns and stores the new state.

        Raises:
            RobotError: a non-finite command or ``dt_s`` outside (0, 10].
        """
        _check("dt_s", dt_s, 1e-9, 10.0)
        _check("accel_mps2", accel_mps2, -math.inf, math.inf)
        _check("steer_cmd_rad", steer_cmd_rad, -math.inf, math.inf)
        c, s = self.config, self.state
        accel = float(np.clip(accel_mps2, -c.max_accel_mps2, c.max_accel_mps2))
        v1 = float(np.clip(s.v_mps + accel * dt_s, -c.max_reverse_speed_mps, c.max_speed_mps))
        target = float(np.clip(steer_cmd_rad, -c.max_steer_rad, c.max_steer_rad))
        max_delta = c.max_steer_rate_radps * dt_s
        steer = s.steer_rad + float(np.clip(target - s.steer_rad, -max_delta, max_delta))
        distance = 0.5 * (s.v_mps + v1) * dt_s  # signed arc length of the rear axle
        half = 0.5 * c.wheelbase_m
        xr, yr = s.x_m - half * math.cos(s.yaw_rad), s.y_m - half * math.sin(s.yaw_rad)
        curvature = math.tan(steer) / c.wheelbase_m
        yaw1 = s.yaw_rad + distance * curvature
        if abs(distance * curvature) < 1e-9:
            xr += distance * math.cos(s.yaw_rad)
            yr += distance * math.sin(s.yaw_rad)
        else:
            xr += (math.sin(yaw1) - math.sin(s.yaw_rad)) / curvature
            yr += (math.cos(s.yaw_rad) - math.cos(yaw1)) / curvature
        yaw1 = math.atan2(math.sin(yaw1), math.cos(yaw1))
        self.state = RobotState(
            xr + half * math.cos(yaw1),
            yr + half * math.sin(yaw1),
            yaw1,
            v1,
            steer,
            s.odometer_m + abs(distance),
        )
        return self.state

    def odometry(self) -> Odometry:
        """Pose and body-frame velocity of the current state."""
        s, wheelbase = self.state, self.config.wheelbase_m
        yaw_rate = s.v_mps * math.tan(s.steer_rad) / wheelbase
        return Odometry(
            (s.x_m, s.y_m, s.yaw_rad), (s.v_mps, 0.5 * wheelbase * yaw_rate), yaw_rate, s.odometer_m
        )

    def reset(self, x_m: float, y_m: float, yaw_rad: float) -> None:
        """Places the robot at rest at a pose (odometer kept)."""
        self.state = replace(
            self.state, x_m=x_m, y_m=y_m, yaw_rad=yaw_rad, v_mps=0.0, steer_rad=0.0
        )

    def footprint_box(self) -> np.ndarray:
        """The body as a box ``[x, y, z, l, w, h, yaw]`` [7] in the map frame."""
        c, s = self.config, self.state
        return np.array(
            [s.x_m, s.y_m, 0.5 * c.height_m, c.length_m, c.width_m, c.height_m, s.yaw_rad]
        )

    def footprint_polytope(self) -> tuple[np.ndarray, np.ndarray]:
        """2D footprint ``{p : G p <= g}`` in base_link: G [4, 2], g [4]."""
        c = self.config
        G = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
        g = 0.5 * np.array([c.length_m, c.width_m, c.length_m, c.width_m])
        return G, g

    def T_world_base(self) -> np.ndarray:
        s = self.state
        return pose_to_transform(s.x_m, s.y_m, 0.0, s.yaw_rad)

    def T_base_lidar(self) -> np.ndarray:
        return make_transform(
            np.eye(3), np.array([self.config.lidar_x_m, 0.0, self.config.lidar_z_m])
        )

    def T_base_camera(self) -> np.ndarray:
        c = self.config
        pitch = np.array(
            [
                [math.cos(c.camera_pitch_rad), 0.0, math.sin(c.camera_pitch_rad)],
                [0.0, 1.0, 0.0],
                [-math.sin(c.camera_pitch_rad), 0.0, math.cos(c.camera_pitch_rad)],
            ]
        )
        return make_transform(pitch, np.array([c.camera_x_m, 0.0, c.camera_z_m]))

    @staticmethod
    def T_camera_camera_optical() -> np.ndarray:
        return make_transform(R_CAMERA_OPTICAL, np.zeros(3))

    def T_base_camera_optical(self) -> np.ndarray:
        return self.T_base_camera() @ self.T_camera_camera_optical()

    def T_world_lidar(self) -> np.ndarray:
        return self.T_world_base() @ self.T_base_lidar()

    def T_world_camera_optical(self) -> np.ndarray:
        return self.T_world_base() @ self.T_base_camera_optical()
