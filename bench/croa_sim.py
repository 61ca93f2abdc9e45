"""CROA (arXiv 2412.18453) in the simulator's closed loop, with perception in the loop: the
adapter between the pure planning library and the simulator, used by ``robomr bench croa``.

One episode of one method on one scene (``run_episode``), all in the map frame:

- The world moves: the scene's moving vehicles drive in their lanes (``sim.Traffic``: they
  wait while the robot stands in their lane ahead of them) and the raycasting world is rebuilt
  when they moved.
- Perception, every ``perception_period_s`` of sim time (while driving and at rest): a lidar
  scan from the robot's pose, the detector on it (``perception.detect`` with a loaded model:
  any checkpoint ``perception.checkpoint.load_detector`` reads), its boxes and the scan's
  points to the map frame, then ``PerceivedWorld.update`` (tracking, target association with
  the request, lidar evidence of occluders the detector missed).
- Planning, whenever the robot has come to rest after a plan (and at the start): the planner
  gets ``PerceivedWorld.observation`` (the static map, the other tracks with their predicted
  motion, the target estimate), and the follower (``EpisodeSettings.follower``: by default
  ``sim.trajectory_tracker.TrajectoryTracker``, the plan's timed trajectory with its controls
  fed forward; or ``sim.PurePursuit`` of its path) drives ``sim.BicycleRobot`` at 1 /
  ``sim_dt_s`` Hz until it has arrived and stopped (at most the plan's duration plus
  ``settle_s``); after every perception frame on the way a guard checks the rest of the plan on
  the updated perceived world and brakes when it is no longer clear (``guard``).
- No early stop: the episode makes ``plans`` plans. After the b-th plan the robot is at rest and
  the record ``after[b]`` holds the true occlusion there, the target estimate's centre error and
  whether the target was detected with the confidence threshold in that frame (the budget
  sweep reads these prefixes: the methods do not know their budget). The MAD early stop is the
  first frame whose target score reaches ``confidence``: a copy of the robot and the traffic
  brakes to rest from there and is scored the same way (``mad``).

Ground truth (sim.occlusion_ratio, the target's true box, the true obstacle boxes) only scores:
occlusion, centre error, collisions (exact footprint-box distance < 0 at any step) and points.
The request (where to look) is the target's true position with ``request_noise_m`` of noise.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from bench.croa_contact import describe_contact
from perception.detect import detect
from perception.evaluate import evaluation_threshold
from planning.croa import CroaConfig, CroaPlanner, Planner, PlannerState, RobotModel, RobotState
from planning.croa.collision import ObstacleSet, footprints
from planning.croa.kinematics import base_to_rear
from planning.croa.safety import path_clearance
from planning.croa.types import Polytope, Trajectory
from planning.croa.world_model import PerceivedWorld, WorldModelConfig
from sim import (
    BicycleRobot,
    DriveCommand,
    Lidar,
    PurePursuit,
    PurePursuitConfig,
    RobotConfig,
    Traffic,
    World,
    occlusion_ratio,
)
from sim import RobotState as SimRobotState
from sim import Scene as SimScene
from sim.materials import CLASSES
from sim.return_motion import ReturnMotion, moving_in_field
from sim.safety_scanner import (
    SafetyScanner,
    arc_poses,
    field_poses,
    in_field,
    stopping_distance_m,
)
from sim.trajectory_tracker import TrajectoryTracker
from sim.truth import boxes_to_frame

STOPPED_MPS = 0.05  # a driven plan ends once the follower has arrived and |v| is below this
GUARD_CLEARANCE_M = 0.1  # the rest of a plan closer than this to a perceived obstacle: brake
FOLLOWERS = ("trajectory", "pursuit")
TRACK_STEPS = 5  # the record keeps the robot position every 5 steps (0.25 s)


@dataclass(frozen=True)
class EpisodeSettings:
    """Closed-loop settings shared by every method (module docstring).

    Attributes:
        plans: plans per episode (the largest budget). perception_period_s: time between
        detector frames (s). sim_dt_s: simulation and control step (s). settle_s: extra time
        to arrive after a plan's duration (s). min_score: detections down to this score are
        fed to the tracker (the detector runs with its own threshold lowered to it: obstacles
        want recall; a vehicle scored 0.3-0.42 is still one to avoid). confidence: target
        score of a confident detection (MAD stop);
        None: the detector's own calibrated threshold (``detector_confidence``).
        sweep: further thresholds whose MAD stops are also recorded (the knob's sweep).
        request_noise_m: standard deviation of the request's position error (m, per axis /
        sqrt 2). guard: brake when a new frame puts a perceived obstacle on the rest of the
        plan being driven (``Episode.guard_clear``). follower: what drives a plan,
        ``"trajectory"`` (``sim.trajectory_tracker``: the plan's controls fed forward and its
        timed poses tracked) or ``"pursuit"`` (``sim.pursuit``: its path's geometry at cruise
        speed, the benchmark's follower until session 7). safety_field: a planar safety
        scanner's protective field stops the robot when a return enters the footprint swept
        while stopping (``sim.safety_scanner``; on raw returns, whatever the detector saw).
        moving_field: with the safety field, also stop when a return moving fast between
        scans is predicted to enter that footprint before the robot could stop
        (``sim.return_motion``: an emergency brake for crossing traffic).
    """

    plans: int = 6
    perception_period_s: float = 0.5
    sim_dt_s: float = 0.05
    settle_s: float = 3.0
    min_score: float = 0.3
    confidence: float | None = None
    sweep: tuple[float, ...] = (0.5, 0.6, 0.7, 0.8)
    request_noise_m: float = 1.0
    guard: bool = True
    follower: str = "trajectory"
    safety_field: bool = True
    moving_field: bool = True

    def __post_init__(self) -> None:
        if self.follower not in FOLLOWERS:
            raise ValueError(f"follower={self.follower!r}: one of {', '.join(FOLLOWERS)}")


def detector_confidence(model: Any) -> float:
    """The score at which the detector reports a box: its ``postprocess.score_threshold``,
    which ``robomr perception threshold`` sets to the validation max-F1 threshold (0.42 for
    the shipped model, precision 0.91 there; models/detector.json). A target detection at or
    above it is as confident as the detector's calibration says anything it reports is; a fixed
    number (0.8 before) is above what a retrained detector ever scores the target."""
    return float(model.config.postprocess.score_threshold)


def planner_robot(config: RobotConfig) -> RobotModel:
    """CROA's robot model with the simulator robot's geometry and lidar mount. The planning
    speed limits stay RobotModel's (below the simulator's physical ones), and every method
    plans forward only (as in every run of this benchmark, so figures compare; the follower
    would back up along a reverse plan, and does so where a goal ends up behind the robot)."""
    names = ("length_m", "width_m", "wheelbase_m", "lidar_x_m", "lidar_z_m")
    return RobotModel(**{n: float(getattr(config, n)) for n in names}, max_reverse_speed_mps=0.0)


def planner_state(state: SimRobotState, robot: RobotModel) -> RobotState:
    """The simulator's state as a planner input, speed and steering clipped to the planning
    limits (pure pursuit may cruise faster than the planner plans)."""
    v = float(np.clip(state.v_mps, -robot.max_reverse_speed_mps, robot.max_speed_mps))
    steer = float(np.clip(state.steer_rad, -robot.max_steer_rad, robot.max_steer_rad))
    return RobotState(state.x_m, state.y_m, state.yaw_rad, v, steer)


def static_map(scene: SimScene) -> np.ndarray:
    """The map a robot would be given: every obstacle box except vehicles [S, 7]."""
    boxes, names = scene.obstacle_boxes()
    keep = [i for i, n in enumerate(names) if scene.objects[scene.index(n)].kind not in CLASSES]
    return boxes[keep]


def static_map_names(scene: SimScene) -> list[str]:
    """The names of ``static_map``'s boxes, in its order."""
    _, names = scene.obstacle_boxes()
    return [n for n in names if scene.objects[scene.index(n)].kind not in CLASSES]


