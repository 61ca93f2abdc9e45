"""Pure-pursuit path follower for the bicycle robot (Coulter, CMU-RI-TR-92-01), forward and in
reverse, that never drives away from its path.

The path is split into *stretches* at its cusps (consecutive segments turning by more than
90 degrees: where a plan changes between forward and reverse). The current stretch is driven
forward when its direction agrees with the heading (the path's own yaw where given, else the
robot's), and in reverse otherwise: a goal behind the robot is backed up to, as a car does,
never reached by driving off forward (which, on a path that does not go there, crosses what
the planner kept it clear of). A robot that cannot reverse (``max_reverse_speed_mps`` = 0)
brakes and reports the path ``aborted`` instead.

At the rear axle ``r`` with heading ``yaw`` and speed ``v``, the look-ahead distance is
``Ld = max(lookahead_min_m, lookahead_gain_s * |v|)``; the goal point ``q`` is the first point
of the stretch at least ``Ld`` from ``r`` past the current progress index (or the stretch end).
With ``alpha`` the angle of ``q - r`` relative to the direction of travel (``yaw``, or
``yaw + pi`` in reverse), the steering command is ``steer = s atan(2 L sin(alpha) / |q - r|)``
with ``s = +1`` forward and ``-1`` in reverse (backing up, the rear axle moves on the arc of
curvature ``-tan(steer) / L`` in its direction of travel: the same geometry mirrored).
Speed: ``accel = speed_gain_per_s * (s v_ref - v)`` with ``v_ref`` = ``target_speed_mps``
forward and ``min(reverse_speed_mps, max_reverse_speed_mps)`` in reverse, except that once the
constant deceleration needed to stop at the stretch end, ``v^2 / (2 d_end)``, reaches half the
robot's ``max_accel_mps2``, the command is that deceleration (the robot stops on the goal or the
cusp with braking margin left). It has arrived when its centre is within ``goal_tolerance_m``
of the last point or past the end of the last segment; from then on (until ``set_path``) the
command brakes to a stop, ``accel = -sign(v) min(a_max, BRAKE_GAIN_PER_S |v|)`` (no sign
change for control periods up to 1 / BRAKE_GAIN_PER_S = 0.2 s), and ``done`` is set.

Guard: once the centre is farther than ``max_deviation_m`` from the path (beyond the distance
it started at), the follower brakes and reports ``done`` and ``aborted``: it only drives where
the path goes, so an unreachable goal stops the robot rather than sending it elsewhere.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sim.robot import RobotConfig, RobotState

BRAKE_GAIN_PER_S = 5.0
_MIN_SEGMENT_M = 1e-6  # shorter segments have no direction (repeated poses of a plan at rest)


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
        reverse_speed_mps: cruise speed in reverse (m/s; the robot's reverse limit caps it),
            in (0, 20].
        max_deviation_m: distance from the path, beyond the starting one, at which the
            follower gives up and brakes (m), in (0, 50].
    """

    lookahead_min_m: float = 4.0
    lookahead_gain_s: float = 0.6
    target_speed_mps: float = 4.0
    speed_gain_per_s: float = 1.5
    goal_tolerance_m: float = 0.3
    reverse_speed_mps: float = 1.0
    max_deviation_m: float = 1.5

    def __post_init__(self) -> None:
        for name, lo, hi in (
            ("lookahead_min_m", 1e-3, 50.0),
            ("lookahead_gain_s", 0.0, 10.0),
            ("target_speed_mps", 1e-3, 60.0),
            ("speed_gain_per_s", 1e-3, 20.0),
            ("goal_tolerance_m", 1e-3, 10.0),
            ("reverse_speed_mps", 1e-3, 20.0),
            ("max_deviation_m", 1e-3, 50.0),
        ):
            check_gain(self, name, lo, hi)


def check_gain(config: object, name: str, lo: float, hi: float) -> None:
    """Raises PursuitError unless ``config.name`` is finite and in [lo, hi] (the followers'
    settings)."""
    value = getattr(config, name)
    if not math.isfinite(value) or not lo <= value <= hi:
        raise PursuitError(f"{name}={value!r}: must be in [{lo}, {hi}]")


@dataclass(frozen=True)
class DriveCommand:
    """Output of the follower: acceleration (m/s^2), steering angle (rad), arrived flag, and
    whether the path was given up (unreachable forward-only, or left by ``max_deviation_m``)."""

    accel_mps2: float
    steer_rad: float
    done: bool
    aborted: bool = False


def _distance_to_polyline(p: np.ndarray, path: np.ndarray) -> float:
    if len(path) == 1:
        return float(np.linalg.norm(p - path[0]))
    a, b = path[:-1], path[1:]
    ab = b - a
    t = np.clip(np.sum((p - a) * ab, axis=1) / np.maximum(np.sum(ab * ab, axis=1), 1e-12), 0, 1)
    return float(np.min(np.linalg.norm(a + t[:, None] * ab - p, axis=1)))


