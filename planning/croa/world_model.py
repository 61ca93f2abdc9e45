"""What CROA's planner perceives (arXiv 2412.18453: learning-based detection and optimization-based
planning run interleaved): the static map plus the detector's vehicles tracked over frames, with
their predicted motion, and the target found by association with the request. No ground truth
enters here; the benchmark uses it only to score.

Per detection frame, ``PerceivedWorld.update(stamp, boxes, scores, labels)`` (boxes in the map
frame):

1. Track (perception/tracking.py): identities, filtered boxes and velocities.
2. Target. Until a target track exists, the static track nearest the current estimate (first:
   the request's pose with the prior size) with a detection in this frame within
   ``association_radius_m`` becomes it; afterwards the target is that track, until the track is
   dropped, starts moving, or strays more than ``association_radius_m`` + 1 m from the request
   (then it is re-associated the same way: the request is a parked vehicle, and a car driving
   past it must not become the target). The frame's
   target confidence is the score of the target track's detection in this frame, None when it
   was not detected (the MAD stop decision reads it). The target's box is the mean of its
   detections weighted by the detector's odds ``s / (1 - s)`` (score ``s`` clipped to
   [0.01, 0.99]; detections farther than ``target_gate_m`` from the mean are left out): the
   target is parked, so every detection measures the same box, and a confident one counts
   far more than a doubtful one (0.9: 9, 0.5: 1). The tracker's alpha-beta box instead weighs
   the latest detection alike whatever its score, and a spurious velocity makes it drift.
3. Lidar evidence (optional: the frame's points in the map frame and the lidar origin): points
   between the lidar and the target estimate (inside its bearing interval, nearer than its
   nearest corner, ``evidence_min_height_m`` above the ground) that no map box or track
   explains are binned into ``evidence_cell_m`` cells; a cell with ``evidence_min_points``
   becomes a box obstacle up to its highest point, kept for ``evidence_keep_s``. An occluder
   the detector misses (a car hidden behind another, a vehicle stopped beside the robot, an
   object not in the map) still hides the target from the planner's occlusion model.
   **Near the robot** the same points are obstacles in every direction: returns within
   ``clutter_radius_m`` of the lidar, between ``evidence_min_height_m`` and
   ``clutter_max_height_m`` (what the robot could hit), that no map box, track or the target
   (grown by ``target_gate_m``) explains, binned the same way (each cell the box around its
   points, grown by 0.1 m), are obstacles of the latest frame only (a return counts as a box's
   within ``clutter_explained_m`` of it, the occluder evidence within 0.3 m): a vehicle the detector
   misses or boxes too short (a parked bus scored below the detector's threshold) must not be
   driven into, and kept one frame a missed moving vehicle leaves no trail.
4. ``observation(stamp, robot)``: the planner's input. Obstacles: the static map, the evidence
   cells and every other track within ``obstacle_radius_m``, tracks predicted to ``stamp``;
   moving tracks keep their velocity, grown by ``moving_margin_m``, and one that has the
   robot's footprint in its lane corridor ahead
   (``|across| <= w / 2 + yield_margin_m``) is predicted to stop ``yield_gap_m`` short of it,
   after ``max(0, along - yield_gap_m) / speed`` seconds (drivers do not run into a robot
   standing in their lane; without this every plan in a traffic lane would be refused). Each
   moving track is also an obstacle where it is now (grown the same way): it may stop at any
   moment, and a tracked velocity lags a stop. A track seen once (its velocity unknown until
   its second detection) within ``young_horizon_s`` of that detection is grown along its
   heading, both ways, by ``young_speed_mps * young_horizon_s`` (the distance it could cover
   before the next frame tells), each end stopping at the target and ``yield_gap_m`` short of
   the robot; grown onto the robot, it is kept as seen. The growth is for collisions only:
   the observation's ``occluders`` hold the box as seen (the occlusion model asks where the
   vehicle most likely is, the collision model where it might be). A box on the robot's own
   footprint (a detection's centre off along the vehicle, a yielded vehicle's track
   extrapolated on) is cut back from the robot's side, along its length or else its width,
   until it is clear, keeping at least ``min_cut_box_m``; one that cannot be is left out.
   The near-robot evidence cells are obstacles too (not occluders of the target: those are
   the cells above). Target: the target track's box, or the prior.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from perception.tracking import BoxTracker, TrackerConfig
from planning.croa.polygons import rectangle_vertices, signed_distance
from planning.croa.robot import RobotModel
from planning.croa.types import CroaInputError, PlanObservation, Polytope, RobotState
from planning.croa.validation import check_int, check_number

CLUTTER_PAD_M = 0.1  # a near-robot evidence box's margin around its points (m)
EXPLAINED_M = 0.3  # a return within this of a map box or track is not occluder evidence (m)


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
        moving_margin_m: a moving track's box grows by this ahead and behind and by half of it
            on each side: its prediction is uncertain and the robot's path follower is not
            on time to the centimetre (m), in [0, 5].
        evidence_cell_m: cell size of the lidar evidence (m), in [0.2, 5].
        evidence_min_points: points that make a cell an occluder, in [1, 1000].
        evidence_min_height_m: points below this height are ground (m), in [0, 3].
        evidence_keep_s: an evidence cell not seen again is dropped after this (s), [0, 60].
        target_gate_m: a target detection farther than this from the target's fused box is
            not fused (m), in [0.1, 10]; lidar returns within it of the target's box are the
            target's, not near-robot obstacles.
        clutter_radius_m: unexplained returns within this range of the lidar are obstacles
            (m), in [0, 50]; 0 turns the near-robot evidence off.
        clutter_max_height_m: returns above this height pass over the robot (m), in (0, 10].
        clutter_explained_m: a return within this of a map box or track counts as that box's
            near the robot (m), in [0, 1]: 5 sigma of the lidar's 0.02 m range noise, so that
            a return beyond a box's face (the detector's box a few decimetres short of the
            vehicle) is an obstacle; the occluder evidence keeps 0.3 m.
        young_speed_mps: speed a vehicle seen once may have along its heading (its velocity
            is unknown until its second detection) (m/s), in [0, 30].
        young_horizon_s: how long after its detection a once-seen track's box is grown along
            its heading, both ways, by ``young_speed_mps`` times this (about one perception
            period: the next detection gives it a velocity or shows it parked) (s), [0, 10].
        min_cut_box_m: a track box on the robot's footprint is cut back from the robot's side
            until clear, keeping at least this length (or width) (m), in [0.05, 5]; one that
            cannot be is left out.
        tracker: the tracker's settings.
    """

    association_radius_m: float = 3.0
    obstacle_radius_m: float = 40.0
    target_length_m: float = 4.5
    target_width_m: float = 1.9
    target_height_m: float = 1.5
    yield_gap_m: float = 5.0
    yield_margin_m: float = 0.5
    moving_margin_m: float = 1.0
    evidence_cell_m: float = 1.0
    evidence_min_points: int = 3
    evidence_min_height_m: float = 0.3
    evidence_keep_s: float = 3.0
    target_gate_m: float = 1.5
    clutter_radius_m: float = 12.0
    clutter_max_height_m: float = 2.0
    clutter_explained_m: float = 0.1
    young_speed_mps: float = 8.0
    young_horizon_s: float = 1.0
    min_cut_box_m: float = 0.5
    tracker: TrackerConfig = field(default_factory=TrackerConfig)

    def __post_init__(self) -> None:
        for name, lo, hi in (("association_radius_m", 1e-3, 50.0),
                             ("obstacle_radius_m", 5.0, 500.0), ("target_length_m", 1e-3, 30.0),
                             ("target_width_m", 1e-3, 30.0), ("target_height_m", 1e-3, 30.0),
                             ("yield_gap_m", 0.0, 50.0), ("yield_margin_m", 0.0, 5.0),
                             ("moving_margin_m", 0.0, 5.0),
                             ("evidence_cell_m", 0.2, 5.0), ("evidence_min_height_m", 0.0, 3.0),
                             ("evidence_keep_s", 0.0, 60.0),
                             ("target_gate_m", 0.1, 10.0), ("clutter_radius_m", 0.0, 50.0),
                             ("clutter_max_height_m", 1e-3, 10.0),
                             ("clutter_explained_m", 0.0, 1.0), ("young_speed_mps", 0.0, 30.0),
                             ("young_horizon_s", 0.0, 10.0),
                             ("min_cut_box_m", 0.05, 5.0)):  # fmt: skip
            check_number(self, name, lo, hi, CroaInputError)
        check_int(self, "evidence_min_points", 1, 1000, CroaInputError)


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
        self.request_xy = np.array([x, y])
        self.tracker = BoxTracker(c.tracker)
        self.target_id: int | None = None
        self._fused: tuple[float, np.ndarray] | None = None  # target: sum of weights, of w box
        self.evidence: dict[tuple[int, int], tuple[float, int]] = {}  # cell -> top (m), stamp
        self.clutter = np.zeros((0, 7))  # the latest frame's near-robot evidence boxes

    def set_static(self, static_boxes: np.ndarray) -> None:
        """Replaces the static map [S, 7] (boxes without a positive size are left out).

        Raises:
            CroaInputError: a malformed box.
        """
        boxes = np.asarray(static_boxes, dtype=np.float64).reshape(-1, 7)
        self.static_boxes = boxes[np.all(boxes[:, 3:6] > 0.0, axis=1)]
        self._static = tuple(Polytope.from_box(b) for b in self.static_boxes)  # built once
        self._cell_prisms: dict[bytes, Polytope] = {}  # the latest observation's evidence cells
        self._static_xy = self.static_boxes[:, :2]
        self._static_radius = 0.5 * np.hypot(self.static_boxes[:, 3], self.static_boxes[:, 4])

    def update(
        self,
        stamp_ns: int,
        boxes: np.ndarray,  # [K, 7] map frame
        scores: np.ndarray,  # [K]
        labels: np.ndarray,  # [K]
        points: np.ndarray | None = None,  # [N, >=3] the frame's lidar points, map frame
        origin: np.ndarray | None = None,  # [3] the lidar in the map frame
    ) -> TargetEstimate:
        """Tracks the frame's detections and finds the target among them; with the points,
        updates the lidar evidence of unexplained occluders (module docstring).

        Raises:
            TrackingError: malformed detections or a stamp before the previous one.
        """
        b = np.asarray(boxes, dtype=np.float64).reshape(-1, 7)
        ids = self.tracker.update(stamp_ns, b, scores, labels)
        by_id = {t.track_id: t for t in self.tracker.tracks}
        radius = self.config.association_radius_m
        previous, current = self.target_id, by_id.get(self.target_id)  # type: ignore[arg-type]
        if (
            current is None
            or self.tracker.is_moving(current)
            or np.hypot(*(current.box[:2] - self.request_xy)) > radius + 1.0
        ):
            self.target_id = None
            dist = np.hypot(b[:, 0] - self.estimate[0], b[:, 1] - self.estimate[1])
            static = np.array([k >= 0 and not self.tracker.is_moving(by_id[int(k)]) for k in ids],
                              dtype=bool)  # fmt: skip
            near = np.flatnonzero(static & (dist <= radius))
            if len(near):
                self.target_id = int(ids[near[np.argmin(dist[near])]])
        if self.target_id != previous:
            self._fused = None  # a new target: its own detections only
        if self.target_id is not None:
            hit = np.flatnonzero(ids == self.target_id)
            if len(hit):
                self._fuse(b[int(hit[0])], float(np.asarray(scores)[int(hit[0])]))
            self.estimate = (by_id[self.target_id].box.copy() if self._fused is None
                             else self._fused[1] / self._fused[0])  # fmt: skip
        if points is not None and origin is not None:
            self._add_evidence(stamp_ns, np.asarray(points, dtype=np.float64)[:, :3],
                               np.asarray(origin, dtype=np.float64))  # fmt: skip
        if self.target_id is None:
            return TargetEstimate(self.estimate.copy(), None, None)
        seen = bool(np.any(ids == self.target_id))
        score = by_id[self.target_id].score if seen else None
        return TargetEstimate(self.estimate.copy(), score, self.target_id)

    def _fuse(self, box: np.ndarray, score: float) -> None:
        """Adds one detection of the (static) target to its odds-weighted mean box."""
        box = box.copy()
        if self._fused is not None:
            mean = self._fused[1] / self._fused[0]
            if np.hypot(*(box[:2] - mean[:2])) > self.config.target_gate_m:
                return  # not this vehicle's box (a neighbour merged into the track)
            box[6] += math.pi * round((mean[6] - box[6]) / math.pi)  # fold front/back
        odds = min(max(score, 0.01), 0.99)
        weight = odds / (1.0 - odds)
        if self._fused is None:
            self._fused = (weight, weight * box)
        else:
            self._fused = (self._fused[0] + weight, self._fused[1] + weight * box)

    def _add_evidence(self, stamp_ns: int, points: np.ndarray, origin: np.ndarray) -> None:
        c, e = self.config, self.estimate
        self.evidence = {k: v for k, v in self.evidence.items()
                         if (stamp_ns - v[1]) * 1e-9 <= c.evidence_keep_s}  # fmt: skip
        corners = rectangle_vertices(e[:2], np.array(e[6]), e[3], e[4])  # [4, 2]
        toward = math.atan2(e[1] - origin[1], e[0] - origin[0])

        def bearing(xy: np.ndarray) -> np.ndarray:
            rel = xy - origin[:2]
            return (np.arctan2(rel[..., 1], rel[..., 0]) - toward + np.pi) % (2 * np.pi) - np.pi

        lo, hi = bearing(corners).min(), bearing(corners).max()
        near = float(np.min(np.hypot(*(corners - origin[:2]).T))) - 0.3
        p = points[(points[:, 2] >= c.evidence_min_height_m)]
        rng = np.hypot(*(p[:, :2] - origin[:2]).T)
        b = bearing(p[:, :2])
        wedge = (b >= lo) & (b <= hi) & (rng >= 1.0) & (rng <= near)
        close = (rng >= 1.0) & (rng <= c.clutter_radius_m) & (p[:, 2] <= c.clutter_max_height_m)
        p, wedge, close = p[wedge | close], wedge[wedge | close], close[wedge | close]
        known = [self.static_boxes, *[t.box[None] for t in self.tracker.tracks]]
        boxes = np.vstack(known).reshape(-1, 7)
        reach = max(near, c.clutter_radius_m) + 0.5 * np.hypot(boxes[:, 3], boxes[:, 4])
        boxes = boxes[np.hypot(*(boxes[:, :2] - origin[:2]).T) <= reach]  # only those in range
        if len(p) and len(boxes):
            # near the robot a tighter margin: a return beyond a box's face is a surface the
            # box does not cover (crossing-traffic 6: a car's box 0.12 m short of its front)
            close &= ~_inside_any(p[:, :2], boxes, margin_m=c.clutter_explained_m)
            wedge &= ~_inside_any(p[:, :2], boxes, margin_m=EXPLAINED_M)
            p, wedge, close = p[wedge | close], wedge[wedge | close], close[wedge | close]
        for key, top in _cells(p[wedge], c.evidence_cell_m, c.evidence_min_points).items():
            self.evidence[key] = (top, int(stamp_ns))
        close &= ~_inside_any(p[:, :2], e[None], margin_m=c.target_gate_m)  # the target's
        self.clutter = _tight_cells(p[close], c.evidence_cell_m, c.evidence_min_points,
                                    set(self.evidence))  # fmt: skip

    def evidence_boxes(self) -> np.ndarray:  # [E, 7]
        """The evidence cells as boxes from the ground to their highest point (map frame)."""
        s = self.config.evidence_cell_m
        return np.array(
            [
                [(i + 0.5) * s, (j + 0.5) * s, 0.5 * top, s, s, top, 0.0]
                for (i, j), (top, _) in self.evidence.items()
            ]
        ).reshape(-1, 7)

    def observation(
        self, stamp_ns: int, robot: RobotState, robot_model: RobotModel
    ) -> PlanObservation:
        """The planner input at ``stamp_ns`` (module docstring)."""
        # other tracks, minus duplicates of the target (a centre inside the estimate's footprint)
        tracks = [
            t
            for t in self.tracker.tracks
            if t.track_id != self.target_id and not self._inside_target(t.box[:2])
        ]
        boxes = np.array([t.predicted_box(stamp_ns) for t in tracks]).reshape(-1, 7)
        vel = np.array([self.tracker.velocity(t) for t in tracks]).reshape(-1, 2)
        moving = np.any(vel != 0.0, axis=1)
        boxes[moving, 3] += 2.0 * self.config.moving_margin_m
        boxes[moving, 4] += self.config.moving_margin_m
        here = np.array([robot.x_m, robot.y_m])
        radius = self.config.obstacle_radius_m
        foot = rectangle_vertices(here, np.array(robot.yaw_rad), robot_model.length_m,
                                  robot_model.width_m)  # fmt: skip
        # a vehicle seen once may be driving: its velocity is unknown until the next detection
        # (crossing-traffic 7: a truck seen once, planned around as parked, hit 1.5 s later)
        young = np.array(
            [
                t.hits == 1 and (stamp_ns - t.seen_ns) * 1e-9 <= self.config.young_horizon_s + 1e-6
                for t in tracks
            ],
            dtype=bool,
        )
        seen, grown = boxes.copy(), boxes.copy()
        for k in np.flatnonzero(young & ~moving):
            grown[k] = self._young_box(boxes[k], foot)
        # a track overlapping the robot's own footprint is a wrong prediction (e.g. a vehicle
        # that yielded while its track extrapolated on): it cannot be where the robot is
        clear = _clear_of(foot, grown, grown[:, 6])
        boxes = np.where(clear[:, None], grown, boxes)  # a grown box on the robot: as seen
        clear |= _clear_of(foot, boxes, boxes[:, 6])
        # a box on the robot's footprint is wrong where it meets the robot, not at its far end
        # (a detection's centre 1.2 m off along a van's heading, urban-clutter 3: the whole
        # van left out and driven into): cut back from the robot's side until clear
        for k in np.flatnonzero(~clear):
            cut = _cut_clear_of(foot, boxes[k], self.config.min_cut_box_m)
            if cut is not None:
                boxes[k], seen[k], clear[k] = cut, cut, True
        near = np.hypot(*(boxes[:, :2] - here).T) <= radius + 0.5 * np.hypot(*boxes[:, 3:5].T)
        keep = near & clear
        tracked = tuple(
            Polytope.from_box(b, (float(v[0]), float(v[1])), self._stop_after_s(b, v, foot))
            for b, v in zip(boxes[keep], vel[keep], strict=True)
        )
        # ... and where it is now: a vehicle may stop at any moment (it brakes, it yields, or its
        # velocity estimate lags a stop: a van that stopped for the robot was tracked backing
        # away at 1.6 m/s, and a plan into the space it "left" ended in its front bumper)
        stopped = tuple(Polytope.from_box(b) for b in boxes[near & clear & moving])
        static_near = np.hypot(*(self._static_xy - here).T) <= radius + self._static_radius
        static = tuple(p for p, keep in zip(self._static, static_near, strict=True) if keep)
        cells = self.evidence_boxes()
        cells = cells[~_inside_any(cells[:, :2], self.estimate[None])]  # never the target
        cells = np.vstack([cells, self.clutter[np.hypot(*(self.clutter[:, :2] - here).T)
                                               <= radius]])  # fmt: skip
        # evidence cells persist over frames: their prisms are kept from one call to the next
        known, self._cell_prisms = self._cell_prisms, {}
        for b in cells[_clear_of(foot, cells, np.zeros(len(cells)))]:
            key = b.tobytes()
            self._cell_prisms[key] = known.get(key) or Polytope.from_box(b)
        evidence = tuple(self._cell_prisms.values())
        obstacles = static + tracked + stopped + evidence
        # a grown (once-seen) vehicle hides the target from where it was seen, not from
        # everywhere it might have driven: the occlusion model gets the box as seen
        grew = np.any(boxes != seen, axis=1)[keep]
        occluders = None
        if np.any(grew):
            as_seen = tuple(Polytope.from_box(b) if g else t
                            for t, g, b in zip(tracked, grew, seen[keep], strict=True))  # fmt: skip
            occluders = static + as_seen + stopped + evidence
        return PlanObservation(stamp_ns, robot, self.estimate.copy(), obstacles, occluders)

    def _inside_target(self, xy: np.ndarray) -> bool:
        e = self.estimate
        c, s = math.cos(e[6]), math.sin(e[6])
        dx, dy = xy[0] - e[0], xy[1] - e[1]
        return abs(c * dx + s * dy) <= 0.5 * e[3] and abs(-s * dx + c * dy) <= 0.5 * e[4]

    def _young_box(self, box: np.ndarray, foot: np.ndarray) -> np.ndarray:  # [7]
        """A once-seen vehicle's box [7] grown along its heading, both ways (a box's front and
        back are ambiguous), by the distance ``young_speed_mps`` covers in ``young_horizon_s``;
        each end stops at the target (it cannot drive through the parked target) and
        ``yield_gap_m`` short of the robot's footprint foot [4, 2] (drivers stop for it)."""
        c = self.config
        reach = c.young_speed_mps * c.young_horizon_s
        heading = np.array([math.cos(box[6]), math.sin(box[6])])
        e = self.estimate
        room = [reach, reach]  # ahead, behind
        blockers = ((rectangle_vertices(e[:2], np.array(e[6]), e[3], e[4]), 0.0),
                    (foot, c.yield_gap_m))  # fmt: skip
        for corners, gap in blockers:
            rel = corners - box[:2]
            along = rel @ heading
            across = rel[:, 0] * -heading[1] + rel[:, 1] * heading[0]
            if across.max() < -0.5 * box[4] or across.min() > 0.5 * box[4]:
                continue  # not in its lane
            if along.min() >= 0.5 * box[3]:
                room[0] = min(room[0], max(0.0, along.min() - 0.5 * box[3] - gap))
            elif along.max() <= -0.5 * box[3]:
                room[1] = min(room[1], max(0.0, -along.max() - 0.5 * box[3] - gap))
        out = box.copy()
        out[:2] += 0.5 * (room[0] - room[1]) * heading
        out[3] += room[0] + room[1]
        return out

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


