"""``croa_planner``: motion-assisted detection (MAD) with the CROA planner (arXiv 2412.18453).

Subscribes ``detections`` (vision_msgs/Detection3DArray in the lidar frame: the detector's, or
the simulator's ground truth), ``odom`` (nav_msgs/Odometry in ``odom``, composed with the
static ``map -> odom`` of ``/tf_static``: REP 105),
``map/obstacles`` (latched Detection3DArray of the static map in ``map``) and
``target_request`` (latched geometry_msgs/PoseStamped in ``map``: where to look; a new request
restarts the loop) and, with ``lidar_evidence``, ``points`` (sensor_msgs/PointCloud2 in the
lidar frame: the scans the detections come from). Publishes ``croa/path`` (nav_msgs/Path in
``map``), ``croa/viewpoint`` (PoseStamped: the lidar at the end of the path), ``croa/markers``
(MarkerArray: obstacle prisms, the target estimate, rays from the viewpoint to the target,
green if free, red if blocked) and ``/diagnostics`` (DiagnosticArray, status
``croa_planner``: MAD decision, plan status and message, occlusion now and predicted, plan
time).

Event-driven, no timers (replays are deterministic). Per detections message:

1. Boxes lidar -> map: ``T_map_lidar = T_map_base(latest odometry) @ T_base_lidar(lidar_x_m,
   lidar_z_m)``.
2. Perceived world (planning/croa/world_model.py): the vehicles are tracked over frames
   (identities, velocities); the target is the track associated with the request (the vehicle
   nearest the estimate within ``association_radius_m``; first estimate: a ``target_*_m``
   prior box at the requested pose) and its detection score in this message is the MAD
   confidence (missing: None).
3. Known obstacles: the static map plus the other tracks within ``obstacle_radius_m``, moving
   ones with their predicted motion, plus (``lidar_evidence``, when the scan with the
   detections' stamp has arrived) cells of lidar points between the robot and the target that
   neither the map nor a track explains: an occluder the detector misses (a truck scored below
   its threshold) still hides the target, as in ``robomr bench croa``.
4. At most every ``replan_period_s`` of node time, a MAD cycle. Its occlusion input is the
   planner's exact occlusion of the estimate from the current lidar against the known
   obstacles (the node never sees ground truth). PLAN: plan here, in the callback, and publish
   the path (a fallback result too, with a warning); DONE: publish an empty path once (the
   simulator stops on it) and wait for a new request. Between cycles the robot keeps
   following the current path.

Malformed input (NaN boxes, wrong frames, detections before odometry or a request) is logged
and skipped. The cvxpy program is compiled in ``__init__`` (about a second), not in a callback.
"""

from __future__ import annotations

import bisect
import collections
import math
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

import planning.croa as croa
from geometry.transforms import make_transform, pose_to_transform, transform_points
from planning.croa.occlusion import box_face_samples, segments_blocked, stack_prisms
from planning.croa.world_model import PerceivedWorld, WorldModelConfig
from robomr_nodes.api import NodeHandle, RobomrNode
from robomr_nodes.convert.detections import DetectionError, detections_to_boxes
from robomr_nodes.convert.markers import boxes_to_markers, line_list
from robomr_nodes.convert.path import pose_stamped, pose_to_xyyaw, poses_to_path
from robomr_nodes.convert.pointcloud import CloudError, cloud_to_xyz
from robomr_nodes.convert.tf import odometry_in_frame
from robomr_nodes.diagnostics import OK, WARN, diagnostic_array
from robomr_nodes.messages import header, new_message, stamp_ns
from robomr_nodes.params import param
from robomr_nodes.runtime.entry import run_node
from robomr_nodes.tf_static import StaticTransforms

VEHICLES = ("car", "van", "truck", "bus")
PLANNERS = {
    "croa": croa.CroaPlanner,
    "stay": croa.StayPlanner,
    "straight": croa.StraightPlanner,
    "greedy_nbv": croa.GreedyNbvPlanner,
    "obca_only": croa.ObcaOffsetPlanner,
}
_NO_TOP_M = 4.0  # drawn height of prisms without a top (walls of unknown height)
_DETECTIONS = "vision_msgs/msg/Detection3DArray"
_SCANS_KEPT = 50  # 5 s of a 10 Hz lidar: longer than the detector's latency
_ODOM_KEPT = 400  # 20 s of 20 Hz odometry


