"""bench/croa_sim.py: the closed loop of bench croa with perception in the loop (moving traffic,
the detector on simulated scans, the perceived world), scored against ground truth."""

from __future__ import annotations

from dataclasses import replace
from functools import cache

import numpy as np
import pytest

from bench.croa_sim import (
    Episode,
    EpisodeSettings,
    SimWorld,
    detector_confidence,
    planner_robot,
    planner_state,
    static_map,
)
from perception.checkpoint import load_detector, read_model_file
from perception.config import DEFAULT_MODEL_PATH
from planning.croa import CroaConfig, CroaPlanner, RobotModel, StayPlanner
from sim import BicycleRobot, Lidar, LidarConfig, RobotConfig, generate_scene
from sim import RobotState as SimRobotState
from sim.materials import CLASSES

needs_model = pytest.mark.skipif(not DEFAULT_MODEL_PATH.is_file(),
                                 reason=f"no detector model at {DEFAULT_MODEL_PATH}")  # fmt: skip


@cache
def _model():
    return load_detector(DEFAULT_MODEL_PATH, "cpu")


@pytest.mark.parametrize(
    ("v", "steer", "expected"),
    [(4.0, 0.7, (3.0, 0.6)), (-2.0, -0.7, (0.0, -0.6)), (1.0, 0.2, (1.0, 0.2))],
)
def test_planner_state_clips_to_the_planning_limits(
    v: float, steer: float, expected: tuple
) -> None:
    # pure pursuit cruises at 4 m/s and never reverses; the plans stay within [0, 3] m/s
    got = planner_state(SimRobotState(1.0, 2.0, 0.3, v, steer), planner_robot(RobotConfig()))
    assert (got.x_m, got.y_m, got.yaw_rad, got.v_mps, got.steer_rad) == (1.0, 2.0, 0.3, *expected)
    assert planner_robot(RobotConfig()).max_reverse_speed_mps == 0.0


def test_the_static_map_holds_no_vehicles() -> None:
    scene = generate_scene("urban-clutter", 1)
    boxes = static_map(scene)
    vehicles = np.array([o.box for o in scene.objects if o.kind in CLASSES])
    assert len(boxes) > 0
    assert not any(np.any(np.all(np.isclose(v, boxes), axis=1)) for v in vehicles)


def test_traffic_moves_and_copies_are_independent() -> None:
    world = SimWorld(generate_scene("crossing-traffic", 0))
    before = world.traffic.scene().boxes()
    twin = world.copy()
    robot = BicycleRobot(RobotConfig(), SimRobotState(0.0, -30.0, 0.0))  # off the street
    world.step(1.0, robot)
    assert not np.allclose(world.traffic.scene().boxes(), before)
    assert np.allclose(twin.traffic.scene().boxes(), before)


def test_scene_without_target_is_refused() -> None:
    with pytest.raises(ValueError, match="no target"):
        SimWorld(replace(generate_scene("occluded-target", 0), target_name=None))


@needs_model
@pytest.mark.parametrize("method", ["croa", "stay"])
def test_an_episode_plans_drives_perceives_and_is_scored(method: str) -> None:
    config = CroaConfig(robot=planner_robot(RobotConfig()))
    planner = CroaPlanner(config) if method == "croa" else StayPlanner(config)
    settings = EpisodeSettings(plans=2, perception_period_s=1.0)
    ep = Episode(planner, generate_scene("occluded-target", 0), _model(),
                 Lidar(LidarConfig(beams=16)), 0, settings).run()  # fmt: skip
    after = ep["after"]
    assert len(after) == 3 and [a["plans"] for a in after] == [0, 1, 2]
    assert all(0.0 <= a["occ"] <= 1.0 and not a["collided"] for a in after)
    assert ep["min_clearance_m"] > 0.0
    assert len(ep["timing"]) == 2 and len(ep["frames"]) >= 3
    moved = after[-1]["path_m"]
    assert moved == 0.0 if method == "stay" else moved > 1.0
    assert set(ep["mad"]) >= {"plans", "path_m", "occ", "error", "time_s", "confident"}
    assert ep["confidence"] == detector_confidence(_model()) and ep["contact"] is None
    if method == "croa":
        starts = ep["cycles"][0]["starts"]
        assert {s["name"] for s in starts} == {"straight", "sampled"}
        assert sum(s["chosen"] for s in starts) == 1


