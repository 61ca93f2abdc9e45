"""The trajectory tracker follows a planner-style timed trajectory (forward Euler bicycle, the
planner's model) on the simulator's bicycle (exact arcs, steering-rate limit), in time, forward
and in reverse, corrects a start offset, stops at the end, refuses bad input and gives up when
pushed off."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim.pursuit import PurePursuit, PurePursuitConfig, PursuitError
from sim.robot import BicycleRobot, RobotConfig, RobotState
from sim.trajectory_tracker import TrackerConfig, TrajectoryTracker

DT_S = 0.05  # the simulator's control step
PLAN_DT_S = 0.1  # the planner's step (planning/croa: 25 steps of 0.1 s)


def euler_plan(start: RobotState, controls: np.ndarray, config: RobotConfig) -> np.ndarray:
    """base_link states [T + 1, 4] of the forward-Euler rear-axle bicycle under ``controls``."""
    half = 0.5 * config.wheelbase_m
    x = start.x_m - half * math.cos(start.yaw_rad)
    y = start.y_m - half * math.sin(start.yaw_rad)
    yaw, v = start.yaw_rad, start.v_mps
    out = []
    for a, steer in [*controls, (0.0, 0.0)]:
        out.append([x + half * math.cos(yaw), y + half * math.sin(yaw), yaw, v])
        x, y = x + PLAN_DT_S * v * math.cos(yaw), y + PLAN_DT_S * v * math.sin(yaw)
        yaw, v = yaw + PLAN_DT_S * v * math.tan(steer) / config.wheelbase_m, v + PLAN_DT_S * a
    return np.array(out)


def swerve(steps: int = 25, sign: float = 1.0) -> np.ndarray:
    """Accelerate, steer one way then the other within the steering-rate limit, brake to rest."""
    t = np.arange(steps) * PLAN_DT_S
    accel = np.where(t < 1.0, 2.0, np.where(t >= 1.5, -2.0, 0.0))
    steer = 0.35 * np.sin(2 * math.pi * t / (steps * PLAN_DT_S))
    controls = np.column_stack([sign * accel, steer])
    return controls


def drive(
    start: RobotState,
    controls: np.ndarray,
    robot_start: RobotState | None = None,
    extra_s: float = 3.0,
) -> tuple[np.ndarray, np.ndarray, list[float], bool, bool]:
    config = RobotConfig()
    plan = euler_plan(start, controls, config)
    times = PLAN_DT_S * np.arange(len(plan))
    tracker = TrajectoryTracker(config)
    tracker.set_trajectory(times, plan, controls)
    robot = BicycleRobot(config, robot_start or start)
    errors, done, aborted = [], False, False
    for k in range(int((times[-1] + extra_s) / DT_S)):
        cmd = tracker.command(robot.state, k * DT_S)
        errors.append(tracker.last_error_m)
        done, aborted = cmd.done, cmd.aborted
        if done and abs(robot.state.v_mps) < 0.05:
            break
        robot.step(cmd.accel_mps2, cmd.steer_rad, DT_S)
    s = robot.state
    return plan, np.array([s.x_m, s.y_m, s.yaw_rad, s.v_mps]), errors, done, aborted


@pytest.mark.parametrize("sign", [1.0, -1.0], ids=["forward", "reverse"])
def test_a_feasible_plan_is_followed_in_time_to_a_stop(sign: float) -> None:
    controls = swerve(sign=sign)
    if sign < 0:  # the reverse speed limit is 2 m/s: accelerate for less
        controls[:, 0] *= 0.5
    plan, end, errors, done, aborted = drive(RobotState(0.0, 0.0, 0.3), controls)
    assert done and not aborted
    assert max(errors) < 0.1  # the whole way, in time (not only the path's geometry)
    assert np.hypot(*(end[:2] - plan[-1, :2])) < 0.1
    assert abs(end[3]) < 0.05
    assert np.hypot(*(plan[-1, :2] - plan[0, :2])) > 1.0  # it did move


def test_a_start_off_the_plan_is_corrected() -> None:
    controls = np.column_stack([np.r_[np.full(10, 2.0), np.zeros(20), np.full(10, -2.0)],
                                np.zeros(40)])  # fmt: skip
    _, _, errors, done, aborted = drive(
        RobotState(0.0, 0.0, 0.0), controls, RobotState(0.0, 0.3, 0.0)
    )
    assert done and not aborted
    assert errors[0] > 0.29
    # on the plan while it moves; a non-holonomic robot slowing to rest has little authority
    # left over its lateral error, so the stop is within the tolerance, not on the end pose
    assert min(errors) < 0.05 and errors[-1] < 0.5 * errors[0]


def test_it_tracks_closer_than_pure_pursuit_of_the_same_path() -> None:
    """The reason the CROA benchmark drives plans with it: pure pursuit's metres of look-ahead
    cut a short swerve's corners."""
    config = RobotConfig()
    start = RobotState(0.0, 0.0, 0.0)
    controls = swerve()
    plan = euler_plan(start, controls, config)
    follower = PurePursuit(config, PurePursuitConfig(target_speed_mps=config.max_speed_mps))
    follower.set_path(plan[:, :3])
    robot = BicycleRobot(config, start)
    worst = 0.0
    for _ in range(200):
        cmd = follower.command(robot.state)
        if cmd.done and abs(robot.state.v_mps) < 0.05:
            break
        robot.step(cmd.accel_mps2, cmd.steer_rad, DT_S)
        p = np.array([robot.state.x_m, robot.state.y_m])
        worst = max(worst, float(np.min(np.linalg.norm(plan[:, :2] - p, axis=1))))
    _, _, errors, _, _ = drive(start, controls)
    assert max(errors) < 0.5 * worst


def test_pushed_far_off_it_gives_up_and_brakes() -> None:
    controls = np.column_stack([np.full(20, 1.0), np.zeros(20)])
    _, _, errors, done, aborted = drive(
        RobotState(0.0, 0.0, 0.0, 2.0), controls, RobotState(0.0, 2.0, 0.0, 2.0)
    )
    assert aborted and done
    assert errors[0] > TrackerConfig().max_deviation_m


def test_bad_input_is_refused() -> None:
    tracker = TrajectoryTracker(RobotConfig())
    with pytest.raises(PursuitError, match="no trajectory"):
        tracker.command(RobotState(0.0, 0.0, 0.0), 0.0)
    states = np.zeros((3, 4))
    with pytest.raises(PursuitError, match="controls"):
        tracker.set_trajectory(np.array([0.0, 0.1, 0.2]), states, np.zeros((3, 2)))
    with pytest.raises(PursuitError, match="increase"):
        tracker.set_trajectory(np.array([0.0, 0.1, 0.1]), states, np.zeros((2, 2)))
    bad = states.copy()
    bad[1, 0] = np.nan
    with pytest.raises(PursuitError, match="NaN"):
        tracker.set_trajectory(np.array([0.0, 0.1, 0.2]), bad, np.zeros((2, 2)))
    tracker.set_trajectory(np.array([0.0, 0.1, 0.2]), states, np.zeros((2, 2)))
    with pytest.raises(PursuitError, match="finite"):
        tracker.command(RobotState(0.0, 0.0, 0.0), math.nan)
    with pytest.raises(PursuitError, match="k_speed_per_s"):
        TrackerConfig(k_speed_per_s=0.0)
