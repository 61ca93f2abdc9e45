"""Pure pursuit converges on straight and curved paths and stops at the end."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim.pursuit import PurePursuit, PurePursuitConfig, PursuitError
from sim.robot import BicycleRobot, RobotConfig, RobotState

DT_S = 0.05


def drive(path: np.ndarray, start: RobotState, steps: int = 2000) -> tuple[list[np.ndarray], bool]:
    robot = BicycleRobot(RobotConfig(), start)
    follower = PurePursuit(robot.config, PurePursuitConfig(target_speed_mps=4.0))
    follower.set_path(path)
    trail = []
    for _ in range(steps):
        cmd = follower.command(robot.state)
        if cmd.done and abs(robot.state.v_mps) < 0.05:
            return trail, True
        robot.step(cmd.accel_mps2, cmd.steer_rad, DT_S)
        trail.append(np.array([robot.state.x_m, robot.state.y_m]))
    return trail, False


def distance_to_polyline(p: np.ndarray, path: np.ndarray) -> float:
    a, b = path[:-1], path[1:]
    t = np.clip(np.sum((p - a) * (b - a), axis=1) / np.sum((b - a) ** 2, axis=1), 0.0, 1.0)
    return float(np.min(np.linalg.norm(a + t[:, None] * (b - a) - p, axis=1)))


@pytest.mark.parametrize("offset_m", [0.0, 1.0, -1.5])
def test_straight_path_is_acquired_and_followed_to_a_stop(offset_m) -> None:
    path = np.column_stack([np.linspace(0.0, 40.0, 81), np.zeros(81)])
    trail, arrived = drive(path, RobotState(0.0, offset_m, 0.0))
    assert arrived
    # After 20 m the lateral offset has decayed (look-ahead 4 m: time constant about 1 s).
    assert max(abs(p[1]) for p in trail if p[0] > 20.0) < 0.05
    # Stops on the goal: it brakes from inside the goal tolerance.
    assert np.linalg.norm(trail[-1] - path[-1]) < PurePursuitConfig().goal_tolerance_m


@pytest.mark.parametrize("turn", [1.0, -1.0])
def test_curved_path_is_tracked_within_tolerance(turn) -> None:
    radius = 20.0
    theta = np.linspace(0.0, math.pi / 2, 120)
    path = np.column_stack([radius * np.sin(theta), turn * radius * (1.0 - np.cos(theta))])
    trail, arrived = drive(path, RobotState(0.0, 0.0, 0.0))
    assert arrived
    errors = [distance_to_polyline(p, path) for p in trail]
    # The rear axle's corner cutting is bounded by Ld^2 / (2 R) = 0.4 m; base_link, L/2 ahead
    # of it, swings outward and cuts much less (0.05 m measured): 0.1 m leaves 2x margin.
    assert max(errors) < 0.1
    assert np.linalg.norm(trail[-1] - path[-1]) < PurePursuitConfig().goal_tolerance_m


def test_command_without_path_raises() -> None:
    with pytest.raises(PursuitError, match="set_path"):
        PurePursuit(RobotConfig()).command(RobotState(0.0, 0.0, 0.0))


@pytest.mark.parametrize("path", [np.zeros((0, 2)), np.zeros((3, 4)), np.array([[0.0, np.nan]])])
def test_bad_path_raises(path) -> None:
    with pytest.raises(PursuitError, match="path"):
        PurePursuit(RobotConfig()).set_path(path)


def test_bad_gain_raises_naming_the_field() -> None:
    with pytest.raises(PursuitError, match="lookahead_min_m"):
        PurePursuitConfig(lookahead_min_m=0.0)
