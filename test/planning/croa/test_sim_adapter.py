"""The simulator adapter: CROA inputs from sim scenes, true occlusion, detection matching and
the MAD episode driven by the simulated robot."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from planning.croa.mad import MadAction
from planning.croa.occlusion import exact_occlusion
from planning.croa.robot import RobotModel
from planning.croa.sim_adapter import (
    SimAdapterError,
    SimTask,
    detection_error,
    drive,
    match_target,
    planner_robot,
    planner_state,
    run_sim_episode,
)
from planning.croa.types import Polytope, RobotState
from sim import BicycleRobot, Lidar, LidarConfig, PurePursuit, RobotConfig, generate_scene
from sim import RobotState as SimRobotState
from sim.truth import boxes_to_frame


@pytest.fixture(scope="module")
def task() -> SimTask:
    return SimTask.from_scene(generate_scene("occluded-target", 0).static())


def test_task_splits_the_target_from_the_obstacles(task: SimTask) -> None:
    scene = task.scene
    assert np.array_equal(task.target_box, scene.objects[scene.target_index].box)
    assert len(task.obstacle_boxes) == len(scene.obstacle_boxes()[0]) - 1
    assert not any(np.array_equal(b, task.target_box) for b in task.obstacle_boxes)
    obs = task.observation(0, planner_state(task.start(), task.robot))
    assert len(obs.obstacles) == len(task.obstacle_boxes)
    assert task.croa_scene().robot.x_m == scene.ego_start[0]
    assert task.robot == planner_robot(RobotConfig())  # the sim's defaults are CROA's


@pytest.mark.parametrize(
    ("v", "steer", "expected"),
    [(4.0, 0.7, (3.0, 0.6)), (-2.0, -0.7, (-1.5, -0.6)), (1.0, 0.2, (1.0, 0.2))],
)
def test_planner_state_clips_to_the_planning_limits(
    v: float, steer: float, expected: tuple
) -> None:
    # pure pursuit cruises at 4 m/s; the planner plans within [-1.5, 3] m/s and +-0.6 rad
    got = planner_state(SimRobotState(1.0, 2.0, 0.3, v, steer), RobotModel())
    assert (got.x_m, got.y_m, got.yaw_rad, got.v_mps, got.steer_rad) == (1.0, 2.0, 0.3, *expected)


def test_scene_without_target_is_refused(task: SimTask) -> None:
    with pytest.raises(SimAdapterError, match="no target"):
        SimTask.from_scene(replace(task.scene, target_name=None))


@pytest.mark.parametrize("pose", [(25.0, -5.25, 0.0), (30.0, -1.75, 0.3), (28.0, -3.0, 0.5)])
def test_true_occlusion_is_the_planners_exact_occlusion_on_box_scenes(pose: tuple) -> None:
    scene = generate_scene("occluded-target", 0).static()
    boxed = replace(scene, objects=tuple(replace(o, shape="box") for o in scene.objects))
    task = SimTask.from_scene(boxed)
    origin = task.T_world_lidar(SimRobotState(*pose))[:3, 3]
    assert origin[2] == pytest.approx(1.8) and np.allclose(origin[:2], pose[:2])
    above = [
        b for i, b in enumerate(boxed.boxes()) if i != boxed.target_index and b[2] + b[5] / 2 > 0
    ]
    others = [Polytope.from_box(b) for b in above]  # the ground (top at z = 0) blocks nothing
    expected = exact_occlusion(origin[None], task.target_box, others, 0.2)[0]
    # Same samples, weights and blocking rule; the world raycasts float32 meshes and the slab
    # test float64, so only a ray grazing an edge could differ: none does at these poses
    # (measured equal to 1e-15), the tolerance absorbs summation order.
    assert task.measure_occlusion(RobotState(*pose)) == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize(
    ("box", "centre", "yaw"),
    [
        ([1.0, 2.0, 0.5, 4, 2, 1.5, 0.1], 0.0, 0.1),
        ([4.0, 6.0, 0.9, 4, 2, 1.5, math.pi], 5.0, 0.0),  # heading flipped: same box
        ([1.0, 2.0, 0.5, 4, 2, 1.5, -0.2 + math.pi], 0.0, 0.2),
        ([1.0, 2.0, 0.5, 4, 2, 1.5, math.pi / 2], 0.0, math.pi / 2),
    ],
)
def test_detection_error_folds_yaw_modulo_pi(box: list, centre: float, yaw: float) -> None:
    truth = np.array([1.0, 2.0, 0.75, 4.5, 1.9, 1.5, 0.0])
    got = detection_error(np.array(box), truth)
    assert got == pytest.approx((centre, yaw), abs=1e-12)


TRUTH = np.array([20.0, -8.0, 0.75, 4.5, 1.9, 1.5, 0.0])


@pytest.mark.parametrize(
    ("boxes", "scores", "expected"),
    [
        ([[20.4, -8.0, 0.75, 4.5, 1.9, 1.5, 0.0]], [0.9], 0),  # IoU 0.84
        ([[20.0, -8.9, 0.75, 2.0, 1.0, 1.5, 1.0]], [0.9], 0),  # IoU 0.11, centre 0.9 m off
        ([[22.5, -8.0, 0.75, 4.5, 1.9, 1.5, 0.0]], [0.9], None),  # IoU 0.29, centre 2.5 m
        ([[20.0, -8.0, 0.75, 4.5, 1.9, 1.5, 0.0]], [0.2], None),  # below the score threshold
        ([[20.2, -8.0, 0.7, 4.5, 1.9, 1.5, 0], [20.1, -8, 0.8, 4.4, 1.9, 1.5, 0]], [0.4, 0.8], 1),
        (np.zeros((0, 7)), [], None),
    ],
)
def test_match_takes_the_best_scored_box_on_the_target(
    boxes: list, scores: list, expected: int | None
) -> None:
    assert match_target(np.array(boxes), np.array(scores), TRUTH, 0.3) == expected


def test_detections_are_matched_in_the_world_frame(task: SimTask) -> None:
    """The true target in the lidar frame (plus a better-scored decoy 8 m away): the adapter
    must bring it back to the world frame and pick it."""
    state = SimRobotState(30.0, -1.75, 0.3)
    T_lidar_world = np.linalg.inv(task.T_world_lidar(state))
    decoy = task.target_box + np.array([8.0, 0, 0, 0, 0, 0, 0])
    lidar_boxes = boxes_to_frame(T_lidar_world, np.stack([decoy, task.target_box]))
    found = task.match_detections(lidar_boxes, np.array([0.95, 0.6]), state, 0.3)
    assert found is not None and found.score == pytest.approx(0.6)
    assert np.allclose(found.box, task.target_box, atol=1e-9)  # float64 round trip
    scan = task.scan(state, Lidar(LidarConfig(beams=16)), None)
    assert task.points_on_target(scan) > 0


def test_clearance_is_negative_inside_the_target(task: SimTask) -> None:
    start = np.array([[*task.scene.ego_start, 0.0]])
    inside = np.array([[task.target_box[0], task.target_box[1], task.target_box[6], 0.0]])
    assert task.min_clearance(start) > 0.3 and task.min_clearance(inside) < 0.0


def test_drive_follows_a_path_and_comes_to_rest() -> None:
    robot = BicycleRobot(state=SimRobotState(0.0, 0.0, 0.0))
    path = np.array([[x, 0.0, 0.0] for x in np.linspace(0.0, 6.0, 13)])
    states = drive(robot, PurePursuit(robot.config), path, 0.05, 10.0)
    # pure pursuit stops within its goal tolerance (0.3 m) plus the braking distance
    assert states[-1, 0] == pytest.approx(6.0, abs=0.6) and abs(states[-1, 3]) < 0.05
    assert np.all(np.abs(states[:, 1]) < 1e-9)  # straight path, no steering


def test_croa_episode_reveals_the_target_without_collision(croa, task: SimTask) -> None:
    result = run_sim_episode(croa, task, max_cycles=5)
    # The scenario guarantees a view >= 0.3 less occluded within 15 m; measured 0.84 -> <= 0.3
    assert result.occlusion[-1] <= result.occlusion[0] - 0.3
    assert result.done is MadAction.DONE_DETECTED and result.min_clearance_m > 0.0
    assert len(result.plan_ms) == len(result.statuses) == len(result.occlusion) - 1
    assert result.path_length_m > 1.0


def test_stay_episode_never_moves(planners, task: SimTask) -> None:
    result = run_sim_episode(planners["stay"], task, max_cycles=2)
    assert result.path_length_m < 1e-6 and np.ptp(result.occlusion) == 0.0
    assert result.done is MadAction.PLAN  # stopped by the cycle budget, still occluded


@pytest.mark.parametrize("kwargs", [{"max_cycles": 0}, {"dt_s": 0.0}, {"settle_s": -1.0}])
def test_bad_episode_settings_are_refused(planners, task: SimTask, kwargs: dict) -> None:
    settings = {"max_cycles": 1, **kwargs}
    with pytest.raises(SimAdapterError, match="out of range"):
        run_sim_episode(planners["stay"], task, **settings)