class SimWorld:
    """The moving simulated world: traffic, its raycasting world, ground-truth collisions."""

    def __init__(self, scene: SimScene) -> None:
        if scene.target_name is None:
            raise ValueError(f"scene {scene.name!r} (seed {scene.seed}) has no target")
        self.traffic = Traffic(scene)
        self.scene = scene
        self.target_index = scene.target_index
        self.target_box = np.asarray(scene.objects[self.target_index].box, dtype=np.float64)
        boxes, names = scene.obstacle_boxes()
        moving = {o.name for o in scene.objects if o.speed_mps != 0.0}
        self._static = ObstacleSet([Polytope.from_box(b) for b, n in zip(boxes, names, strict=True)
                                    if n not in moving], 4)  # fmt: skip
        self._obstacle_names = set(names)
        self._world: World | None = None

    def step(self, dt_s: float, robot: BicycleRobot) -> None:
        if self.traffic.has_movers:
            corners = footprints(base_to_rear(robot.state.pose, _ROBOT)[None], _ROBOT)[0]
            self.traffic.step(dt_s, [corners])
            self._world = None

    def copy(self) -> SimWorld:
        """An independent copy (the traffic state is copied; the raycaster is rebuilt)."""
        twin = copy.copy(self)
        twin.traffic, twin._world = copy.deepcopy(self.traffic), None
        return twin

    def world(self) -> World:
        if self._world is None:
            self._world = World(self.traffic.scene())
        return self._world

    def truth(self) -> list[tuple[str, str, float, np.ndarray]]:
        """Every true obstacle now: name, kind, speed (m/s), box [7] (scoring only)."""
        objects = self.traffic.scene().objects if self.traffic.has_movers else self.scene.objects
        return [(o.name, o.kind, o.speed_mps, np.asarray(o.box, dtype=np.float64))
                for o in objects if o.name in self._obstacle_names]  # fmt: skip

    def clearance(self, state: SimRobotState, robot: RobotModel) -> float:
        """Least distance of the robot's footprint to every obstacle (movers now) (m)."""
        foot = footprints(base_to_rear(np.array([state.x_m, state.y_m, state.yaw_rad]),
                                       robot)[None], robot)  # fmt: skip
        sd = [self._static.signed_distances(foot, 1.0)[0].min(initial=np.inf)]
        if self.traffic.has_movers:
            movers = [o.box for o in self.traffic.scene().objects if o.speed_mps != 0.0]
            sd.append(ObstacleSet([Polytope.from_box(b) for b in movers], 4)
                      .signed_distances(foot, 1.0)[0].min(initial=np.inf))  # fmt: skip
        return float(min(sd))


