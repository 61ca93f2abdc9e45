"""Baselines in the CROA interface: valid, verified paths and their defining behaviour."""

from __future__ import annotations

import numpy as np
import pytest

from planning.croa.baselines import StraightPlanner, straight_path
from planning.croa.collision import ObstacleSet
from planning.croa.scenes import Scene
from planning.croa.types import PlanObservation, PlanStatus, Polytope, RobotState
from planning.croa.viewpoints import viewpoint_clearance

BASELINES = ("stay", "straight", "greedy_nbv", "obca_only")
SEEDS = (0, 1)  # a subset of conftest's scenes keeps the OBCA baselines' runtime small


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", BASELINES)
def test_baseline_paths_are_valid_and_clear(
    planners, scenes: dict[int, Scene], config, geometry_reference, name: str, seed: int
) -> None:
    scene = scenes[seed]
    result, state = planners[name].plan(scene.observation())
    traj = result.trajectory
    steps = config.horizon_steps
    fresh = (PlanStatus.OK, PlanStatus.ITERATION_LIMIT)  # both verified plans (types.py)
    assert result.method == name and result.status in fresh, result.message
    assert traj.states.shape == (steps + 1, 4) and traj.controls.shape == (steps, 2)
    assert np.all(np.isfinite(traj.states))
    assert np.allclose(np.diff(traj.times_s), config.dt_s)
    assert traj.states[0] == pytest.approx(scene.robot.as_array(), abs=1e-9)
    assert np.all(traj.states[:, 3] <= config.robot.max_speed_mps + 1e-9)
    assert np.all(traj.states[:, 3] >= -config.robot.max_reverse_speed_mps - 1e-9)
    ref = geometry_reference
    obstacles = [ref.box_polygon(b) for b in [*scene.obstacle_boxes, scene.target_box]]
    gaps = [min(ref.polygon_gap(ref.footprint_polygon(s, config), o) for o in obstacles)
            for s in traj.states[1:]]  # fmt: skip
    assert min(gaps) >= config.min_clearance_m - 1e-9
    assert 0.0 <= result.predicted_occlusion <= 1.0 and state.last_safe is traj


def test_stay_does_not_move_a_robot_at_rest(planners, scenes: dict[int, Scene]) -> None:
    scene = scenes[SEEDS[0]]
    robot = RobotState(scene.robot.x_m, scene.robot.y_m, scene.robot.yaw_rad, 0.0)
    result, _ = planners["stay"].plan(scene.observation(robot=robot))
    assert np.allclose(result.trajectory.states[:, :3], result.trajectory.states[0, :3])


def test_straight_stops_short_of_an_obstacle_on_the_line(config) -> None:
    # Wall face at x = 5.25: the front bumper (base + 2.25) may reach 4.95, i.e. base 2.7,
    # well inside the ~3.9 m a stop-to-stop move covers in 2.5 s.
    wall = Polytope.from_box(np.array([5.5, 0.0, 1.5, 0.5, 6.0, 3.0, 0.0]))
    obs = PlanObservation(0, RobotState(0.0, 0.0, 0.0, 0.0),
                          np.array([20.0, 0.0, 0.75, 4.5, 1.9, 1.5, 0.0]), (wall,))  # fmt: skip
    rear, _, blocked = straight_path(obs, np.array([16.0, 0.0]), ObstacleSet([wall], 4), config)
    base = rear[:, 0] + 0.5 * config.robot.wheelbase_m  # heading stays 0
    front = base + 0.5 * config.robot.length_m
    assert blocked is not None
    assert front.max() <= 5.25 - config.min_clearance_m + 1e-9  # stopped d_min short
    assert np.all(np.diff(base) >= -1e-12)  # never backs up


def test_straight_picks_the_nearest_clear_viewpoint(config) -> None:
    target = np.array([10.0, 0.0, 0.75, 4.5, 1.9, 1.5, 0.0])
    obs = PlanObservation.from_boxes(0, RobotState(0.0, 0.0, 0.0, 0.0), target, np.zeros((0, 7)))
    result, _ = StraightPlanner(config).plan(obs)
    # Without obstacles every candidate is clear; the nearest lies on the inner ring toward
    # the robot, i.e. behind the target at x = 10 - (radius of the inner ring).
    inner = 0.5 * np.hypot(4.5, 1.9) + 0.5 * config.robot.width_m + config.viewpoints.ring_gaps_m[0]
    goal = np.array([10.0 - inner, 0.0])
    heading_to_goal = result.trajectory.states[-1, :2] - result.trajectory.states[0, :2]
    assert abs(np.arctan2(heading_to_goal[1], heading_to_goal[0])) < 1e-9
    assert np.linalg.norm(result.trajectory.states[-1, :2]) <= np.linalg.norm(goal) + 1e-9


def test_obca_only_heads_for_the_side_of_the_target(planners, config) -> None:
    target = np.array([9.0, 3.5, 0.75, 4.5, 1.9, 1.5, 0.0])
    obs = PlanObservation.from_boxes(0, RobotState(0.0, 0.0, 0.0, 0.0), target, np.zeros((0, 7)))
    result, _ = planners["obca_only"].plan(obs)
    goal_y = 3.5 - (0.5 * 1.9 + 0.5 * config.robot.width_m + config.baselines.offset_gap_m)
    # Plans end at rest: 2.5 s from rest cover at most ~3.9 m (accelerate and brake at
    # 2.5 m/s^2, 3 m/s top speed), so it closes a good part, not all, of the ~9 m.
    start_gap = np.hypot(9.0, goal_y)  # the lidar starts at base_link, the origin
    end_gap = np.linalg.norm(result.viewpoint_xy_m - np.array([9.0, goal_y]))
    assert result.status is PlanStatus.OK and end_gap < start_gap - 2.5


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("need_m", [0.3, 0.5])
def test_viewpoint_clearance_with_a_threshold_keeps_the_same_viewpoints(
    scenes: dict[int, Scene], config, seed: int, need_m: float
) -> None:
    """Exact only below the threshold (a lower bound above it): the same views pass, and the
    distances below it are the exact ones."""
    obs = scenes[seed].observation()
    obstacles = ObstacleSet([*obs.obstacles, Polytope.from_box(obs.target_box)], config.max_faces)
    views = np.random.default_rng(seed).uniform(-15.0, 15.0, (300, 2)) + obs.target_box[:2]
    headings = np.random.default_rng(seed + 1).uniform(-np.pi, np.pi, 300)
    exact = viewpoint_clearance(views, headings, obstacles, config)
    cheap = viewpoint_clearance(views, headings, obstacles, config, need_m)
    assert np.array_equal(exact >= need_m, cheap >= need_m)
    below = exact < need_m
    assert below.any() and np.array_equal(cheap[below], exact[below])