@dataclass(frozen=True)
class CroaPlannerParams:
    method: str = param("croa", "planner: croa or a baseline", choices=tuple(PLANNERS))
    map_frame: str = param("map", "world frame of paths, the map and target requests")
    lidar_frame: str = param("lidar", "frame of the detections")
    lidar_x_m: float = param(0.0, "lidar ahead of base_link (m)", min_value=-10.0, max_value=10.0)
    lidar_z_m: float = param(1.8, "lidar height above ground (m)", min_value=0.01, max_value=5.0)
    association_radius_m: float = param(3.0, "largest estimate-to-detection distance (m)",
                                         min_value=0.1, max_value=50.0)  # fmt: skip
    obstacle_radius_m: float = param(40.0, "obstacles farther from the robot are ignored (m)",
                                      min_value=5.0, max_value=500.0)  # fmt: skip
    replan_period_s: float = param(1.0, "least node time between MAD cycles (s)",
                                   min_value=0.05, max_value=60.0)  # fmt: skip
    target_length_m: float = param(4.5, "prior target length (m)", min_value=0.1, max_value=30.0)
    target_width_m: float = param(1.9, "prior target width (m)", min_value=0.1, max_value=10.0)
    target_height_m: float = param(1.5, "prior target height (m)", min_value=0.1, max_value=10.0)
    min_confidence: float = param(0.5, "MAD: least detector score", min_value=0.0, max_value=1.0)
    max_occlusion: float = param(0.3, "MAD: largest occlusion", min_value=0.0, max_value=1.0)
    confirm_cycles: int = param(1, "MAD: confident cycles to stop", min_value=1, max_value=100)
    max_cycles: int = param(20, "MAD: plan cycles at most", min_value=1, max_value=10000)
    max_time_s: float = param(60.0, "MAD: time budget (s)", min_value=1.0, max_value=1e6)
    max_distance_m: float = param(50.0, "MAD: driving budget (m)", min_value=1.0, max_value=1e6)
    horizon_steps: int = param(25, "plan steps", min_value=5, max_value=80)
    dt_s: float = param(0.1, "plan step (s)", min_value=0.05, max_value=1.0)
    min_clearance_m: float = param(0.3, "d_min (m)", min_value=0.0, max_value=5.0)
    max_speed_mps: float = param(3.0, "planning speed limit (m/s)", min_value=0.1, max_value=30.0)
    occlusion_weight: float = param(100.0, "occlusion weight", min_value=0.0, max_value=1e4)
    max_iterations: int = param(3, "convex solves per CCP loop (two loops per plan)",
                                min_value=1, max_value=50)  # fmt: skip
    ray_spacing_m: float = param(0.5, "marker rays: target sample spacing (m)", min_value=0.1,
                                 max_value=5.0)  # fmt: skip
    lidar_evidence: bool = param(
        True, "lidar points nothing explains between robot and target become occluders"
    )


def planner_config(p: CroaPlannerParams) -> croa.CroaConfig:
    """The planner settings of the parameters (CroaConfig validates the combination)."""
    robot = croa.RobotModel(lidar_x_m=p.lidar_x_m, lidar_z_m=p.lidar_z_m,
                            max_speed_mps=p.max_speed_mps)  # fmt: skip
    return croa.CroaConfig(horizon_steps=p.horizon_steps, dt_s=p.dt_s, robot=robot,
                           min_clearance_m=p.min_clearance_m,
                           weights=croa.CostWeights(occlusion=p.occlusion_weight),
                           scp=croa.ScpConfig(max_iterations=p.max_iterations))  # fmt: skip


def lidar_pose(x_m: float, y_m: float, yaw_rad: float, robot: croa.RobotModel) -> np.ndarray:
    """T_map_lidar [4, 4] of base_link at (x, y, yaw) with the robot's lidar mount (no tilt)."""
    T_base_lidar = make_transform(np.eye(3), np.array([robot.lidar_x_m, 0.0, robot.lidar_z_m]))
    return pose_to_transform(x_m, y_m, 0.0, yaw_rad) @ T_base_lidar


def boxes_to_map(boxes: np.ndarray, T_map_lidar: np.ndarray) -> np.ndarray:
    """Boxes [K, 7] of a z-up lidar frame in the map: centres transformed, yaw rotated."""
    out = np.array(boxes, dtype=np.float64).reshape(-1, 7)
    out[:, :3] = transform_points(T_map_lidar, out[:, :3])
    out[:, 6] += math.atan2(T_map_lidar[1, 0], T_map_lidar[0, 0])
    return out


