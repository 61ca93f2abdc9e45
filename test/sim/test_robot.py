"""Kinematic bicycle robot: limits, exact arcs, frames, footprint, bad inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.robot import BicycleRobot, RobotConfig, RobotError, RobotState

CFG = RobotConfig()
EXACT = 1e-12  # float64 rounding of a few operations on O(10) values


@given(
    commands=st.lists(
        st.tuples(st.floats(-50, 50), st.floats(-3, 3), st.floats(0.01, 0.5)),
        min_size=1,
        max_size=40,
    )
)
@settings(max_examples=60, deadline=None)
def test_speed_steering_and_their_rates_stay_within_limits(commands) -> None:
    robot = BicycleRobot(CFG, RobotState(0.0, 0.0, 0.0))
    for accel, steer, dt in commands:
        before = robot.state
        after = robot.step(accel, steer, dt)
        eps = 1e-9  # float rounding of the clip arithmetic
        assert -CFG.max_reverse_speed_mps - eps <= after.v_mps <= CFG.max_speed_mps + eps
        assert abs(after.steer_rad) <= CFG.max_steer_rad + eps
        assert abs(after.v_mps - before.v_mps) <= CFG.max_accel_mps2 * dt + eps
        assert abs(after.steer_rad - before.steer_rad) <= CFG.max_steer_rate_radps * dt + eps
        assert after.odometer_m >= before.odometer_m


def test_straight_drive_covers_mean_speed_times_time() -> None:
    robot = BicycleRobot(CFG, RobotState(1.0, 2.0, math.pi / 2, v_mps=3.0))
    state = robot.step(1.0, 0.0, 0.5)  # v: 3 -> 3.5, mean 3.25
    assert (state.x_m, state.y_m) == pytest.approx((1.0, 2.0 + 3.25 * 0.5), abs=EXACT)
    assert state.odometer_m == pytest.approx(1.625, abs=EXACT)


@pytest.mark.parametrize("steer", [0.2, -0.4])
def test_constant_steering_moves_the_rear_axle_on_a_circle(steer) -> None:
    robot = BicycleRobot(CFG, RobotState(0.0, 0.0, 0.0, v_mps=4.0, steer_rad=steer))
    radius = CFG.wheelbase_m / math.tan(steer)  # signed: positive turns left
    half = 0.5 * CFG.wheelbase_m
    centre = np.array([-half, radius])  # rear axle starts at (-L/2, 0) heading +x
    for _ in range(50):
        s = robot.step(0.0, steer, 0.1)
        rear = np.array([s.x_m - half * math.cos(s.yaw_rad), s.y_m - half * math.sin(s.yaw_rad)])
        # Exact arc integration: only float rounding accumulates.
        assert np.linalg.norm(rear - centre) == pytest.approx(abs(radius), abs=1e-9)


def test_odometry_velocity_matches_the_finite_difference_of_the_pose() -> None:
    robot = BicycleRobot(CFG, RobotState(0.0, 0.0, 0.4, v_mps=5.0, steer_rad=0.3))
    odom = robot.odometry()
    dt = 1e-4
    after = robot.step(0.0, 0.3, dt)
    world_v = np.array([after.x_m, after.y_m]) / dt
    c, s = math.cos(0.4), math.sin(0.4)
    body_v = np.array([c * world_v[0] + s * world_v[1], -s * world_v[0] + c * world_v[1]])
    # First-order finite difference over 0.1 ms: error ~ yaw_rate * dt * v < 1e-3 m/s.
    np.testing.assert_allclose(body_v, odom.linear_mps, atol=1e-3)
    assert (after.yaw_rad - 0.4) / dt == pytest.approx(odom.yaw_rate_radps, rel=1e-6)


def test_frames_chain_base_lidar_and_camera_optical() -> None:
    robot = BicycleRobot(CFG, RobotState(10.0, -3.0, math.pi / 2))
    T_lidar = robot.T_world_lidar()
    np.testing.assert_allclose(T_lidar[:3, 3], [10.0, -3.0, CFG.lidar_z_m], atol=EXACT)
    np.testing.assert_allclose(robot.T_world_base() @ robot.T_base_lidar(), T_lidar, atol=EXACT)
    T_opt = robot.T_world_camera_optical()
    # Optical z looks forward (world +y here), pitched down by camera_pitch_rad; x right (+x world).
    forward = np.array([0.0, math.cos(CFG.camera_pitch_rad), -math.sin(CFG.camera_pitch_rad)])
    np.testing.assert_allclose(T_opt[:3, 2], forward, atol=EXACT)
    np.testing.assert_allclose(T_opt[:3, 0], [1.0, 0.0, 0.0], atol=EXACT)
    np.testing.assert_allclose(
        T_opt[:3, 3], [10.0, -3.0 + CFG.camera_x_m, CFG.camera_z_m], atol=EXACT
    )


def test_footprint_box_and_polytope_describe_the_same_rectangle() -> None:
    robot = BicycleRobot(CFG, RobotState(5.0, 1.0, 0.3))
    box = robot.footprint_box()
    np.testing.assert_allclose(box, [5.0, 1.0, 0.8, 4.5, 1.9, 1.6, 0.3], atol=EXACT)
    G, g = robot.footprint_polytope()
    corners = 0.5 * np.array([[4.5, 1.9], [-4.5, 1.9], [-4.5, -1.9], [4.5, -1.9]])
    assert np.all(g[:, None] + EXACT >= G @ corners.T)
    assert np.all(np.isclose(G @ corners.T, g[:, None]).sum(axis=0) == 2)  # each corner on 2 faces


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"wheelbase_m": 5.0}, "wheelbase_m"),
        ({"max_speed_mps": 0.0}, "max_speed_mps"),
        ({"max_steer_rad": math.nan}, "max_steer_rad"),
        ({"lidar_z_m": -1.0}, "lidar_z_m"),
    ],
)
def test_bad_config_raises_robot_error_naming_the_field(kwargs, field) -> None:
    with pytest.raises(RobotError, match=field):
        RobotConfig(**kwargs)


@pytest.mark.parametrize(
    ("accel", "steer", "dt", "field"),
    [
        (math.nan, 0.0, 0.1, "accel_mps2"),
        (0.0, math.inf, 0.1, "steer_cmd_rad"),
        (0.0, 0.0, 0.0, "dt_s"),
    ],
)
def test_bad_commands_raise_robot_error(accel, steer, dt, field) -> None:
    with pytest.raises(RobotError, match=field):
        BicycleRobot().step(accel, steer, dt)


def test_reset_places_the_robot_at_rest_and_keeps_the_odometer() -> None:
    robot = BicycleRobot(CFG, RobotState(0.0, 0.0, 0.0, v_mps=3.0))
    robot.step(0.0, 0.2, 1.0)
    driven = robot.state.odometer_m
    robot.reset(5.0, 6.0, 1.0)
    assert robot.state == RobotState(5.0, 6.0, 1.0, 0.0, 0.0, driven)


def test_nan_state_raises_robot_error() -> None:
    with pytest.raises(RobotError, match="x_m"):
        RobotState(math.nan, 0.0, 0.0)
