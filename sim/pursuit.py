"""Pure-pursuit path follower for the bicycle robot (Coulter, CMU-RI-TR-92-01).

At the rear axle ``r`` with heading ``yaw`` and speed ``v``, the look-ahead distance is
``Ld = max(lookahead_min_m, lookahead_gain_s * |v|)``; the goal point ``q`` is the first path
point at least ``Ld`` from ``r`` past the current progress index (or the path end). With
``alpha`` the angle of ``q - r`` relative to the heading, the steering command is
``steer = atan(2 L sin(alpha) / |q - r|)``. Speed: ``accel = speed_gain_per_s *
(target_speed_mps - v)``, except that once the constant deceleration needed to stop at the
last point, ``v^2 / (2 d_goal)``, reaches half the robot's ``max_accel_mps2``, the command is
that deceleration (so the robot stops on the goal, with braking margin left). It has arrived
when its centre is within ``goal_tolerance_m`` of the last point or past the end of the last
segment; from then on (until ``set_path``) the command brakes to a stop,
``accel = -sign(v) min(a_max, BRAKE_GAIN_PER_S |v|)`` (no sign change for control periods up to
1 / BRAKE_GAIN_PER_S = 0.2 s), and ``done`` is set.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sim.robot import RobotConfig, RobotState

BRAKE_GAIN_PER_S = 5.0


class PursuitError(ValueError):
    """Bad follower settings or path (the message names the field and the limit)."""


@dataclass(frozen=True)
class PurePursuitConfig:
    """Follower gains.

    Attributes:
        lookahead_min_m: minimum look-ahead distance (m), in (0, 50].
        lookahead_gain_s: look-ahead per unit speed (s), in [0, 10].
        target_speed_mps: cruise speed (m/s), in (0, 60].
        speed_gain_per_s: proportional speed gain (1/s), in (0, 20].
        goal_tolerance_m: distance to the last pose that counts as arrived (m), in (0, 10].
    """

    lookahead_min_m: float = 4.0
    lookahead_gain_s: float = 0.6
    target_speed_mps: float = 4.0
    speed_gain_per_s: float = 1.5
    goal_tolerance_m: float = 0.3

    def __post_init__(self) -> None:
        for name, lo, hi in (
            ("lookahead_min_m", 1e-3, 50.0),
            ("lookahead_gain_s", 0.0, 10.0),
            ("target_speed_mps", 1e-3, 60.0),
            ("speed_gain_per_s", 1e-3, 20.0),
            ("goal_tolerance_m", 1e-3, 10.0),
        ):
            value = getattr(self, name)
            if not math.isfinite(value) or not lo <= value <= hi:
                raise PursuitError(f"{name}={value!r}: must be in [{lo}, {hi}]")


@dataclass(frozen=True)
class DriveCommand:
    """Output of the follower: acceleration (m/s^2), steering angle (rad), arrived flag."""

    accel_mps2: float
    steer_rad: float
    done: bool


class PurePursuit:
    """Follows a path of poses [N, 2] or [N, 3] (x, y[, yaw]; yaw is not used)."""

    def __init__(self, robot: RobotConfig, config: PurePursuitConfig | None = None) -> None:
        self.robot = robot
        self.config = config or PurePursuitConfig()
        self.path = np.zeros((0, 2))
        self._progress = 0
        self._arrived = False

    def set_path(self, poses: np.ndarray) -> None:
        """Replaces the path (progress restarts at its first point).

        Raises:
            PursuitError: not [N, 2] / [N, 3] with N >= 1, or non-finite values.
        """
        p = np.asarray(poses, dtype=np.float64)
        if p.ndim != 2 or p.shape[0] < 1 or p.shape[1] not in (2, 3):
            raise PursuitError(
                f"path must have shape [N, 2] or [N, 3], N >= 1; got {list(p.shape)}"
            )
        if not np.all(np.isfinite(p)):
            raise PursuitError("path contains NaN or Inf")
        self.path = p[:, :2].copy()
        self._progress = 0
        self._arrived = False

    def _rear_axle(self, state: RobotState) -> np.ndarray:
        half = 0.5 * self.robot.wheelbase_m
        return np.array(
            [state.x_m - half * math.cos(state.yaw_rad), state.y_m - half * math.sin(state.yaw_rad)]
        )

    def _past_end(self, centre: np.ndarray) -> bool:
        """The centre is beyond the end of the last segment (overshoot counts as arrival)."""
        if len(self.path) < 2 or self._progress < len(self.path) - 2:
            return False
        return float(np.dot(centre - self.path[-1], self.path[-1] - self.path[-2])) > 0.0

    def command(self, state: RobotState) -> DriveCommand:
        """The command for the current state (call once per control period).

        Raises:
            PursuitError: no path was set.
        """
        if len(self.path) == 0:
            raise PursuitError("no path: call set_path first")
        c = self.config
        rear = self._rear_axle(state)
        centre = np.array([state.x_m, state.y_m])
        goal_dist = float(np.linalg.norm(self.path[-1] - centre))
        # Progress: the nearest point in a window ahead, never going back.
        window = self.path[self._progress : self._progress + 50]
        self._progress += int(np.argmin(np.linalg.norm(window - centre, axis=1)))
        if self._arrived or goal_dist <= c.goal_tolerance_m or self._past_end(centre):
            self._arrived = True
            brake = min(self.robot.max_accel_mps2, BRAKE_GAIN_PER_S * abs(state.v_mps))
            return DriveCommand(-math.copysign(brake, state.v_mps), state.steer_rad, True)
        lookahead = max(c.lookahead_min_m, c.lookahead_gain_s * abs(state.v_mps))
        ahead = self.path[self._progress :]
        far = np.flatnonzero(np.linalg.norm(ahead - rear, axis=1) >= lookahead)
        goal = ahead[far[0]] if len(far) else self.path[-1]
        delta = goal - rear
        alpha = math.atan2(delta[1], delta[0]) - state.yaw_rad
        steer = math.atan2(
            2.0 * self.robot.wheelbase_m * math.sin(alpha), max(float(np.linalg.norm(delta)), 1e-6)
        )
        accel = c.speed_gain_per_s * (c.target_speed_mps - state.v_mps)
        stop_decel = state.v_mps**2 / (2.0 * goal_dist)
        if state.v_mps > 0.0 and stop_decel >= 0.5 * self.robot.max_accel_mps2:
            accel = min(accel, -stop_decel)
        return DriveCommand(accel, steer, False)