def steer_from_odometry(v_mps: float, yaw_rate_radps: float, robot: croa.RobotModel) -> float:
    """Front wheel angle of a bicycle turning at yaw_rate (yaw' = v tan(steer) / L), clipped."""
    if abs(v_mps) < 0.1:  # (nearly) standing: the yaw rate says nothing about the wheels
        return 0.0
    steer = math.atan(robot.wheelbase_m * yaw_rate_radps / v_mps)
    return float(np.clip(steer, -robot.max_steer_rad, robot.max_steer_rad))


def prism_outlines(obstacles: tuple[croa.Polytope, ...]) -> np.ndarray:  # [E, 2, 3]
    """Edges of the obstacle prisms: bottom and top rings and the vertical edges."""
    edges = [np.zeros((0, 2, 3))]
    for o in obstacles:
        n = len(o.vertices)
        top = o.z_max_m if math.isfinite(o.z_max_m) else _NO_TOP_M
        lo, hi = (np.hstack([o.vertices, np.full((n, 1), z)]) for z in (o.z_min_m, top))
        edges += [np.stack([r, np.roll(r, -1, axis=0)], axis=1) for r in (lo, hi)]
        edges.append(np.stack([lo, hi], axis=1))
    return np.concatenate(edges)


def occlusion_rays(origin: np.ndarray, obs: croa.PlanObservation, spacing_m: float
                   ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Segments [S, 2, 3] from origin [3] to the target's facing samples: free, blocked."""
    points, normals, _, centres = box_face_samples(obs.target_box, spacing_m)
    points = points[np.einsum("sd,sd->s", normals, origin - centres) > 0.0]  # [S, 3]
    blocked = segments_blocked(origin[None], points, *stack_prisms(obs.obstacles))[0]  # [S]
    rays = np.stack([np.broadcast_to(origin, points.shape), points], axis=1)
    return rays[~blocked], rays[blocked]


class CroaPlannerNode(RobomrNode):
    NAME = "croa_planner"

    def __init__(self, handle: NodeHandle) -> None:
        super().__init__(handle)
        p = self.params = handle.declare_params(CroaPlannerParams)
        self.config = planner_config(p)
        self.planner = PLANNERS[p.method](self.config)
        mad = {f.name: getattr(p, f.name) for f in fields(croa.MadConfig)}  # same names
        self.mad = croa.MadController(croa.MadConfig(**mad))
        # One plan on a small scene, so that cvxpy compiles now and not in a callback.
        car = [0.75, 4.5, 1.9, 1.5, 0.0]
        self.planner.plan(croa.PlanObservation.from_boxes(
            0, croa.RobotState(0.0, 0.0, 0.0), np.array([12.0, 0.0, *car]),
            np.array([[6.0, 1.0, *car]])))  # fmt: skip
        self.odom: tuple[float, ...] | None = None  # x, y, yaw, v, yaw rate
        self.static_boxes = np.zeros((0, 7))  # [S, 7] map frame
        self.world: PerceivedWorld | None = None
        self._restart()
        pub = handle.create_publisher
        self._path = pub("nav_msgs/msg/Path", "croa/path")
        self._view = pub("geometry_msgs/msg/PoseStamped", "croa/viewpoint")
        self._markers = pub("visualization_msgs/msg/MarkerArray", "croa/markers")
        self._status = pub("diagnostic_msgs/msg/DiagnosticArray", "/diagnostics")
        self._static = StaticTransforms()
        handle.create_subscription(
            "tf2_msgs/msg/TFMessage", "/tf_static", self._static.update, "latched"
        )
        handle.create_subscription("nav_msgs/msg/Odometry", "odom", self._on_odom)
        handle.create_subscription(_DETECTIONS, "map/obstacles", self._on_map, "latched")
        handle.create_subscription(
            "geometry_msgs/msg/PoseStamped", "target_request", self._on_request, "latched"
        )
        handle.create_subscription(_DETECTIONS, "detections", self._on_detections, depth=1)
        # recent scans by stamp (ns -> xyz [N, 3], lidar frame): detections come out of the
        # detector a few scans after their own, and only their own scan may explain them
        self._scans: collections.OrderedDict[int, np.ndarray] = collections.OrderedDict()
        # poses by stamp: a scan's boxes and points are placed with the pose it was taken at
        # (as a tf2 lookup at the message's stamp), not the latest one
        self._odom_history: collections.deque[tuple[int, float, float, float]] = collections.deque(
            maxlen=_ODOM_KEPT
        )
        if self.params.lidar_evidence:
            handle.create_subscription(  # the sensor's own QoS (best effort), as lidar_detector
                "sensor_msgs/msg/PointCloud2", "points", self._on_points, "sensor_data"
            )

    def _restart(self) -> None:
        self.mad_state: croa.MadState | None = None
        self.plan_state: croa.PlannerState | None = None
        self.last_cycle_ns: int | None = None
        self.done = False

    def _frame_ok(self, msg: Any, expected: str, what: str) -> bool:
        if msg.header.frame_id != expected:
            self.log.warning("skipping %s in frame %r (expected %r)", what, msg.header.frame_id,
                             expected)  # fmt: skip
        return msg.header.frame_id == expected

    # -- inputs -----------------------------------------------------------------------------
    def _on_odom(self, msg: Any) -> None:
        pose = odometry_in_frame(msg, self._static, self.params.map_frame)
        if pose is None:
            self.log.warning("skipping odometry: no %s -> %s transform on /tf_static yet",
                             self.params.map_frame, msg.header.frame_id)  # fmt: skip
            return
        odom = (*pose, float(msg.twist.twist.angular.z))
        if not all(math.isfinite(v) for v in odom):
            self.log.warning("skipping odometry with NaN/Inf: %s", odom)
            return
        self.odom = odom
        self._odom_history.append((stamp_ns(msg.header.stamp), *odom[:3]))

    def _on_map(self, msg: Any) -> None:
        if not self._frame_ok(msg, self.params.map_frame, "static map"):
            return
        try:
            self.static_boxes = detections_to_boxes(msg).boxes
        except DetectionError as err:
            self.log.warning("skipping a malformed static map: %s", err)
            return
        if self.world is not None:
            self.world.set_static(self.static_boxes)

    def _on_request(self, msg: Any) -> None:
        pose = pose_to_xyyaw(msg.pose)
        if not self._frame_ok(msg, self.params.map_frame, "target request"):
            return
        if not all(math.isfinite(v) for v in pose):
            self.log.warning("skipping target request with NaN/Inf pose %s", pose)
            return
        p = self.params
        config = WorldModelConfig(association_radius_m=p.association_radius_m,
                                  obstacle_radius_m=p.obstacle_radius_m,
                                  target_length_m=p.target_length_m,
                                  target_width_m=p.target_width_m,
                                  target_height_m=p.target_height_m)  # fmt: skip
        self.world = PerceivedWorld(self.static_boxes, pose, config)
        self._restart()
        self.log.info("target request at (%.2f, %.2f): MAD loop (re)started", *pose[:2])

    def _pose_at(self, stamp: int) -> tuple[float, float, float]:
        """(x, y, yaw) of the latest odometry not after ``stamp``: the oldest kept when all are
        later, the current odometry when none is kept."""
        history = self._odom_history
        if not history:
            return self.odom[:3]  # type: ignore[index, return-value]
        i = bisect.bisect_right([h[0] for h in history], stamp)
        return history[max(i - 1, 0)][1:]

    def _on_points(self, msg: Any) -> None:
        if not self._frame_ok(msg, self.params.lidar_frame, "points"):
            return
        try:
            xyz = cloud_to_xyz(msg, extra=())
        except CloudError as err:
            self.log.warning("skipping malformed points: %s", err)
            return
        self._scans[stamp_ns(msg.header.stamp)] = xyz[np.isfinite(xyz).all(axis=1)]
        while len(self._scans) > _SCANS_KEPT:
            self._scans.popitem(last=False)

    def _evidence(self, msg: Any, T_map_lidar: np.ndarray) -> dict[str, np.ndarray]:
        """The scan of these detections in the map frame, when it was received (same stamp)."""
        xyz = self._scans.get(stamp_ns(msg.header.stamp))
        if xyz is None:
            return {}
        return {"points": transform_points(T_map_lidar, xyz), "origin": T_map_lidar[:3, 3]}

    def _on_detections(self, msg: Any) -> None:
        if self.odom is None or self.world is None:
            missing = "odometry" if self.odom is None else "target request"
            self.log.warning("skipping detections: no %s yet", missing)
            return
        if self.done or not self._frame_ok(msg, self.params.lidar_frame, "detections"):
            return
        try:
            found = detections_to_boxes(msg)
        except DetectionError as err:
            self.log.warning("skipping malformed detections: %s", err)
            return
        p, (x, y, yaw) = self.params, self._pose_at(stamp_ns(msg.header.stamp))
        vehicle = np.array([label in VEHICLES for label in found.labels], dtype=bool)
        labels = np.array([VEHICLES.index(lb) for lb in found.labels if lb in VEHICLES], dtype=int)
        T_map_lidar = lidar_pose(x, y, yaw, self.config.robot)
        boxes = boxes_to_map(found.boxes[vehicle], T_map_lidar)
        now = self.handle.now_ns()
        try:
            score = self.world.update(now, boxes, found.scores[vehicle], labels,
                                      **self._evidence(msg, T_map_lidar)).score  # fmt: skip
        except ValueError as err:  # TrackingError: e.g. time going backwards after a reset
            self.log.warning("skipping detections: %s", err)
            return
        if self.last_cycle_ns is None or now - self.last_cycle_ns >= p.replan_period_s * 1e9:
            self.last_cycle_ns = now
            self._cycle(now, score)

    # -- one MAD cycle ----------------------------------------------------------------------
    def _cycle(self, now: int, score: float | None) -> None:
        x, y, yaw, v, yaw_rate = self.odom  # type: ignore[misc]
        r = self.config.robot
        v = float(np.clip(v, -r.max_reverse_speed_mps, r.max_speed_mps))  # planning limits
        state = croa.RobotState(x, y, yaw, v, steer_from_odometry(v, yaw_rate, r))
        try:
            obs = self.world.observation(now, state, r)  # type: ignore[union-attr]
        except croa.CroaInputError as err:
            self.log.warning("skipping MAD cycle: %s", err)
            return
        lidar = lidar_pose(x, y, yaw, r)[:3, 3]
        occ = float(croa.exact_occlusion(lidar[None], obs.target_box, obs.obstacles)[0])
        decision, self.mad_state = self.mad.decide(
            croa.MadObservation(now, (x, y), score, occ), self.mad_state
        )
        values: dict[str, Any] = {"action": decision.action.value, "occlusion": occ,
                                  "target_score": -1.0 if score is None else score,
                                  "cycles": self.mad_state.cycles}  # fmt: skip
        hdr = header(now, self.params.map_frame)
        level = OK
        if decision.action is not croa.MadAction.PLAN:
            self.done = True
            self._path.publish(poses_to_path(np.zeros((0, 3)), hdr))
            self.log.info("MAD %s: %s", decision.action.value, decision.reason)
        else:
            result, self.plan_state = self.planner.plan(obs, self.plan_state)
            self._publish_plan(hdr, obs, result)
            values.update(plan_status=result.status.value, plan_message=result.message,
                          predicted_occlusion=result.predicted_occlusion,
                          plan_ms=result.timings.total_ms)  # fmt: skip
            if result.is_fallback:
                level = WARN
                self.log.warning("plan %s: %s", result.status.value, result.message)
        self._status.publish(diagnostic_array(now, self.NAME, values, level, decision.reason))

    def _publish_plan(self, hdr: Any, obs: croa.PlanObservation, result: croa.PlanResult) -> None:
        traj, view = result.trajectory, result.viewpoint_xy_m
        stamps = traj.stamp_ns + np.round(traj.times_s * 1e9).astype(np.int64)
        self._path.publish(poses_to_path(traj.poses, hdr, stamps))
        self._view.publish(pose_stamped(*view, traj.poses[-1, 2], obs.stamp_ns, hdr.frame_id))
        markers = boxes_to_markers(hdr, obs.target_box[None], ["target"], ns="croa/target").markers
        outlines = prism_outlines(obs.obstacles)
        markers.append(line_list(hdr, "croa/obstacles", 0, outlines, (0.6, 0.6, 0.6, 1.0)))
        origin = np.array([*view, self.config.robot.lidar_z_m])
        free, blocked = occlusion_rays(origin, obs, self.params.ray_spacing_m)
        markers.append(line_list(hdr, "croa/rays", 0, free, (0.1, 0.9, 0.1, 0.8), 0.02))
        markers.append(line_list(hdr, "croa/rays", 1, blocked, (0.9, 0.1, 0.1, 0.8), 0.02))
        self._markers.publish(new_message("visualization_msgs/msg/MarkerArray", markers=markers))


def main(args: list[str] | None = None) -> int:
    return run_node(CroaPlannerNode, args)
