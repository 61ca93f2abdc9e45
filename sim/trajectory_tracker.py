"""Time-indexed trajectory tracking for the simulator's bicycle: the plan's own controls fed
forward, the pose error fed back (Kanayama et al., "A stable tracking control method for an
autonomous mobile robot", ICRA 1990, on the rear axle).

A planner such as CROA returns a *trajectory*: base_link states ``(x, y, yaw, v)`` at times
``t_k`` and the controls ``(accel, steer)`` of each step, dynamically feasible for the same
bicycle. Pure pursuit (``sim.pursuit``) follows only the path's geometry at a cruise speed with
a look-ahead of metres, so it cuts the corners of short manoeuvres and keeps none of the plan's
timing (what its clearance to moving vehicles depends on). This tracker follows the trajectory
in time: at ``t`` after the plan's start the reference is the trajectory interpolated at ``t``
(rear axle ``p_r``, yaw ``th_r``; speed ``v_r`` and acceleration ``a_r`` half a step later,
``reference``; yaw rate ``w_r = v_r tan(steer_r) / L`` with the step's ``steer_r``), the
error in the robot's rear-axle frame is

    e_x, e_y = R(-th) (p_r - p),    e_th = wrap(th_r - th)

and the command is

    v_c = v_r cos(e_th) + k_x e_x
    w_c = w_r + v_r k_y e_y + |v_r| k_th sin(e_th)        (|v_r|: the yaw term also in reverse)
    accel = a_r + k_v (v_c - v),  steer = atan(L w_c / v_c)  (the plan's steer at |v_c| < v_eps)

so an exact model follows the plan with the feed-forward alone and a mismatch (the simulator's
steering-rate limit and exact arc integration against the planner's forward Euler) is corrected.
After the last time the reference holds the final pose at rest; the tracker is ``done`` from
then on once within ``goal_tolerance_m`` (it brakes), and it gives up and brakes (``aborted``)
when the robot is more than ``max_deviation_m`` from the reference.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sim.pursuit import DriveCommand, PursuitError, check_gain
from sim.robot import RobotConfig, RobotState

BRAKE_GAIN_PER_S = 4.0  # braking to rest: deceleration per unit speed, capped by the robot's


@dataclass(frozen=True)
class TrackerConfig:
    """Gains and limits of the tracker (module docstring).

    Attributes:
        k_along_per_s: k_x, speed correction per metre of along-track error (1/s), in [0, 10].
        k_lateral_per_m2: k_y, yaw-rate correction per metre of lateral error and m/s of speed
            (1/m^2), in [0, 10].
        k_heading_per_m: k_th, yaw-rate correction per unit sin(heading error) and m/s of speed
            (1/m), in [0, 10]; 2 sqrt(k_y) damps the lateral error critically along the path.
        k_speed_per_s: k_v, acceleration per m/s of speed error (1/s), in (0, 20].
        min_speed_mps: v_eps, below it the plan's steering angle is used (m/s), in (0, 1].
        goal_tolerance_m: distance to the final pose that counts as arrived (m), in (0, 10].
        max_deviation_m: distance from the reference at which the tracker gives up (m), in
            (0, 50].
    """

    k_along_per_s: float = 2.0
    k_lateral_per_m2: float = 2.0
    k_heading_per_m: float = 2.8
    k_speed_per_s: float = 3.0
    min_speed_mps: float = 0.1
    goal_tolerance_m: float = 0.3
    max_deviation_m: float = 1.5

    def __post_init__(self) -> None:
        for name, lo, hi in (
            ("k_along_per_s", 0.0, 10.0),
            ("k_lateral_per_m2", 0.0, 10.0),
            ("k_heading_per_m", 0.0, 10.0),
            ("k_speed_per_s", 1e-3, 20.0),
            ("min_speed_mps", 1e-3, 1.0),
            ("goal_tolerance_m", 1e-3, 10.0),
            ("max_deviation_m", 1e-3, 50.0),
        ):
            check_gain(self, name, lo, hi)


class TrajectoryTracker:
    """Follows a timed trajectory of base_link states (module docstring)."""

    def __init__(self, robot: RobotConfig, config: TrackerConfig | None = None) -> None:
        self.robot = robot
        self.config = config or TrackerConfig()
        self._times = np.zeros(0)
        self._rear = np.zeros((0, 4))  # x, y, unwrapped yaw, v of the rear axle
        self._controls = np.zeros((0, 2))
        self._aborted = False
        self.last_error_m = 0.0  # distance from the reference at the latest command

    def set_trajectory(self, times_s: np.ndarray, states: np.ndarray, controls: np.ndarray) -> None:
        """Replaces the trajectory: ``times_s`` [N] from 0, increasing; ``states`` [N, 4]
        base_link x, y, yaw, v; ``controls`` [N - 1, 2] acceleration and steering angle.

        Raises:
            PursuitError: inconsistent shapes, non-finite values or times not increasing.
        """
        t = np.asarray(times_s, dtype=np.float64)
        s = np.asarray(states, dtype=np.float64)
        u = np.asarray(controls, dtype=np.float64)
        n = len(t)
        if t.ndim != 1 or n < 1 or s.shape != (n, 4) or u.shape != (max(n - 1, 0), 2):
            raise PursuitError(
                f"need times [N], states [N, 4], controls [N - 1, 2]; got {list(t.shape)}, "
                f"{list(s.shape)}, {list(u.shape)}"
            )
        if not (np.all(np.isfinite(t)) and np.all(np.isfinite(s)) and np.all(np.isfinite(u))):
            raise PursuitError("trajectory contains NaN or Inf")
        if n > 1 and not np.all(np.diff(t) > 0.0):
            raise PursuitError("trajectory times must increase")
        half = 0.5 * self.robot.wheelbase_m
        yaw = np.unwrap(s[:, 2])
        self._rear = np.column_stack(
            [s[:, 0] - half * np.cos(yaw), s[:, 1] - half * np.sin(yaw), yaw, s[:, 3]]
        )
        self._times = t - t[0]
        self._controls = u
        self._aborted = False
        self.last_error_m = 0.0

    @property
    def duration_s(self) -> float:
        return float(self._times[-1]) if len(self._times) else 0.0

    def reference(self, t_s: float) -> tuple[np.ndarray, float, float]:
        """(rear-axle x, y, yaw, v) at ``t_s``, and the held acceleration and steer.

        Pose: linear between the trajectory's states (a forward-Euler step moves along a
        chord at its start speed). Speed and acceleration: half a step later, where a
        continuous speed ramp equals the step's chord speed (without the shift the robot runs
        ahead of an accelerating plan by ``a dt t / 2``, 0.15 m after 1.2 s at 2.5 m/s^2).
        """
        times = self._times
        if len(times) == 1 or t_s >= times[-1]:
            final = self._rear[-1].copy()
            final[3] = 0.0
            return final, 0.0, float(self._controls[-1, 1]) if len(self._controls) else 0.0
        t = max(t_s, 0.0)
        k = int(np.searchsorted(times, t, side="right")) - 1
        f = (t - times[k]) / (times[k + 1] - times[k])
        ref = (1.0 - f) * self._rear[k] + f * self._rear[k + 1]
        tv = t - 0.5 * (times[k + 1] - times[k])
        ref[3] = float(np.interp(tv, times, self._rear[:, 3]))
        kv = min(max(int(np.searchsorted(times, tv, side="right")) - 1, 0), len(times) - 2)
        return ref, float(self._controls[kv, 0]), float(self._controls[k, 1])

    def _brake(self, state: RobotState, aborted: bool = False) -> DriveCommand:
        brake = min(self.robot.max_accel_mps2, BRAKE_GAIN_PER_S * abs(state.v_mps))
        return DriveCommand(-math.copysign(brake, state.v_mps), state.steer_rad, True, aborted)

    def command(self, state: RobotState, t_s: float) -> DriveCommand:
        """The command at ``t_s`` seconds after the trajectory's first state.

        Raises:
            PursuitError: no trajectory was set, or ``t_s`` is not finite.
        """
        if len(self._times) == 0:
            raise PursuitError("no trajectory: call set_trajectory first")
        if not math.isfinite(t_s):
            raise PursuitError(f"t_s={t_s!r} must be finite")
        c, r = self.config, self.robot
        if self._aborted:
            return self._brake(state, True)
        half = 0.5 * r.wheelbase_m
        th = state.yaw_rad
        p = np.array([state.x_m - half * math.cos(th), state.y_m - half * math.sin(th)])
        ref, a_ref, steer_ref = self.reference(t_s)
        d = ref[:2] - p
        self.last_error_m = float(np.hypot(*d))
        if self.last_error_m > c.max_deviation_m:
            self._aborted = True
            return self._brake(state, True)
        if t_s >= self.duration_s and self.last_error_m <= c.goal_tolerance_m:
            return self._brake(state)
        e_x = math.cos(th) * d[0] + math.sin(th) * d[1]
        e_y = -math.sin(th) * d[0] + math.cos(th) * d[1]
        e_th = math.atan2(math.sin(ref[2] - th), math.cos(ref[2] - th))
        v_ref = float(ref[3])
        w_ref = v_ref * math.tan(steer_ref) / r.wheelbase_m
        v_cmd = v_ref * math.cos(e_th) + c.k_along_per_s * e_x
        v_cmd = float(np.clip(v_cmd, -r.max_reverse_speed_mps, r.max_speed_mps))
        turn = v_ref * c.k_lateral_per_m2 * e_y + abs(v_ref) * c.k_heading_per_m * math.sin(e_th)
        w_cmd = w_ref + turn
        if abs(v_cmd) < c.min_speed_mps:
            steer = steer_ref
        else:
            steer = math.atan(r.wheelbase_m * w_cmd / v_cmd)
        steer = float(np.clip(steer, -r.max_steer_rad, r.max_steer_rad))
        accel = a_ref + c.k_speed_per_s * (v_cmd - state.v_mps)
        accel = float(np.clip(accel, -r.max_accel_mps2, r.max_accel_mps2))
        return DriveCommand(accel, steer, False)