def _cut_clear_of(foot: np.ndarray, box: np.ndarray, min_size_m: float) -> np.ndarray | None:
    """``box`` [7] shortened from the robot's side, along its length or else its width, by the
    least amount (to 1 cm) that leaves it clear of the footprint foot [4, 2] and at least
    ``min_size_m`` long; None when neither does."""
    centre = foot.mean(axis=0)
    c, s = math.cos(box[6]), math.sin(box[6])
    for dim, axis in ((3, np.array([c, s])), (4, np.array([-s, c]))):
        away = -axis if float((centre - box[:2]) @ axis) > 0.0 else axis
        room = float(box[dim]) - min_size_m
        if room <= 0.0:
            continue

        def cut(amount: float, dim: int = dim, away: np.ndarray = away) -> np.ndarray:
            out = box.copy()
            out[:2] += 0.5 * amount * away
            out[dim] -= amount
            return out

        if not _clear_of(foot, cut(room)[None], box[6:7])[0]:
            continue
        lo, hi = 0.0, room
        while hi - lo > 0.01:
            mid = 0.5 * (lo + hi)
            lo, hi = (lo, mid) if _clear_of(foot, cut(mid)[None], box[6:7])[0] else (mid, hi)
        return cut(hi)
    return None


def _clear_of(foot: np.ndarray, boxes: np.ndarray, yaws: np.ndarray) -> np.ndarray:
    """Whether the footprint of each box [B, 7], turned to yaws [B], is disjoint from the
    robot's footprint foot [4, 2] (signed distance > 0), all boxes at once."""
    if not len(boxes):
        return np.zeros(0, dtype=bool)
    rects = rectangle_vertices(boxes[:, :2], yaws, boxes[:, 3], boxes[:, 4])  # [B, 4, 2]
    return signed_distance(foot, rects)[0] > 0.0


