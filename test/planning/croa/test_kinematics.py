"""Bicycle model: linearization accuracy, frame conversions, stop and pursuit controls."""

from __future__ import annotations

import numpy as np
import pytest

from planning.croa.kinematics import (
    base_to_rear,
    linearize,
    pursuit_controls,
    rear_to_base,
    rollout,
    stop_controls,
)
from planning.croa.robot import RobotModel

ROBOT = RobotModel()
DT = 0.1


def _linear_step(lin, t: int, s: np.ndarray, u: np.ndarray) -> np.ndarray:
    return np.array([
        s[0] + DT * (lin.cos_yaw[t] * s[3] - lin.v_sin_yaw[t] * s[2] + lin.const_x[t]),
        s[1] + DT * (lin.sin_yaw[t] * s[3] + lin.v_cos_yaw[t] * s[2] + lin.const_y[t]),
        s[2] + DT * (lin.tan_steer_l[t] * s[3] + lin.v_sec2_l[t] * u[1] + lin.const_yaw[t]),
        s[3] + DT * u[0],
    ])  # fmt: skip


@pytest.mark.parametrize("scale", [1e-2, 1e-3])
def test_linearization_is_exact_at_the_point_and_second_order_nearby(scale: float) -> None:
    rng = np.random.default_rng(1)
    controls = np.column_stack([rng.uniform(-2, 2, 10), rng.uniform(-0.5, 0.5, 10)])
    states = rollout(np.array([1.0, -2.0, 0.3, 1.5]), controls, ROBOT, DT)
    lin = linearize(states, controls, ROBOT)
    for t in range(10):
        assert _linear_step(lin, t, states[t], controls[t]) == pytest.approx(states[t + 1])
        ds, du = scale * rng.normal(size=4), scale * rng.normal(size=2)
        exact = rollout(states[t] + ds, (controls[t] + du)[None], ROBOT, DT)[1]
        error = np.abs(_linear_step(lin, t, states[t] + ds, controls[t] + du) - exact).max()
        # Taylor remainder: dt * O(|d|^2) with second derivatives of order v / L <= 1.
        assert error <= 10 * DT * scale**2


def test_base_and_rear_conversions_invert_each_other() -> None:
    states = np.random.default_rng(2).normal(size=(20, 4))
    assert rear_to_base(base_to_rear(states, ROBOT), ROBOT) == pytest.approx(states, abs=1e-12)
    offset = np.linalg.norm(states[:, :2] - base_to_rear(states, ROBOT)[:, :2], axis=1)
    assert offset == pytest.approx(np.full(20, 0.5 * ROBOT.wheelbase_m))


@pytest.mark.parametrize(("v0", "steer0"), [(3.0, 0.5), (-1.5, -0.2), (0.0, 0.0)])
def test_stop_controls_brake_to_rest_within_limits(v0: float, steer0: float) -> None:
    u = stop_controls(v0, steer0, 25, ROBOT, DT)
    states = rollout(np.array([0.0, 0.0, 0.0, v0]), u, ROBOT, DT)
    assert states[-1, 3] == pytest.approx(0.0, abs=1e-12)
    assert np.all(np.abs(u[:, 0]) <= ROBOT.max_accel_mps2 + 1e-12)
    steer = np.concatenate([[steer0], u[:, 1]])
    assert np.all(np.abs(np.diff(steer)) <= ROBOT.max_steer_rate_radps * DT + 1e-12)


def test_pursuit_reaches_a_goal_ahead_and_respects_limits() -> None:
    goals = np.array([[6.0, 1.0], [5.0, -1.5]])
    rear0 = base_to_rear(np.array([0.0, 0.0, 0.0, 0.0]), ROBOT)
    u = pursuit_controls(rear0, 0.0, goals, 40, ROBOT, DT)
    states = rollout(rear0, u, ROBOT, DT)  # [2, 41, 4]
    offset = ROBOT.rear_to_base_m + ROBOT.lidar_x_m
    lidar = states[:, -1, :2] + offset * np.stack(
        [np.cos(states[:, -1, 2]), np.sin(states[:, -1, 2])], axis=1
    )
    assert np.linalg.norm(lidar - goals, axis=1).max() < 1.0  # arrives within a metre
    assert np.all(np.abs(u[..., 1]) <= ROBOT.max_steer_rad + 1e-12)
    assert np.all(states[..., 3] <= ROBOT.max_speed_mps + 1e-9)
