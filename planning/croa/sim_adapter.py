"""The simulator (sim/) seen through CROA's interface (arXiv 2412.18453): scenes, the true
occlusion, lidar scans, detections and a MAD episode in which the simulated robot drives.

Why planning imports sim here, and only here: the planner library is geometry in, dataclasses
out, and must run on a real robot without the simulator. Evaluating it in closed loop needs
the simulator's ground truth (occlusion ratio, points on the target) and its robot (kinematic
bicycle with actuator limits, followed by pure pursuit), so this one module translates between
the two; nothing else in planning/ imports sim. It also uses perception (BEV IoU, and the
detector itself, imported only when a model is given): the data path sim -> detector -> CROA.

What it provides (all world = ``map`` frame, docs/conventions.md):

- ``SimTask.from_scene(scene)``: the target box, the obstacle boxes (``scene.obstacle_boxes()``
  minus the target) and the raycasting world; ``croa_scene``/``observation`` give CROA inputs.
- ``measure_occlusion(state)``: ``sim.occlusion_ratio`` of the target from the lidar of a robot
  pose, the definition planning/croa/occlusion.py reproduces for box obstacles.
- ``detect(state, model, lidar, min_score)``: a simulated scan from that pose through the detector
  (``perception.detect``); the target is the highest-scoring box with score >= ``min_score``
  that matches the true target (BEV IoU >= 0.5 or centre error < 1 m): an evaluation oracle
  for the association, which the ROS node does without ground truth. ``detection_error``
  gives the centre distance and the yaw error modulo pi (the detector's heading is ambiguous
  front/back).
- ``run_sim_episode``: the MAD loop of planning/croa/evaluate.py, but each plan is driven by
  ``sim.BicycleRobot`` under ``sim.PurePursuit`` at ``1 / dt_s`` Hz until it comes to rest, and
  the real state starts the next cycle.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from perception.iou import bev_iou
from planning.croa.collision import ObstacleSet, footprints
from planning.croa.evaluate import EpisodeResult, TargetDetection
from planning.croa.kinematics import base_to_rear
from planning.croa.mad import MadAction, MadController, MadObservation, MadState
from planning.croa.robot import RobotModel
from planning.croa.scenes import Scene as CroaScene
from planning.croa.types import Planner, PlannerState, PlanObservation, Polytope, RobotState
from sim import (
    BicycleRobot,
    Lidar,
    LidarScan,
    PurePursuit,
    PurePursuitConfig,
    RobotConfig,
    World,
    occlusion_ratio,
)
from sim import RobotState as SimRobotState
from sim import Scene as SimScene
from sim.truth import boxes_to_frame

MATCH_MIN_IOU = 0.5  # a detection is the target at BEV IoU >= 0.5 (KITTI's car threshold) ...
MATCH_MAX_CENTRE_M = 1.0  # ... or with its centre within 1 m of the true centre
STOPPED_MPS = 0.05  # a driven plan ends once the follower has arrived and |v| is below this
Pose = RobotState | SimRobotState  # anything with x_m, y_m, yaw_rad (base_link in the map)


class SimAdapterError(ValueError):
    """A scene without a target, or bad episode settings (the message names the field)."""


def planner_robot(config: RobotConfig) -> RobotModel:
    """CROA's robot model with the simulator robot's geometry and lidar mount, and the
    planning speed limits of RobotModel (planning/croa/robot.py says why they are lower)."""
    names = ("length_m", "width_m", "wheelbase_m", "lidar_x_m", "lidar_z_m")
    return RobotModel(**{n: float(getattr(config, n)) for n in names})


def planner_state(state: SimRobotState, robot: RobotModel) -> RobotState:
    """The simulator's state as a planner input, speed and steering clipped to the planning
    limits (pure pursuit may cruise faster than the planner plans)."""
    v = float(np.clip(state.v_mps, -robot.max_reverse_speed_mps, robot.max_speed_mps))
    steer = float(np.clip(state.steer_rad, -robot.max_steer_rad, robot.max_steer_rad))
    return RobotState(state.x_m, state.y_m, state.yaw_rad, v, steer)


def detection_error(box: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """BEV centre distance (m) and |yaw error| folded into [0, pi/2] (rad) of a box [7]
    against the true box [7]."""
    centre = float(np.hypot(box[0] - truth[0], box[1] - truth[1]))
    yaw = float(abs((box[6] - truth[6] + 0.5 * math.pi) % math.pi - 0.5 * math.pi))
    return centre, yaw


def match_target(
    boxes: np.ndarray,  # [K, 7] world frame
    scores: np.ndarray,  # [K]
    truth: np.ndarray,  # [7]
    min_score: float,
) -> int | None:
    """Index of the highest-scoring box that is the target (module docstring), or None."""
    if len(boxes) == 0:
        return None
    iou = bev_iou(np.asarray(boxes, dtype=np.float64), np.asarray(truth)[None])[:, 0]  # [K]
    centre = np.hypot(boxes[:, 0] - truth[0], boxes[:, 1] - truth[1])  # [K]
    ok = (np.asarray(scores) >= min_score) & (
        (iou >= MATCH_MIN_IOU) | (centre < MATCH_MAX_CENTRE_M)
    )
    if not np.any(ok):
        return None
    return int(np.flatnonzero(ok)[np.argmax(np.asarray(scores)[ok])])


@dataclass(frozen=True, eq=False)
class SimTask:
    """One simulator scene as a CROA problem.

    Attributes:
        scene: the simulator scene (used as is: call ``scene.static()`` first to drop movers).
        world: its raycasting world.
        target_box: [7] the target's true box.
        obstacle_boxes: [K, 7] what the robot could hit, the target excluded.
        robot_config: the simulated robot. robot: CROA's model of it (``planner_robot``).
    """

    scene: SimScene
    world: World
    target_box: np.ndarray  # [7]
    obstacle_boxes: np.ndarray  # [K, 7]
    robot_config: RobotConfig
    robot: RobotModel

    @classmethod
    def from_scene(cls, scene: SimScene, robot_config: RobotConfig | None = None) -> SimTask:
        """Raises SimAdapterError when the scene has no target."""
        if scene.target_name is None:
            raise SimAdapterError(f"scene {scene.name!r} (seed {scene.seed}) has no target")
        config = robot_config or RobotConfig()
        # the simulator node's collision check uses the same set (sim_node._check_collision)
        boxes, _ = scene.obstacle_boxes(exclude_names=(scene.target_name,))
        target = np.asarray(scene.objects[scene.target_index].box, dtype=np.float64)
        return cls(scene, World(scene), target, boxes, config, planner_robot(config))

    def start(self) -> SimRobotState:
        return SimRobotState(*self.scene.ego_start)

    def croa_scene(self, robot: RobotState | None = None) -> CroaScene:
        """The scene as planning/croa/scenes.Scene (for run_episode and plot_plans)."""
        start = robot or planner_state(self.start(), self.robot)
        name = f"{self.scene.name}-{self.scene.seed}"
        return CroaScene(name, start, self.target_box, self.obstacle_boxes)

    def observation(
        self, stamp_ns: int, robot: RobotState, target_box: np.ndarray | None = None
    ) -> PlanObservation:
        """Planner input: the obstacles and the target estimate (default: the true box)."""
        box = self.target_box if target_box is None else target_box
        return PlanObservation.from_boxes(stamp_ns, robot, box, self.obstacle_boxes)

    def T_world_lidar(self, state: Pose) -> np.ndarray:  # [4, 4]
        pose = SimRobotState(state.x_m, state.y_m, state.yaw_rad)
        return BicycleRobot(self.robot_config, pose).T_world_lidar()

    def measure_occlusion(self, state: Pose, spacing_m: float = 0.2) -> float:
        """True occlusion ratio of the target from the lidar of ``state`` (sim/truth.py)."""
        origin = self.T_world_lidar(state)[:3, 3]
        return occlusion_ratio(self.world, origin, self.target_box, self.scene.target_index,
                               spacing_m)  # fmt: skip

    def scan(self, state: Pose, lidar: Lidar, rng: np.random.Generator | None) -> LidarScan:
        return lidar.scan(self.world, self.T_world_lidar(state), rng)

    def points_on_target(self, scan: LidarScan) -> int:
        """Scan points whose ray hit the target (the paper's point density on the target)."""
        return int(np.count_nonzero(scan.object_index == self.scene.target_index))

    def detect(
        self,
        state: Pose,
        model: Any,
        lidar: Lidar,
        min_score: float,
        rng: np.random.Generator | None = None,
    ) -> TargetDetection | None:
        """A scan from ``state`` through the detector: ``detect_in_scan(scan(state))``."""
        return self.detect_in_scan(self.scan(state, lidar, rng), state, model, min_score)

    def detect_in_scan(
        self, scan: LidarScan, state: Pose, model: Any, min_score: float
    ) -> TargetDetection | None:
        """The detector (a loaded ``perception`` model) on a scan taken at ``state``; the
        matched target box in the world frame, or None."""
        from perception.detect import detect  # imports torch: only when a model is used

        (found,) = detect(model, [scan.points])
        return self.match_detections(found.boxes, found.scores, state, min_score)

    def match_detections(
        self,
        lidar_boxes: np.ndarray,  # [K, 7] in the lidar frame at ``state``
        scores: np.ndarray,  # [K]
        state: Pose,
        min_score: float,
    ) -> TargetDetection | None:
        """The detection that is the target (see :func:`match_target`), in the world frame."""
        boxes = boxes_to_frame(self.T_world_lidar(state), lidar_boxes)  # [K, 7] world
        k = match_target(boxes, scores, self.target_box, min_score)
        return None if k is None else TargetDetection(boxes[k], float(scores[k]))

    def min_clearance(self, states: np.ndarray) -> float:
        """Least distance (m) of the footprints of base_link states [N, 4] to every obstacle
        box and the target, exact below 1 m; < 0 means a collision. Cylinders and ellipsoids
        count as their boxes (conservative)."""
        boxes = np.vstack([self.obstacle_boxes, self.target_box[None]])
        obstacles = ObstacleSet([Polytope.from_box(b) for b in boxes], 4)
        rear = base_to_rear(np.asarray(states, dtype=np.float64)[:, :4], self.robot)
        return float(np.min(obstacles.signed_distances(footprints(rear, self.robot), 1.0)[0]))


def drive(
    robot: BicycleRobot,
    follower: PurePursuit,
    poses: np.ndarray,  # [N, 3] x, y, yaw
    dt_s: float,
    max_time_s: float,
) -> np.ndarray:  # [M, 4] x, y, yaw, v after each step
    """Follows a path until the follower has arrived and the robot is at rest, or max_time_s."""
    follower.set_path(poses)
    out = []
    for _ in range(max(1, math.ceil(max_time_s / dt_s))):
        cmd = follower.command(robot.state)
        s = robot.step(cmd.accel_mps2, cmd.steer_rad, dt_s)
        out.append((s.x_m, s.y_m, s.yaw_rad, s.v_mps))
        if cmd.done and abs(s.v_mps) < STOPPED_MPS:
            break
    return np.array(out)


def run_sim_episode(
    planner: Planner,
    task: SimTask,
    max_cycles: int,
    mad: MadController | None = None,
    detect: Callable[[SimRobotState], TargetDetection | None] | None = None,
    follower: PurePursuitConfig | None = None,
    dt_s: float = 0.05,
    settle_s: float = 3.0,
) -> EpisodeResult:
    """The MAD loop (planning/croa/evaluate.py) with the simulator's robot: measure the true
    occlusion, detect (default: the true box with score 1 - occlusion), decide, plan on the
    task's obstacles and the detected box (the true box as prior when missed), then drive the
    plan (``drive``, at most its duration plus ``settle_s``). ``plan_ms`` is each plan call's
    wall time; ``min_clearance_m`` is exact over every driven step.

    Raises:
        SimAdapterError: max_cycles < 1, dt_s outside (0, 1] or settle_s < 0.
    """
    if max_cycles < 1 or not 0.0 < dt_s <= 1.0 or settle_s < 0.0:
        raise SimAdapterError(f"max_cycles={max_cycles} (>= 1), dt_s={dt_s} (in (0, 1]), "
                              f"settle_s={settle_s} (>= 0): out of range")  # fmt: skip
    mad = mad or MadController()
    robot = BicycleRobot(task.robot_config, task.start())
    pursuit = PurePursuit(task.robot_config, follower)
    stamp_ns = 0
    plan_state: PlannerState | None = None
    mad_state: MadState | None = None
    occ: list[float] = []
    decisions: list[str] = []
    statuses: list[str] = []
    plan_ms: list[float] = []
    s0 = robot.state
    driven = [np.array([[s0.x_m, s0.y_m, s0.yaw_rad, s0.v_mps]])]
    action = MadAction.DONE_BUDGET
    while True:
        occ.append(task.measure_occlusion(robot.state))
        found = detect(robot.state) if detect else TargetDetection(task.target_box, 1 - occ[-1])
        score = None if found is None else found.score
        xy = (robot.state.x_m, robot.state.y_m)
        decision, mad_state = mad.decide(MadObservation(stamp_ns, xy, score, occ[-1]), mad_state)
        decisions.append(decision.reason)
        action = decision.action
        if action != MadAction.PLAN or len(statuses) == max_cycles:
            break
        box = None if found is None else found.box
        request = task.observation(stamp_ns, planner_state(robot.state, task.robot), box)
        result, plan_state = planner.plan(request, plan_state)
        statuses.append(result.status.value)
        plan_ms.append(result.timings.total_ms)
        traj = result.trajectory
        states = drive(robot, pursuit, traj.poses, dt_s, float(traj.times_s[-1]) + settle_s)
        driven.append(states)
        stamp_ns += round(len(states) * dt_s * 1e9)
    executed = np.vstack(driven)  # [N, 4]
    return EpisodeResult(
        planner.name, f"{task.scene.name}-{task.scene.seed}", np.array(occ), tuple(decisions),
        tuple(statuses), np.array(plan_ms), executed,
        float(np.sum(np.linalg.norm(np.diff(executed[:, :2], axis=0), axis=1))),
        task.min_clearance(executed), action,
    )  # fmt: skip