def _cells(points: np.ndarray, cell_m: float, min_points: int) -> dict[tuple[int, int], float]:
    """Grid cells [cell_m] holding at least ``min_points`` of ``points`` [N, 3] -> their top."""
    if not len(points):
        return {}
    ij = np.floor(points[:, :2] / cell_m).astype(int)
    cells, inverse, counts = np.unique(ij, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    top = np.full(len(cells), -np.inf)
    np.maximum.at(top, inverse, points[:, 2])
    return {(int(a), int(b)): float(t) for (a, b), t, n in zip(cells, top, counts, strict=True)
            if n >= min_points}  # fmt: skip


def _tight_cells(points: np.ndarray, cell_m: float, min_points: int,
                 skip: set[tuple[int, int]]) -> np.ndarray:  # fmt: skip
    """Per grid cell with at least ``min_points`` of ``points`` [N, 3] (and not in ``skip``),
    the box [7] around its points, grown by CLUTTER_PAD_M: a whole 1 m cell would move a
    vehicle's side up to a metre into the lane beside it and wall the robot in."""
    if not len(points):
        return np.zeros((0, 7))
    ij = np.floor(points[:, :2] / cell_m).astype(int)
    cells, inverse, counts = np.unique(ij, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    lo = np.full((len(cells), 3), np.inf)
    hi = np.full((len(cells), 3), -np.inf)
    np.minimum.at(lo, inverse, points[:, :3])
    np.maximum.at(hi, inverse, points[:, :3])
    keep = [k for k, (cell, n) in enumerate(zip(cells, counts, strict=True))
            if n >= min_points and (int(cell[0]), int(cell[1])) not in skip]  # fmt: skip
    top = hi[keep, 2]
    lo, hi = lo[keep, :2] - CLUTTER_PAD_M, hi[keep, :2] + CLUTTER_PAD_M
    centre, size = 0.5 * (lo + hi), hi - lo
    return np.column_stack([centre, 0.5 * top, size, top, np.zeros(len(keep))]).reshape(-1, 7)


def _inside_any(xy: np.ndarray, boxes: np.ndarray, margin_m: float = 0.0) -> np.ndarray:
    """Whether each point [N, 2] lies in the footprint of any box [B, 7], grown by margin_m.

    Per box only the points within its circumscribed square are tested (found by bisection on
    the points sorted by x): a frame has thousands of points and tens of boxes, and the test
    on the candidates is the same arithmetic as on all of them."""
    out = np.zeros(len(xy), dtype=bool)
    if not len(xy) or not len(boxes):
        return out
    c, s = np.cos(boxes[:, 6]), np.sin(boxes[:, 6])  # [B]
    half_l, half_w = 0.5 * boxes[:, 3] + margin_m, 0.5 * boxes[:, 4] + margin_m
    reach = np.hypot(half_l, half_w) + 1e-6  # a point inside is within this of the centre
    order = np.argsort(xy[:, 0], kind="stable")
    xs = xy[order, 0]
    first = np.searchsorted(xs, boxes[:, 0] - reach, side="left")
    last = np.searchsorted(xs, boxes[:, 0] + reach, side="right")
    for k in range(len(boxes)):
        cand = order[first[k] : last[k]]
        cand = cand[~out[cand] & (np.abs(xy[cand, 1] - boxes[k, 1]) <= reach[k])]
        rel = xy[cand] - boxes[k, :2]
        along = np.abs(rel[:, 0] * c[k] + rel[:, 1] * s[k])
        across = np.abs(-rel[:, 0] * s[k] + rel[:, 1] * c[k])
        out[cand] = (along <= half_l[k]) & (across <= half_w[k])
    return out