class PurePursuit:
    """Follows a path of poses [N, 2] or [N, 3] (x, y[, yaw]; yaw, where given, tells forward
    from reverse stretches)."""

    def __init__(self, robot: RobotConfig, config: PurePursuitConfig | None = None) -> None:
        self.robot = robot
        self.config = config or PurePursuitConfig()
        self.path = np.zeros((0, 2))
        self._yaw: np.ndarray | None = None
        self._ends = np.zeros(0, dtype=np.int64)  # stretch end (cusp or last) per point index
        self._progress = 0
        self._arrived = False
        self._aborted = False
        self._start_deviation: float | None = None
        self._sign: tuple[int, float] | None = None  # (stretch end, +1 forward / -1 reverse)

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
        self._yaw = p[:, 2].copy() if p.shape[1] == 3 else None
        self._ends = self._stretch_ends(self.path)
        self._progress = 0
        self._arrived = self._aborted = False
        self._start_deviation = None
        self._sign = None

    @staticmethod
    def _stretch_ends(path: np.ndarray) -> np.ndarray:
        """For each point, the index where its stretch ends (the next cusp, or the last point)."""
        seg = np.diff(path, axis=0)
        keep = np.flatnonzero(np.linalg.norm(seg, axis=1) > _MIN_SEGMENT_M)
        cusps = [int(keep[k + 1]) for k in range(len(keep) - 1)
                 if float(np.dot(seg[keep[k]], seg[keep[k + 1]])) < 0.0]  # fmt: skip
        ends = np.full(len(path), len(path) - 1, dtype=np.int64)
        start = 0
        for c in cusps:  # points start..c belong to the stretch ending at c
            ends[start : c + 1] = c
            start = c + 1
        return ends

    def _rear_axle(self, state: RobotState) -> np.ndarray:
        half = 0.5 * self.robot.wheelbase_m
        return np.array(
            [state.x_m - half * math.cos(state.yaw_rad), state.y_m - half * math.sin(state.yaw_rad)]
        )

    def _past(self, centre: np.ndarray, end: int) -> bool:
        """The centre is beyond point ``end`` along the segment that leads to it."""
        if end < 1 or self._progress < end - 1:
            return False
        return float(np.dot(centre - self.path[end], self.path[end] - self.path[end - 1])) > 0.0

    def _direction(self, state: RobotState, centre: np.ndarray, end: int) -> float:
        """+1 to drive the current stretch forward, -1 in reverse."""
        heading = np.array([math.cos(state.yaw_rad), math.sin(state.yaw_rad)])
        stretch = self.path[self._progress : end + 1]
        seg = np.diff(stretch, axis=0)
        moving = np.flatnonzero(np.linalg.norm(seg, axis=1) > _MIN_SEGMENT_M)
        if len(moving) == 0:  # one point left: toward it
            return 1.0 if float(np.dot(self.path[end] - centre, heading)) >= 0.0 else -1.0
        k = int(moving[0])
        if self._yaw is not None:  # the path says which way it faces
            yaw = self._yaw[self._progress + k]
            heading = np.array([math.cos(yaw), math.sin(yaw)])
        return 1.0 if float(np.dot(seg[k], heading)) >= 0.0 else -1.0

    def _stop(self, state: RobotState, aborted: bool = False) -> DriveCommand:
        brake = min(self.robot.max_accel_mps2, BRAKE_GAIN_PER_S * abs(state.v_mps))
        return DriveCommand(-math.copysign(brake, state.v_mps), state.steer_rad, True, aborted)

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
        if self._aborted:
            return self._stop(state, True)
        # Progress: the nearest point in a window ahead within the stretch, never going back;
        # at a cusp (reached, or passed) the next stretch begins.
        end = int(self._ends[self._progress])
        window = self.path[self._progress : min(self._progress + 50, end + 1)]
        self._progress += int(np.argmin(np.linalg.norm(window - centre, axis=1)))
        last = len(self.path) - 1
        final = end == last  # a path may pass its own goal on an earlier stretch
        if self._arrived or (final and goal_dist <= c.goal_tolerance_m) or self._past(centre, last):
            self._arrived = True
            return self._stop(state)
        deviation = _distance_to_polyline(centre, self.path)
        if self._start_deviation is None:
            self._start_deviation = deviation
        if deviation > self._start_deviation + c.max_deviation_m:
            self._aborted = True
            return self._stop(state, True)
        if end < last and (
            np.linalg.norm(self.path[end] - centre) <= c.goal_tolerance_m or self._past(centre, end)
        ):
            self._progress = end + 1
            end = int(self._ends[self._progress])
        if self._sign is None or self._sign[0] != end:  # latched per stretch: no dithering
            self._sign = (end, self._direction(state, centre, end))
        sign = self._sign[1]
        v_ref = c.target_speed_mps
        if sign < 0.0:
            v_ref = min(c.reverse_speed_mps, self.robot.max_reverse_speed_mps)
            if v_ref <= 0.0:  # cannot back up: stop rather than drive away from the goal
                self._aborted = True
                return self._stop(state, True)
        lookahead = max(c.lookahead_min_m, c.lookahead_gain_s * abs(state.v_mps))
        ahead = self.path[self._progress : end + 1]
        far = np.flatnonzero(np.linalg.norm(ahead - rear, axis=1) >= lookahead)
        goal = ahead[far[0]] if len(far) else self.path[end]
        delta = goal - rear
        travel = state.yaw_rad + (math.pi if sign < 0.0 else 0.0)
        alpha = math.atan2(delta[1], delta[0]) - travel
        steer = sign * math.atan2(
            2.0 * self.robot.wheelbase_m * math.sin(alpha), max(float(np.linalg.norm(delta)), 1e-6)
        )
        accel = c.speed_gain_per_s * (sign * v_ref - state.v_mps)
        end_dist = max(float(np.linalg.norm(self.path[end] - centre)), 1e-6)
        stop_decel = state.v_mps**2 / (2.0 * end_dist)
        if sign * state.v_mps > 0.0 and stop_decel >= 0.5 * self.robot.max_accel_mps2:
            accel = sign * min(sign * accel, -stop_decel)
        return DriveCommand(accel, steer, False)
