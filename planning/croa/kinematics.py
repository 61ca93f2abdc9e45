"""Kinematic bicycle of CROA's car-like robot (arXiv 2412.18453; RDA planner's car model).

State at the rear axle ``s = (x, y, yaw, v)``, control ``u = (a, steer)``, forward Euler with
step ``dt`` (the form the convex program linearizes, so a rollout and its linearization agree
exactly at the linearization point):

    x+ = x + dt v cos(yaw),  y+ = y + dt v sin(yaw),  yaw+ = yaw + dt v tan(steer) / L,
    v+ = v + dt a.

Linearized around ``(s_bar, u_bar)`` (first-order Taylor, per step):

    x+ = x + dt (cos(yaw_bar) v - v_bar sin(yaw_bar) yaw + v_bar sin(yaw_bar) yaw_bar)
    y+ = y + dt (sin(yaw_bar) v + v_bar cos(yaw_bar) yaw - v_bar cos(yaw_bar) yaw_bar)
    yaw+ = yaw + dt (tan(steer_bar) / L v + v_bar / (L cos^2 steer_bar) (steer - steer_bar))

``base_link`` (the footprint centre, and the pose the API speaks in) is ``L / 2`` ahead of the
rear axle, as in sim/robot.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geometry.transforms import wrap_angle
from planning.croa.robot import RobotModel


def base_to_rear(states: np.ndarray, robot: RobotModel) -> np.ndarray:  # [..., 4] -> [..., 4]
    out = np.array(states, dtype=np.float64, copy=True)
    out[..., 0] -= robot.rear_to_base_m * np.cos(out[..., 2])
    out[..., 1] -= robot.rear_to_base_m * np.sin(out[..., 2])
    return out


def rear_to_base(states: np.ndarray, robot: RobotModel) -> np.ndarray:  # [..., 4] -> [..., 4]
    out = np.array(states, dtype=np.float64, copy=True)
    out[..., 0] += robot.rear_to_base_m * np.cos(out[..., 2])
    out[..., 1] += robot.rear_to_base_m * np.sin(out[..., 2])
    return out


def lidar_xy(rear_states: np.ndarray, robot: RobotModel) -> np.ndarray:  # [..., 4] -> [..., 2]
    """Lidar position of rear-axle states."""
    offset = robot.rear_to_base_m + robot.lidar_x_m
    yaw = rear_states[..., 2]
    return rear_states[..., :2] + offset * np.stack([np.cos(yaw), np.sin(yaw)], axis=-1)


def rollout(
    rear0: np.ndarray,  # [..., 4] rear-axle start
    controls: np.ndarray,  # [..., T, 2]
    robot: RobotModel,
    dt_s: float,
) -> np.ndarray:  # [..., T + 1, 4]
    """Integrates the bicycle (module docstring) from ``rear0`` under ``controls``."""
    u = np.asarray(controls, dtype=np.float64)
    steps = u.shape[-2]
    out = np.empty((*u.shape[:-2], steps + 1, 4))
    out[..., 0, :] = rear0
    for t in range(steps):
        s = out[..., t, :]
        v = s[..., 3]
        out[..., t + 1, 0] = s[..., 0] + dt_s * v * np.cos(s[..., 2])
        out[..., t + 1, 1] = s[..., 1] + dt_s * v * np.sin(s[..., 2])
        out[..., t + 1, 2] = s[..., 2] + dt_s * v * np.tan(u[..., t, 1]) / robot.wheelbase_m
        out[..., t + 1, 3] = v + dt_s * u[..., t, 0]
    return out


@dataclass(frozen=True, eq=False)
class Linearization:
    """Per-step coefficients [T] of the linearized bicycle (module docstring)."""

    cos_yaw: np.ndarray
    sin_yaw: np.ndarray
    v_sin_yaw: np.ndarray
    v_cos_yaw: np.ndarray
    const_x: np.ndarray
    const_y: np.ndarray
    tan_steer_l: np.ndarray
    v_sec2_l: np.ndarray
    const_yaw: np.ndarray


def linearize(
    rear_states: np.ndarray,  # [T + 1, 4]
    controls: np.ndarray,  # [T, 2]
    robot: RobotModel,
) -> Linearization:
    s = rear_states[:-1]
    yaw, v, steer = s[:, 2], s[:, 3], controls[:, 1]
    c, sn = np.cos(yaw), np.sin(yaw)
    sec2_l = 1.0 / (robot.wheelbase_m * np.cos(steer) ** 2)
    return Linearization(
        cos_yaw=c,
        sin_yaw=sn,
        v_sin_yaw=v * sn,
        v_cos_yaw=v * c,
        const_x=v * sn * yaw,
        const_y=-v * c * yaw,
        tan_steer_l=np.tan(steer) / robot.wheelbase_m,
        v_sec2_l=v * sec2_l,
        const_yaw=-v * sec2_l * steer,
    )


def stop_controls(
    v0_mps: float, steer0_rad: float, steps: int, robot: RobotModel, dt_s: float
) -> np.ndarray:  # [T, 2]
    """Brake at the acceleration limit to standstill, steering returning to 0 at its rate limit."""
    out = np.zeros((steps, 2))
    v, steer = float(v0_mps), float(steer0_rad)
    max_dsteer = robot.max_steer_rate_radps * dt_s
    for t in range(steps):
        accel = float(np.clip(-v / dt_s, -robot.max_accel_mps2, robot.max_accel_mps2))
        steer -= float(np.clip(steer, -max_dsteer, max_dsteer))
        out[t] = accel, steer
        v += dt_s * accel
    return out


def pursuit_controls(
    rear0: np.ndarray,  # [4]
    steer0_rad: float,
    goals: np.ndarray,  # [N, 2] lidar goal positions
    steps: int,
    robot: RobotModel,
    dt_s: float,
) -> np.ndarray:  # [N, T, 2]
    """Pure-pursuit rollouts that bring the lidar to each goal and stop there (initial guesses).

    Each goal is approached forward, or in reverse when it lies behind and within 3 wheelbases.
    Limits (speed, acceleration, steering angle and rate) are respected and every rollout
    ends at rest (as the planner's program requires) when it starts slower than
    ``max_accel_mps2 * steps * dt_s``.
    """
    n = len(goals)
    state = np.repeat(np.asarray(rear0, dtype=np.float64)[None], n, axis=0)  # [N, 4]
    steer = np.full(n, float(steer0_rad))
    rel0 = goals - state[:, :2]
    ahead = np.cos(np.arctan2(rel0[:, 1], rel0[:, 0]) - state[:, 2]) >= 0.0
    forward = ahead | (np.linalg.norm(rel0, axis=1) > 3.0 * robot.wheelbase_m)
    sign = np.where(forward, 1.0, -1.0)
    offset = robot.rear_to_base_m + robot.lidar_x_m
    out = np.zeros((n, steps, 2))
    for t in range(steps):
        rel = goals - state[:, :2]
        dist_rear = np.maximum(np.linalg.norm(rel, axis=1), robot.wheelbase_m)
        alpha = wrap_angle(np.arctan2(rel[:, 1], rel[:, 0]) - state[:, 2] - (sign < 0) * np.pi)
        target = sign * np.arctan(2.0 * robot.wheelbase_m * np.sin(alpha) / dist_rear)
        target = np.clip(target, -robot.max_steer_rad, robot.max_steer_rad)
        step = robot.max_steer_rate_radps * dt_s
        steer = np.clip(
            steer + np.clip(target - steer, -step, step), -robot.max_steer_rad, robot.max_steer_rad
        )
        lidar = state[:, :2] + offset * np.stack([np.cos(state[:, 2]), np.sin(state[:, 2])], 1)
        remaining = np.linalg.norm(goals - lidar, axis=1)
        v_max = np.where(forward, robot.max_speed_mps, robot.max_reverse_speed_mps)
        # ... and slow enough to brake to rest by the end of the horizon (plans end at rest).
        stoppable = robot.max_accel_mps2 * (steps - t - 1) * dt_s
        v_ref = sign * np.minimum(
            np.minimum(v_max, stoppable), np.sqrt(robot.max_accel_mps2 * remaining)
        )
        accel = np.clip((v_ref - state[:, 3]) / dt_s, -robot.max_accel_mps2, robot.max_accel_mps2)
        out[:, t, 0], out[:, t, 1] = accel, steer
        state = rollout(state, out[:, t : t + 1], robot, dt_s)[:, 1]
    return out