_ROBOT = planner_robot(RobotConfig())  # footprint of the default simulated robot


class Episode:
    """One method on one scene (module docstring); ``run`` returns the JSON-able record."""

    def __init__(self, planner: Planner, scene: SimScene, model: Any, lidar: Lidar, seed: int,
                 settings: EpisodeSettings) -> None:  # fmt: skip
        self.planner, self.model, self.lidar, self.s = planner, model, lidar, settings
        self.detector_threshold = detector_confidence(model)
        self.confidence = (self.detector_threshold if settings.confidence is None
                           else float(settings.confidence))  # fmt: skip
        self.sim = SimWorld(scene)
        self.config = RobotConfig()
        self.model_robot = planner_robot(self.config)
        self.guard = CroaConfig(robot=self.model_robot)  # the guard's footprint and faces
        self.scanner = SafetyScanner()
        self.motion = ReturnMotion()  # velocities of the scanner's returns between scans
        # the follower cruises at the planning speed limit: a plan's timing (what its clearance
        # to moving vehicles depends on) is kept roughly, not at the simulator's 4 m/s default
        self.follower = PurePursuitConfig(target_speed_mps=self.model_robot.max_speed_mps)
        self.robot = BicycleRobot(self.config, SimRobotState(*scene.ego_start))
        self.rng = np.random.default_rng([seed, 7])  # scan noise: the same stream per method
        noise = np.random.default_rng([seed, 11]).normal(0.0, settings.request_noise_m / 2**0.5, 2)
        t = self.sim.target_box
        self.world = PerceivedWorld(static_map(scene), (t[0] + noise[0], t[1] + noise[1], t[6]),
                                    WorldModelConfig())  # fmt: skip
        self.t_s, self.path_m, self.plans, self.min_clear, self.steps = 0.0, 0.0, 0, np.inf, 0
        self.last_frame_s = -np.inf
        self.score: float | None = None
        self.mad: dict[float, dict[str, Any]] = {}  # threshold -> the stop's outcome
        self.forking = True
        self.timing: list[dict[str, float]] = []
        self.frames: list[list[float]] = []  # per frame: t_s, target score (-1: none), points
        self.track = [[0.0, *scene.ego_start[:2]]]  # t_s, x, y every TRACK_STEPS steps
        self.cycles: list[dict[str, Any]] = []
        self.map_names = {str(n) for n in static_map_names(scene)}
        self.observation: Any = None  # the last plan's input and result, for the contact record
        self.plan_start_s, self.result = 0.0, None
        self.contact: dict[str, Any] | None = None  # the first collision (bench/croa_contact.py)

    # -- perception ----------------------------------------------------------------------------
    def frame(self) -> None:
        """Scan, detect, track; the first confident frame forks the MAD stop."""
        T = self.robot.T_world_lidar()
        scan = self.lidar.scan(self.sim.world(), T, self.rng)
        with evaluation_threshold(self.model, min(self.s.min_score, self.detector_threshold)):
            (found,) = detect(self.model, [scan.points])
        keep = found.scores >= self.s.min_score
        boxes = boxes_to_frame(T, found.boxes[keep])
        points = scan.points[:, :3] @ T[:3, :3].T + T[:3, 3]  # map frame
        start, cpu = time.perf_counter(), time.process_time()
        est = self.world.update(round(self.t_s * 1e9), boxes, found.scores[keep],
                                found.labels[keep], points, T[:3, 3])  # fmt: skip
        self.update_ms = 1e3 * (time.perf_counter() - start)
        self.update_cpu_ms = 1e3 * (time.process_time() - cpu)
        self.score, self.estimate = est.score, est.box
        self.points = int(np.count_nonzero(scan.object_index == self.sim.target_index))
        self.last_frame_s = self.t_s
        self.frames.append([round(self.t_s, 3), -1.0 if est.score is None else round(est.score, 4),
                            self.points])  # fmt: skip
        for threshold in (self.confidence, *self.s.sweep):
            if self.forking and threshold not in self.mad and self.confident_at(threshold):
                self.mad[threshold] = self.fork_stop(threshold)

    def confident_at(self, threshold: float) -> bool:
        return self.score is not None and self.score >= threshold

    @property
    def confident(self) -> bool:
        return self.confident_at(self.confidence)

    def outcome(self) -> dict[str, Any]:
        """True occlusion, centre error of the estimate, detection and points, now."""
        origin = self.robot.T_world_lidar()[:3, 3]
        occ = occlusion_ratio(self.sim.world(), origin, self.sim.target_box, self.sim.target_index)
        error = float(np.hypot(*(self.estimate[:2] - self.sim.target_box[:2])))
        return {"occ": occ, "error": error, "detected": self.confident, "points": self.points,
                "path_m": self.path_m, "t_s": self.t_s, "plans": self.plans,
                "collided": self.min_clear < 0.0}  # fmt: skip

    def fork_stop(self, threshold: float) -> dict[str, Any]:
        """MAD early stop now: a copy brakes to rest, takes a frame and is scored (detected:
        the target's score reaches ``threshold`` in that frame)."""
        twin = copy.copy(self)
        twin.robot = copy.deepcopy(self.robot)
        twin.sim = self.sim.copy()
        twin.world = copy.deepcopy(self.world)
        twin.rng = copy.deepcopy(self.rng)
        twin.forking, twin.frames, twin.track = False, [], []
        confident_s = self.t_s
        twin.brake(frames=False)
        twin.frame()
        return twin.outcome() | {"time_s": confident_s,
                                 "detected": twin.confident_at(threshold)}  # fmt: skip

    # -- motion --------------------------------------------------------------------------------
    def advance(self, accel: float, steer: float, frames: bool = True) -> None:
        before = self.robot.state
        self.robot.step(accel, steer, self.s.sim_dt_s)
        self.sim.step(self.s.sim_dt_s, self.robot)
        self.t_s += self.s.sim_dt_s
        s = self.robot.state
        self.path_m += math.hypot(s.x_m - before.x_m, s.y_m - before.y_m)
        clear = self.sim.clearance(s, self.model_robot)
        if clear < 0.0 and self.contact is None and self.forking:
            self.contact = self.describe_contact()
        self.min_clear = min(self.min_clear, clear)
        self.steps += 1
        if self.steps % TRACK_STEPS == 0:
            self.track.append([round(self.t_s, 2), round(s.x_m, 3), round(s.y_m, 3)])
        if frames and self.t_s - self.last_frame_s >= self.s.perception_period_s - 1e-9:
            self.frame()

    def describe_contact(self) -> dict[str, Any]:
        """What was hit and what the planner knew (bench/croa_contact.py)."""
        s, since = self.robot.state, self.t_s - self.plan_start_s
        tracker = self.world.tracker
        tracks = [{"id": t.track_id, "x": round(float(t.box[0]), 2), "y": round(float(t.box[1]), 2),
                   "speed_mps": round(float(np.hypot(*tracker.velocity(t))), 2),
                   "score": round(t.score, 3), "hits": t.hits,
                   "unseen_s": round((self.t_s * 1e9 - t.seen_ns) * 1e-9, 2)}
                  for t in tracker.tracks]  # fmt: skip
        record = describe_contact(np.array([s.x_m, s.y_m, s.yaw_rad]), self.model_robot,
                                  self.sim.truth(), self.map_names, self.observation, since,
                                  tracks)  # fmt: skip
        record |= {"t_s": round(self.t_s, 2), "plan_index": self.plans, "v_mps": round(s.v_mps, 2)}
        if self.result is not None:
            traj = self.result.trajectory
            times, states = np.asarray(traj.times_s), np.asarray(traj.states)
            want = [np.interp(min(since, times[-1]), times, states[:, i]) for i in (0, 1)]
            record["follower_error_m"] = round(math.hypot(s.x_m - want[0], s.y_m - want[1]), 3)
            record["plan_clearance_m"] = round(float(self.result.min_clearance_m), 3)
            record["plan_status"] = self.result.status.value
        return record

    def drive(self, traj: Trajectory) -> None:
        """Follows a plan until arrived and at rest (at most its duration plus settle_s, then
        brakes); a cycle lasts at least one perception period (a plan that stays still lets
        the world, traffic included, move on for that long). After every perception frame on
        the way the guard checks the rest of the plan on the updated perceived world and
        brakes when it is no longer clear (``guard_clear``)."""
        poses, times_s = traj.poses, np.asarray(traj.times_s)
        duration_s = float(times_s[-1])
        start, along = self.t_s, 0
        if self.s.follower == "trajectory":
            tracker = TrajectoryTracker(self.config)
            tracker.set_trajectory(times_s, np.asarray(traj.states), np.asarray(traj.controls))

            def command(state: SimRobotState) -> DriveCommand:
                return tracker.command(state, self.t_s - start)
        else:
            follower = PurePursuit(self.config, self.follower)
            follower.set_path(poses)
            command = follower.command
        scan_every = max(1, round(self.scanner.config.period_s / self.s.sim_dt_s))
        for k in range(max(1, math.ceil((duration_s + self.s.settle_s) / self.s.sim_dt_s))):
            cmd = command(self.robot.state)
            self.advance(cmd.accel_mps2, cmd.steer_rad)
            if cmd.done and abs(self.robot.state.v_mps) < STOPPED_MPS:
                break
            if self.s.guard and self.last_frame_s == self.t_s:
                along, clear = self.guard_clear(poses, times_s, along)
                if not clear:
                    self.cycles[-1]["guard_stop_s"] = round(self.t_s - start, 2)
                    break
            if self.s.safety_field and k % scan_every == scan_every - 1:
                tripped = self.field_stop(poses)
                if tripped:
                    self.cycles[-1][f"{tripped}_stop_s"] = round(self.t_s - start, 2)
                    break
        self.brake()
        a_max, dt = self.config.max_accel_mps2, self.s.sim_dt_s
        while self.t_s - start < self.s.perception_period_s - 1e-9:  # hold still
            hold = float(np.clip(-self.robot.state.v_mps / dt, -a_max, a_max))
            self.advance(hold, self.robot.state.steer_rad)

    def guard_clear(self, poses: np.ndarray, times_s: np.ndarray, along: int) -> tuple[int, bool]:
        """Whether the rest of the plan (from the plan pose nearest the robot, at or after
        ``along``) keeps ``GUARD_CLEARANCE_M`` from what is perceived now; that pose's index."""
        s = self.robot.state
        rest = np.hypot(poses[along:, 0] - s.x_m, poses[along:, 1] - s.y_m)
        along += int(np.argmin(rest))
        obs = self.world.observation(round(self.t_s * 1e9), planner_state(s, self.model_robot),
                                     self.model_robot)  # fmt: skip
        clear = path_clearance(obs, poses[along:], times_s[along:] - times_s[along], self.guard)
        return along, clear >= GUARD_CLEARANCE_M

    def field_stop(self, poses: np.ndarray) -> str | None:
        """``"field"`` when a safety-scanner return lies in the protective field now (the
        footprint swept while stopping, along the present motion and the rest of the plan;
        ``sim.safety_scanner``), ``"moving"`` when a moving return is predicted to enter it
        within the stopping time + ``predict_s`` (``sim.return_motion``; with
        ``moving_field``), else None."""
        s, c = self.robot.state, self.scanner.config
        here = np.array([s.x_m, s.y_m, s.yaw_rad])
        ground = float(self.robot.T_world_lidar()[2, 3]) - self.config.lidar_z_m
        boxes = np.array([box for *_, box in self.sim.truth()]).reshape(-1, 7)
        points = self.scanner.scan(here[:2], ground, boxes)
        stop_m = stopping_distance_m(s.v_mps, self.config.max_accel_mps2, c)
        held = arc_poses(here, s.v_mps, s.steer_rad, self.config.wheelbase_m, stop_m)
        swept = np.vstack([field_poses(poses, here, stop_m), held])
        size = (self.config.length_m, self.config.width_m, c.margin_m)
        # every scan updates the motion (the next one pairs with it), only when it is used
        velocity = self.motion.update(self.t_s, points) if self.s.moving_field else None
        if np.any(in_field(points, swept, *size)):
            return "field"
        if velocity is None:
            return None
        m = self.motion.config
        horizon = c.reaction_s + abs(s.v_mps) / self.config.max_accel_mps2 + m.predict_s
        return "moving" if moving_in_field(points, velocity, swept, *size, horizon,
                                           m.step_s) else None  # fmt: skip

    def brake(self, frames: bool = True) -> None:
        """Full braking, wheels held, until at rest (a plan not finished in time ends here)."""
        a_max, dt = self.config.max_accel_mps2, self.s.sim_dt_s
        while abs(self.robot.state.v_mps) >= STOPPED_MPS:  # to exactly 0, no overshoot
            brake = float(np.clip(-self.robot.state.v_mps / dt, -a_max, a_max))
            self.advance(brake, self.robot.state.steer_rad, frames)

    def run(self) -> dict[str, Any]:
        self.frame()
        after = [self.outcome()]
        state: PlannerState | None = None
        for _ in range(self.s.plans):
            start, cpu = time.perf_counter(), time.process_time()
            obs = self.world.observation(round(self.t_s * 1e9),
                                         planner_state(self.robot.state, self.model_robot),
                                         self.model_robot)  # fmt: skip
            observe_ms = 1e3 * (time.perf_counter() - start)
            cpu_plan = time.process_time()
            result, state = self.planner.plan(obs, state)
            self.observation, self.result, self.plan_start_s = obs, result, self.t_s
            done_cpu = time.process_time()
            if isinstance(self.planner, CroaPlanner):  # the ablation's finer reports: untimed
                result = self.planner.finer_reports(result)
            self.plans += 1
            # wall time is what a robot waits for; CPU time of this process is what the cycle
            # costs when the machine is shared (the benchmark machine is loaded)
            self.timing.append({"update_ms": self.update_ms, "observe_ms": observe_ms,
                                "plan_ms": result.timings.total_ms,
                                "solve_ms": result.timings.solve_ms,
                                "solves": result.timings.num_solves,
                                "cycle_cpu_ms": self.update_cpu_ms
                                + 1e3 * (done_cpu - cpu),
                                "plan_cpu_ms": 1e3 * (done_cpu - cpu_plan)})  # fmt: skip
            self.cycles.append({"status": result.status.value, "message": result.message,
                                "starts": [vars(r) for r in result.starts]})  # fmt: skip
            traj = result.trajectory
            self.drive(traj)
            if self.t_s > self.last_frame_s:  # the decision frame at rest
                self.frame()
            after.append(self.outcome())

        def stop(threshold: float) -> dict[str, Any]:
            if threshold in self.mad:
                return self.mad[threshold] | {"confident": True}
            return after[-1] | {"time_s": None, "confident": False}

        return {"after": after, "mad": stop(self.confidence), "confidence": self.confidence,
                "mad_sweep": {str(t): stop(t) for t in self.s.sweep},
                "timing": self.timing, "cycles": self.cycles, "frames": self.frames,
                "track": self.track, "contact": self.contact,
                "min_clearance_m": float(self.min_clear)}  # fmt: skip
