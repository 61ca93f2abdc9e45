"""What CROA's planner perceives (arXiv 2412.18453: learning-based detection and optimization-based
planning run interleaved): the static map plus the detector's vehicles tracked over frames, with
their predicted motion, and the target found by association with the request. No ground truth
enters here; the benchmark uses it only to score.

Per detection frame, ``PerceivedWorld.update(stamp, boxes, scores, labels)`` (boxes in the map
frame):

1. Track (perception/tracking.py): identities, filtered boxes and velocities.
2. Target. Until a target track exists, the detection nearest the current estimate (first: the
   request's pose with the prior size) within ``association_radius_m`` starts it; afterwards the
   target is that track (re-associated the same way if the track is dropped). The frame's
   target confidence is the score of the target track's detection in this frame, None when it
   was not detected (the MAD stop decision reads it).
3. ``observation(stamp, robot)``: the planner's input. Obstacles: the static map and every
   other track within ``obstacle_radius_m``, tracks predicted to ``stamp``; moving tracks keep
   their velocity, and one that has the robot's footprint in its lane corridor ahead
   (``|across| <= w / 2 + yield_margin_m``) is predicted to stop ``yield_gap_m`` short of it,
   after ``max(0, along - yield_gap_m) / speed`` seconds (drivers do not run into a robot
   standing in their lane; without this every plan in a traffic lane would be refused).
   Target: the target track's box, or the prior.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from perception.tracking import BoxTracker, TrackerConfig
from planning.croa.polygons import rectangle_vertices, signed_distance
from planning.croa.robot import RobotModel
from planning.croa.types import CroaInputError, PlanObservation, Polytope, RobotState
from planning.croa.validation import check_number


@dataclass(frozen=True)
class WorldModelConfig:
    """Settings of :class:`PerceivedWorld` (module docstring).

    Attributes:
        association_radius_m: largest distance from the estimate to a detection that becomes
            the target (m), in (0, 50].
        obstacle_radius_m: tracks and map boxes farther from the robot are left out (m),
            in [5, 500].
        target_length_m, target_width_m, target_height_m: the prior box at the request (m),
            each in (0, 30].
        yield_gap_m: gap a moving vehicle is predicted to keep behind the robot (m), [0, 50].
        yield_margin_m: lateral margin of a vehicle's lane corridor (m), in [0, 5].
        tracker: the tracker's settings.
    """

    association_radius_m: float = 3.0
    obstacle_radius_m: float = 40.0
    target_length_m: float = 4.5
    target_width_m: float = 1.9
    target_height_m: float = 1.5
    yield_gap_m: float = 5.0
    yield_margin_m: float = 0.5
    tracker: TrackerConfig = field(default_factory=TrackerConfig)

    def __post_init__(self) -> None:
        for name, lo, hi in (("association_radius_m", 1e-3, 50.0),
                             ("obstacle_radius_m", 5.0, 500.0), ("target_length_m", 1e-3, 30.0),
                             ("target_width_m", 1e-3, 30.0), ("target_height_m", 1e-3, 30.0),
                             ("yield_gap_m", 0.0, 50.0), ("yield_margin_m", 0.0, 5.0)):  # fmt: skip
            check_number(self, name, lo, hi, CroaInputError)


@dataclass(frozen=True)
class TargetEstimate:
    """The target after a frame: box [7] (map), this frame's detection score (None: not
    detected in this frame) and its track id (None: no track yet)."""

    box: np.ndarray
    score: float | None
    track_id: int | None


class PerceivedWorld:
    """The planner's view of the world, updated per detection frame (module docstring).

    Args:
        static_boxes: [S, 7] the static map in the map frame (buildings, poles, trees, ...).
        request_xy_yaw: where to look: (x, y, yaw) in the map frame.
    """

    def __init__(
        self,
        static_boxes: np.ndarray,
        request_xy_yaw: tuple[float, float, float],
        config: WorldModelConfig | None = None,
    ) -> None:
        self.config = c = config or WorldModelConfig()
        self.set_static(static_boxes)
        x, y, yaw = (float(v) for v in request_xy_yaw)
        if not all(math.isfinite(v) for v in (x, y, yaw)):
            raise CroaInputError(f"request_xy_yaw={request_xy_yaw!r}: must be finite")
        h = c.target_height_m
        self.estimate = np.array([x, y, 0.5 * h, c.target_length_m, c.target_width_m, h, yaw])
        self.tracker = BoxTracker(c.tracker)
        self.target_id: int | None = None

    def set_static(self, static_boxes: np.ndarray) -> None:
        """Replaces the static map [S, 7] (boxes without a positive size are left out).

        Raises:
            CroaInputError: a malformed box.
        """
        boxes = np.asarray(static_boxes, dtype=np.float64).reshape(-1, 7)
        self.static_boxes = boxes[np.all(boxes[:, 3:6] > 0.0, axis=1)]
        self._static = tuple(Polytope.from_box(b) for b in self.static_boxes)  # built once
        self._static_xy = self.static_boxes[:, :2]
        self._static_radius = 0.5 * np.hypot(self.static_boxes[:, 3], self.static_boxes[:, 4])

    def update(
        self,
        stamp_ns: int,
        boxes: np.ndarray,  # [K, 7] map frame
        scores: np.ndarray,  # [K]
        labels: np.ndarray,  # [K]
    ) -> TargetEstimate:
        """Tracks the frame's detections and finds the target among them (module docstring).

        Raises:
            TrackingError: malformed detections or a stamp before the previous one.
        """
        b = np.asarray(boxes, dtype=np.float64).reshape(-1, 7)
        ids = self.tracker.update(stamp_ns, b, scores, labels)
        by_id = {t.track_id: t for t in self.tracker.tracks}
        if self.target_id not in by_id:
            self.target_id = None
            dist = np.hypot(b[:, 0] - self.estimate[0], b[:, 1] - self.estimate[1])
            near = np.flatnonzero((ids >= 0) & (dist <= self.config.association_radius_m))
            if len(near):
                self.target_id = int(ids[near[np.argmin(dist[near])]])
        if self.target_id is None:
            return TargetEstimate(self.estimate.copy(), None, None)
        track = by_id[self.target_id]
        self.estimate = track.box.copy()
        seen = bool(np.any(ids == self.target_id))
        return TargetEstimate(self.estimate.copy(), track.score if seen else None, self.target_id)

    def observation(
        self, stamp_ns: int, robot: RobotState, robot_model: RobotModel
    ) -> PlanObservation:
        """The planner input at ``stamp_ns`` (module docstring)."""
        # other tracks, minus duplicates of the target (a centre inside the estimate's footprint)
        tracks = [t for t in self.tracker.tracks
                  if t.track_id != self.target_id and not self._inside_target(t.box[:2])]
        boxes = np.array([t.predicted_box(stamp_ns) for t in tracks]).reshape(-1, 7)
        vel = np.array([self.tracker.velocity(t) for t in tracks]).reshape(-1, 2)
        here = np.array([robot.x_m, robot.y_m])
        radius = self.config.obstacle_radius_m
        near = np.hypot(*(boxes[:, :2] - here).T) <= radius + 0.5 * np.hypot(*boxes[:, 3:5].T)
        foot = rectangle_vertices(here, np.array(robot.yaw_rad), robot_model.length_m,
                                  robot_model.width_m)  # fmt: skip
        # a track overlapping the robot's own footprint is a wrong prediction (e.g. a vehicle
        # that yielded while its track extrapolated on): it cannot be where the robot is
        clear = np.array([signed_distance(foot, rectangle_vertices(b[:2], np.array(b[6]), b[3],
                                                                   b[4]))[0] > 0.0
                          for b in boxes], dtype=bool).reshape(len(boxes))  # fmt: skip
        tracked = tuple(
            Polytope.from_box(b, (float(v[0]), float(v[1])), self._stop_after_s(b, v, foot))
            for b, v in zip(boxes[near & clear], vel[near & clear], strict=True)
        )
        static_near = np.hypot(*(self._static_xy - here).T) <= radius + self._static_radius
        static = tuple(p for p, keep in zip(self._static, static_near, strict=True) if keep)
        return PlanObservation(stamp_ns, robot, self.estimate.copy(), static + tracked)

    def _inside_target(self, xy: np.ndarray) -> bool:
        e = self.estimate
        c, s = math.cos(e[6]), math.sin(e[6])
        dx, dy = xy[0] - e[0], xy[1] - e[1]
        return abs(c * dx + s * dy) <= 0.5 * e[3] and abs(-s * dx + c * dy) <= 0.5 * e[4]

    def _stop_after_s(self, box: np.ndarray, velocity: np.ndarray, foot: np.ndarray) -> float:
        """When a moving vehicle would stop for the robot footprint [4, 2] ahead in its lane."""
        speed = float(np.hypot(*velocity))
        if speed == 0.0:
            return math.inf
        heading = velocity / speed
        rel = foot - box[:2]
        along = rel @ heading - 0.5 * box[3]
        across = np.abs(rel[:, 0] * heading[1] - rel[:, 1] * heading[0])
        ahead = (along >= -0.5 * box[3]) & (across <= 0.5 * box[4] + self.config.yield_margin_m)
        if not np.any(ahead):
            return math.inf
        return max(0.0, float(np.min(along[ahead])) - self.config.yield_gap_m) / speed
