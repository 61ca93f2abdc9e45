"""Pure pursuit converges on straight and curved paths and stops at the end."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim.pursuit import DriveCommand, PurePursuit, PurePursuitConfig, PursuitError
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


def drive_full(path: np.ndarray, start: RobotState, robot_config: RobotConfig | None = None,
               steps: int = 1200) -> tuple[np.ndarray, list[DriveCommand], bool]:  # fmt: skip
    """Trail of base_link [K, 2], the commands, and whether it came to rest with done set."""
    robot = BicycleRobot(robot_config or RobotConfig(), start)
    follower = PurePursuit(robot.config, PurePursuitConfig(target_speed_mps=3.0))
    follower.set_path(path)
    trail, commands = [np.array([start.x_m, start.y_m])], []
    for _ in range(steps):
        cmd = follower.command(robot.state)
        commands.append(cmd)
        if cmd.done and abs(robot.state.v_mps) < 0.05:
            return np.array(trail), commands, True
        robot.step(cmd.accel_mps2, cmd.steer_rad, DT_S)
        trail.append(np.array([robot.state.x_m, robot.state.y_m]))
    return np.array(trail), commands, False


@pytest.mark.parametrize("lateral_m", [0.0, 0.2, -0.2])
@pytest.mark.parametrize("with_yaw", [True, False])
def test_goal_behind_is_reached_by_backing_up_never_by_driving_away(lateral_m, with_yaw) -> None:
    # The runaway this guards against: a plan that backs up 3 m, the goal straight behind;
    # the forward-only follower had steer 0 and accelerated away from it (17 m into a house).
    n = 31
    path = np.column_stack([np.linspace(0.0, -3.0, n), np.linspace(0.0, lateral_m, n)])
    if with_yaw:
        path = np.column_stack([path, np.zeros(n)])  # facing +x while moving -x: reverse
    trail, commands, arrived = drive_full(path, RobotState(0.0, 0.0, 0.0))
    assert arrived and not commands[-1].aborted
    assert np.linalg.norm(trail[-1] - path[-1, :2]) < PurePursuitConfig().goal_tolerance_m
    # Never ahead of the start (0.05 m: the first steps' steering settle) and never more than
    # the lateral offset plus 0.2 m (the trailing centre's swing) off the straight line back.
    assert trail[:, 0].max() < 0.05
    assert np.abs(trail[:, 1]).max() < abs(lateral_m) + 0.2
    assert min(float(np.sign(c.accel_mps2)) for c in commands[:5]) < 0  # backs up at once


def test_forward_only_robot_stops_instead_of_driving_away_from_a_goal_behind() -> None:
    path = np.array([[-3.0, 0.0]])
    config = RobotConfig(max_reverse_speed_mps=0.0)
    trail, commands, arrived = drive_full(path, RobotState(0.0, 0.0, 0.0, v_mps=0.5), config)
    assert arrived and commands[-1].aborted and commands[-1].done
    # It braked from 0.5 m/s: at most v^2 / (2 a) = 0.05 m plus a step, not metres away.
    assert np.linalg.norm(trail[-1]) < 0.1


def test_a_forward_u_turn_is_driven_forward_not_cut_in_reverse() -> None:
    radius = 6.0  # above the minimum turning radius L / tan(0.6) = 3.9 m
    theta = np.linspace(-math.pi / 2, math.pi / 2, 150)
    path = np.column_stack([radius * np.cos(theta), radius * (1.0 + np.sin(theta))])
    trail, commands, arrived = drive_full(path, RobotState(0.0, 0.0, 0.0))
    assert arrived and not commands[-1].aborted
    assert all(c.accel_mps2 > -5.0 for c in commands)
    # The trail goes around the turn (beyond x = 5 m) and ends on the goal.
    assert trail[:, 0].max() > 5.0
    assert np.linalg.norm(trail[-1] - path[-1]) < PurePursuitConfig().goal_tolerance_m


def test_a_cusp_path_stops_at_the_cusp_then_reverses_to_the_goal() -> None:
    out = np.column_stack([np.linspace(0.0, 4.0, 21), np.zeros(21), np.zeros(21)])
    back = np.column_stack([np.linspace(4.0, 1.0, 16), np.zeros(16), np.zeros(16)])
    path = np.vstack([out, back[1:]])
    trail, commands, arrived = drive_full(path, RobotState(0.0, 0.0, 0.0))
    assert arrived and not commands[-1].aborted
    # It went out to the cusp (within the goal tolerance, not beyond its braking margin) ...
    assert 3.7 < trail[:, 0].max() < 4.4
    # ... and came back to the end.
    assert np.linalg.norm(trail[-1] - path[-1, :2]) < PurePursuitConfig().goal_tolerance_m


def test_a_goal_it_cannot_reach_along_the_path_stops_it_within_the_deviation_bound() -> None:
    # A goal 1 m beside the robot: forward pursuit would circle around it (radius >= 3.9 m)
    # through whatever is there; the follower gives up once 1.5 m farther than it started.
    trail, commands, arrived = drive_full(np.array([[0.0, 1.0]]), RobotState(0.0, 0.0, 0.0))
    assert arrived and commands[-1].aborted
    distances = np.linalg.norm(trail - np.array([0.0, 1.0]), axis=1)
    # 1 m at the start + 1.5 m allowed + braking from at most 3 m/s (1.8 m at 2.5 m/s^2).
    assert distances.max() < 1.0 + 1.5 + 1.8


@pytest.mark.parametrize("field", ["reverse_speed_mps", "max_deviation_m"])
def test_new_settings_are_validated(field) -> None:
    with pytest.raises(PursuitError, match=field):
        PurePursuitConfig(**{field: 0.0})