@needs_model
def test_a_confident_frame_forks_the_mad_stop_without_touching_the_episode() -> None:
    """With a threshold every detection reaches, the MAD stop is at the first frame: no plan,
    the robot at the start; the budget episode still makes its plans. (32 beams, the robot's
    lidar: 16 put only 5 points on this target, which the shipped detector does not detect.)"""
    settings = EpisodeSettings(plans=1, perception_period_s=1.0, confidence=0.0, sweep=())
    config = CroaConfig(robot=planner_robot(RobotConfig()))
    ep = Episode(StayPlanner(config), generate_scene("occluded-target", 0), _model(),
                 Lidar(LidarConfig(beams=32)), 0, settings).run()  # fmt: skip
    assert ep["mad"]["confident"] and ep["mad"]["plans"] == 0 and ep["mad"]["time_s"] == 0.0
    assert ep["after"][-1]["plans"] == 1


def test_planner_robot_keeps_the_simulators_geometry() -> None:
    robot = planner_robot(RobotConfig())
    assert robot == RobotModel(
        length_m=RobotConfig().length_m,
        width_m=RobotConfig().width_m,
        wheelbase_m=RobotConfig().wheelbase_m,
        lidar_x_m=RobotConfig().lidar_x_m,
        lidar_z_m=RobotConfig().lidar_z_m,
        max_reverse_speed_mps=0.0,
    )


@needs_model
def test_the_mad_threshold_defaults_to_the_detectors_calibrated_threshold() -> None:
    """Not a hand-picked number: the score threshold the model file stores (max F1 on its
    validation data, with the record of how it was chosen)."""
    stored = read_model_file(DEFAULT_MODEL_PATH)["metadata"]["score_threshold"]
    assert detector_confidence(_model()) == pytest.approx(stored["value"])
    assert EpisodeSettings().confidence is None
    assert _model().config.postprocess.score_threshold == pytest.approx(stored["value"])


def _first_frame(scene: str, seed: int, **settings) -> Episode:
    config = CroaConfig(robot=planner_robot(RobotConfig()))
    lidar = Lidar(LidarConfig(beams=32))
    ep = Episode(StayPlanner(config), generate_scene(scene, seed), _model(), lidar, seed,
                 EpisodeSettings(plans=1, **settings))  # fmt: skip
    ep.frame()
    return ep


@needs_model
def test_the_tracker_gets_vehicles_scored_below_the_detectors_threshold() -> None:
    """Obstacles want recall: on occluded-target 0's first scan a vehicle scored 0.34 (below
    the detector's 0.42) is tracked with min_score 0.3, and the detector's own threshold alone
    would hide it. The model's threshold is restored afterwards."""
    threshold = detector_confidence(_model())
    low = _first_frame("occluded-target", 0, min_score=0.3)
    high = _first_frame("occluded-target", 0, min_score=threshold)
    assert any(0.3 <= t.score < threshold for t in low.world.tracker.tracks)
    assert all(t.score >= threshold for t in high.world.tracker.tracks)
    assert len(low.world.tracker.tracks) > len(high.world.tracker.tracks)
    assert _model().config.postprocess.score_threshold == threshold


@needs_model
def test_the_guard_stops_a_plan_into_a_perceived_obstacle() -> None:
    """The executive's guard reads the perceived world after a frame: a path from the robot
    into the target (an obstacle) is not clear, standing still is."""
    ep = _first_frame("occluded-target", 0)
    s, target = ep.robot.state, ep.world.estimate
    line = np.linspace([s.x_m, s.y_m], target[:2], 20)
    yaw = np.full(20, np.arctan2(*(target[:2] - [s.x_m, s.y_m])[::-1]))
    times = np.linspace(0.0, 8.0, 20)
    assert ep.guard_clear(np.column_stack([line, yaw]), times, 0) == (0, False)
    still = np.tile([s.x_m, s.y_m, s.yaw_rad], (20, 1))
    assert ep.guard_clear(still, times, 0) == (0, True)


