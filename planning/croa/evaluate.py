"""Runs one planning method on one scene through the MAD loop (CROA, arXiv 2412.18453) with the
true occlusion supplied by the caller, so the simulator can be plugged in later.

``run_episode`` repeats: measure the true occlusion at the robot's pose (``measure_occlusion``),
get a detection (``detect``; by default a proxy: the true box with score ``1 - occlusion``), let
the MadController decide, and on PLAN call ``planner.plan`` on the scene's obstacle boxes and
the detected box (or the scene's target box as the prior when nothing is detected), then
execute the first ``execute_steps`` states of the path with ideal tracking (the robot lands on
the planned states). The episode ends when the controller says DONE or after ``max_cycles``.

What the lead wires for the benchmark: ``measure_occlusion`` = the simulator's occlusion ratio
(sim/truth.py) of the target from the lidar pose of a state; ``detect`` = run the detector on the
simulated scan at that pose; and, instead of ideal tracking, drive the simulator's robot along
``result.trajectory`` (then use its real state for the next cycle).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from planning.croa.collision import ObstacleSet, footprints
from planning.croa.kinematics import base_to_rear, lidar_xy
from planning.croa.mad import MadAction, MadController, MadObservation, MadState
from planning.croa.occlusion import exact_occlusion
from planning.croa.robot import RobotModel
from planning.croa.scenes import Scene
from planning.croa.types import Planner, PlannerState, PlanObservation, Polytope, RobotState


class EvaluateError(ValueError):
    """Bad episode settings or a measurement outside [0, 1]."""


@dataclass(frozen=True, eq=False)
class TargetDetection:
    """A detection of the target: box [7] (world frame) and confidence in [0, 1]."""

    box: np.ndarray  # [7]
    score: float


MeasureOcclusion = Callable[[RobotState], float]
Detect = Callable[[RobotState], TargetDetection | None]


@dataclass(frozen=True, eq=False)
class EpisodeResult:
    """What one method did on one scene.

    Attributes:
        method: planner name. scene: scene name.
        occlusion: [C + 1] true occlusion at the start and after each executed plan.
        decisions: MAD reason of each cycle. statuses: PlanStatus value of each plan.
        plan_ms: [C] wall time of each plan call. states: [N, 4] executed base_link states.
        path_length_m: distance driven. min_clearance_m: least distance of the executed
        footprints to the scene's boxes (exact; < 0 means a collision). done: final action.
    """

    method: str
    scene: str
    occlusion: np.ndarray
    decisions: tuple[str, ...]
    statuses: tuple[str, ...]
    plan_ms: np.ndarray
    states: np.ndarray
    path_length_m: float
    min_clearance_m: float
    done: MadAction


def run_episode(
    planner: Planner,
    scene: Scene,
    measure_occlusion: MeasureOcclusion,
    detect: Detect | None = None,
    mad: MadController | None = None,
    execute_steps: int | None = None,
    max_cycles: int = 10,
    robot_model: RobotModel | None = None,
) -> EpisodeResult:
    """The loop of the module docstring; ``robot_model`` (default RobotModel()) is the
    footprint used to measure the executed clearance.

    Raises:
        EvaluateError: execute_steps < 1, max_cycles < 1, or an occlusion outside [0, 1].
    """
    if (execute_steps is not None and execute_steps < 1) or max_cycles < 1:
        raise EvaluateError(
            f"execute_steps={execute_steps} and max_cycles={max_cycles}: must be >= 1"
        )
    mad = mad or MadController()
    robot, stamp_ns = scene.robot, 0
    plan_state: PlannerState | None = None
    mad_state: MadState | None = None
    occ, decisions, statuses, plan_ms = [], [], [], []
    states = [robot.as_array()]
    action = MadAction.DONE_BUDGET
    for _ in range(max_cycles + 1):
        occ.append(_measure(measure_occlusion, robot))
        found = detect(robot) if detect else TargetDetection(scene.target_box, 1.0 - occ[-1])
        obs = MadObservation(
            stamp_ns, (robot.x_m, robot.y_m), None if found is None else found.score, occ[-1]
        )
        decision, mad_state = mad.decide(obs, mad_state)
        decisions.append(decision.reason)
        action = decision.action
        if action != MadAction.PLAN or len(statuses) == max_cycles:
            break
        box = scene.target_box if found is None else found.box
        request = PlanObservation.from_boxes(stamp_ns, robot, box, scene.obstacle_boxes)
        result, plan_state = planner.plan(request, plan_state)
        statuses.append(result.status.value)
        plan_ms.append(result.timings.total_ms)
        traj = result.trajectory
        k = min(execute_steps or len(traj.controls), len(traj.controls))
        states.extend(traj.states[1 : k + 1])
        x, y, yaw, v = traj.states[k]
        robot = RobotState(float(x), float(y), float(yaw), float(v), float(traj.controls[k - 1, 1]))
        stamp_ns = traj.stamp_ns + round(float(traj.times_s[k]) * 1e9)
    executed = np.array(states)
    return EpisodeResult(
        planner.name,
        scene.name,
        np.array(occ),
        tuple(decisions),
        tuple(statuses),
        np.array(plan_ms),
        executed,
        float(np.sum(np.linalg.norm(np.diff(executed[:, :2], axis=0), axis=1))),
        _clearance(scene, executed, robot_model or RobotModel()),
        action,
    )


def _measure(measure_occlusion: MeasureOcclusion, robot: RobotState) -> float:
    value = float(measure_occlusion(robot))
    if not 0.0 <= value <= 1.0:
        raise EvaluateError(f"measure_occlusion returned {value}: must be in [0, 1]")
    return value


def _clearance(scene: Scene, states: np.ndarray, robot: RobotModel) -> float:
    boxes = [*scene.obstacle_boxes, scene.target_box]
    obstacles = ObstacleSet([Polytope.from_box(b) for b in boxes], 4)
    rear = base_to_rear(states, robot)
    return float(np.min(obstacles.signed_distances(footprints(rear, robot))[0]))


def geometric_occlusion(
    scene: Scene, robot: RobotModel | None = None, spacing_m: float = 0.2
) -> MeasureOcclusion:
    """A stand-in for the simulator: the exact occlusion (occlusion.py, the same definition as
    sim/truth.py) of the scene's target by its boxes, from the lidar of a robot state."""
    model = robot or RobotModel()
    obstacles = [Polytope.from_box(b) for b in scene.obstacle_boxes]

    def measure(state: RobotState) -> float:
        rear = base_to_rear(state.as_array(), model)
        origin = np.array([[*lidar_xy(rear, model), model.lidar_z_m]])
        return float(exact_occlusion(origin, scene.target_box, obstacles, spacing_m)[0])

    return measure