@needs_model
@pytest.mark.parametrize("follower", ["trajectory", "pursuit"])
def test_a_plan_is_driven_to_its_end_by_either_follower(follower: str) -> None:
    """The timed-trajectory tracker (the default) ends a plan where it ends; pure pursuit (the
    earlier follower) within its goal tolerance. (The guard and the brake for moving returns
    are off: here the guard brakes this plan after 1 s, when a new frame shows an obstacle near
    its end, and the brake when a vehicle comes down the lane.)"""
    config = CroaConfig(robot=planner_robot(RobotConfig()))
    settings = EpisodeSettings(plans=1, perception_period_s=1.0, follower=follower, guard=False,
                               moving_field=False)  # fmt: skip
    episode = Episode(CroaPlanner(config), generate_scene("occluded-target", 0), _model(),
                      Lidar(LidarConfig(beams=16)), 0, settings)  # fmt: skip
    record = episode.run()
    end = episode.result.trajectory.states[-1]
    s = episode.robot.state
    assert record["after"][1]["path_m"] > 1.0 and abs(s.v_mps) < 0.05
    assert np.hypot(s.x_m - end[0], s.y_m - end[1]) < (0.1 if follower == "trajectory" else 0.5)


def test_an_unknown_follower_is_refused() -> None:
    with pytest.raises(ValueError, match="follower"):
        EpisodeSettings(follower="teleport")


@needs_model
def test_the_safety_field_stops_on_a_true_obstacle_within_the_stopping_distance() -> None:
    """The protective field reads the safety scanner's returns (sim.safety_scanner), not the
    perceived world: a robot on the street 4.4 m from the parked target's centre, heading
    across at it, must stop at 2.5 m/s (the field reaches 2.35 m + the 1.6 m stopping distance
    past base_link; the target's side is 0.9 m off its centre), not at rest, and not when
    heading away from it."""
    ep = _first_frame("occluded-target", 0)
    t = ep.sim.target_box
    across = t[6] + np.pi / 2  # from the target towards the street (+y here)
    base = t[:2] + 4.4 * np.array([np.cos(across), np.sin(across)])
    for yaw, v, stops in [(across + np.pi, 2.5, True), (across + np.pi, 0.0, False),
                          (across, 2.5, False)]:  # fmt: skip
        heading = np.array([np.cos(yaw), np.sin(yaw)])
        ep.robot.state = SimRobotState(*base, yaw, v, 0.0)
        plan = np.column_stack([base + np.outer(np.arange(0.0, 4.0, 0.25), heading),
                                np.full(16, yaw)])  # fmt: skip
        assert (ep.field_stop(plan) == "field") is stops, (yaw, v)
    assert ep.s.safety_field and EpisodeSettings(safety_field=False).safety_field is False


@needs_model
@pytest.mark.parametrize(
    "toward, moving_field, expect",
    [(True, True, [None, "moving"]), (False, True, [None, None]), (True, False, [None, None])],
)
def test_the_robot_brakes_for_a_car_about_to_cross_its_stopping_path(
    toward: bool, moving_field: bool, expect: list
) -> None:  # fmt: skip
    """A car at 8.6 m/s whose lane crosses the robot's path 1.5 m ahead, its near end 6 m off
    the path: nothing is in the protective field yet, but the car's returns, moving
    between two scans, are predicted into it before a robot at 2 m/s stops (the second scan
    calls "moving"); not when the car drives away, nor without the moving field."""
    ep = _first_frame("occluded-target", 0)
    ep.s = replace(ep.s, moving_field=moving_field)
    s = ep.robot.state
    ep.robot.state = SimRobotState(s.x_m, s.y_m, 0.0, 2.0, 0.0)
    plan = np.column_stack([s.x_m + np.arange(0.0, 4.0, 0.25), np.full(16, s.y_m),
                            np.zeros(16)])  # fmt: skip
    step = -0.86 if toward else 0.86  # 8.6 m/s x 0.1 s, along -y (towards the path) or +y
    got = []
    for k in range(2):
        y = s.y_m + 6.0 + 2.25 + step * k  # its near end 6 m off the path
        car = np.array([s.x_m + 1.5, y, 0.75, 4.5, 1.8, 1.5, np.pi / 2])
        ep.sim.truth = lambda car=car: [("car_x", "car", 8.6, car)]  # type: ignore[method-assign]
        got.append(ep.field_stop(plan))
        ep.t_s += 0.1
    assert got == expect
