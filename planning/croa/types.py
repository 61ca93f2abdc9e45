"""Inputs and outputs of every CROA-interface planner (arXiv 2412.18453): plain dataclasses.

A planner is anything with ``name`` and ``plan(observation, state) -> (PlanResult, state)``
(``Planner``). The observation carries geometry only: the robot state, the target's estimated
box (from the detector or a prior) and obstacle polytopes (detections and the static map), all in
the world (map) frame of docs/conventions.md. Obstacles are vertical prisms (2.5D): a convex
footprint ``A [x, y] <= b`` between two heights; collision avoidance uses the footprint, the
occlusion model the heights too (planning/croa/occlusion.py says why).
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Protocol

import numpy as np

from geometry.boxes import BOX_DIM, BoxError, box_halfspaces, validate_boxes
from planning.croa.polygons import PolygonError, halfspaces_to_polygon, polygon_halfspaces


class CroaInputError(ValueError):
    """A planner input is malformed (the message names the field and the limit)."""


def _frozen(array: np.ndarray) -> np.ndarray:
    out = np.array(array, dtype=np.float64, copy=True)
    out.flags.writeable = False
    return out


@dataclass(frozen=True, eq=False)
class Polytope:
    """A convex vertical prism ``{(x, y, z) : A [x, y] <= b, z_min_m <= z <= z_max_m}``.

    Attributes:
        A: [m, 2] unit outward face normals, counter-clockwise; row k is the face from
            ``vertices[k]`` to ``vertices[k + 1]``.
        b: [m] face offsets.
        vertices: [m, 2] footprint corners, counter-clockwise.
        z_min_m, z_max_m: height interval (m); +inf for a wall of unknown height.
        velocity_mps: (vx, vy) predicted ground velocity (m/s) of a moving obstacle (a tracked
            vehicle); the prism at time t after the observation is translated by
            ``min(t, stop_after_s) * velocity``.
        stop_after_s: when the moving obstacle is predicted to stop (s; inf: never), e.g. a
            vehicle that yields to the robot standing in its lane.
    """

    A: np.ndarray  # [m, 2]
    b: np.ndarray  # [m]
    vertices: np.ndarray  # [m, 2]
    z_min_m: float = 0.0
    z_max_m: float = math.inf
    velocity_mps: tuple[float, float] = (0.0, 0.0)
    stop_after_s: float = math.inf

    def __post_init__(self) -> None:
        v = tuple(float(c) for c in self.velocity_mps)
        if len(v) != 2 or not all(math.isfinite(c) for c in v):
            raise CroaInputError(f"polytope velocity_mps={self.velocity_mps!r}: two finite numbers")
        if not float(self.stop_after_s) >= 0.0:
            raise CroaInputError(f"polytope stop_after_s={self.stop_after_s!r}: must be >= 0")
        object.__setattr__(self, "velocity_mps", v)
        object.__setattr__(self, "stop_after_s", float(self.stop_after_s))

    @property
    def is_moving(self) -> bool:
        return self.velocity_mps != (0.0, 0.0)

    def at_time(self, t_s: float) -> Polytope:
        """The prism translated to where it is predicted ``t_s`` seconds after the observation
        (constant velocity); the same object when it does not move."""
        if not self.is_moving or t_s == 0.0:
            return self
        shift = min(float(t_s), self.stop_after_s) * np.asarray(self.velocity_mps)
        return Polytope(
            self.A,
            _frozen(self.b + self.A @ shift),
            _frozen(self.vertices + shift),
            self.z_min_m,
            self.z_max_m,
            self.velocity_mps,
            self.stop_after_s,
        )

    @classmethod
    def from_box(
        cls,
        box: np.ndarray,  # [7]
        velocity_mps: tuple[float, float] = (0.0, 0.0),
        stop_after_s: float = math.inf,
    ) -> Polytope:
        """The prism of a box [7] (docs/conventions.md), moving at ``velocity_mps`` until
        ``stop_after_s``.

        Raises:
            CroaInputError: a malformed box or velocity.
        """
        try:
            b = validate_boxes(np.asarray(box, dtype=np.float64).reshape(1, BOX_DIM))[0]
        except (BoxError, ValueError) as err:
            raise CroaInputError(f"obstacle box: {err}") from err
        A3, b3 = box_halfspaces(b)
        prism = cls.from_halfspaces(A3, b3)
        if not any(velocity_mps):
            return prism
        return replace(prism, velocity_mps=velocity_mps, stop_after_s=stop_after_s)

    @classmethod
    def from_halfspaces(
        cls,
        A: np.ndarray,  # [m, 2] or [m, 3]
        b: np.ndarray,  # [m]
        z_min_m: float = 0.0,
        z_max_m: float = math.inf,
    ) -> Polytope:
        """A prism from ``A x <= b``; 3-column rows must be vertical faces or a top / bottom.

        Raises:
            CroaInputError: wrong shapes, NaN, a tilted face, or an empty/unbounded footprint.
        """
        a = np.asarray(A, dtype=np.float64)
        off = np.asarray(b, dtype=np.float64).reshape(-1)
        if a.ndim != 2 or a.shape[1] not in (2, 3) or len(off) != a.shape[0]:
            raise CroaInputError(f"polytope A must be [m, 2|3] with b [m], got {a.shape}")
        if not (np.all(np.isfinite(a)) and np.all(np.isfinite(off))):
            raise CroaInputError("polytope A or b contains NaN or Inf")
        if a.shape[1] == 3:
            a, off, z_min_m, z_max_m = _split_prism(a, off, z_min_m, z_max_m)
        if not z_min_m < z_max_m:
            raise CroaInputError(f"polytope heights: z_min_m={z_min_m} must be < z_max_m")
        try:
            vertices = halfspaces_to_polygon(a, off)
        except PolygonError as err:
            raise CroaInputError(f"polytope footprint: {err}") from err
        normals, offsets = polygon_halfspaces(vertices)
        return cls(_frozen(normals), _frozen(offsets), _frozen(vertices), z_min_m, z_max_m)

    def halfspaces_3d(self) -> tuple[np.ndarray, np.ndarray]:
        """The prism as ``A3 [m + 2, 3] x <= b3 [m + 2]`` (infinite heights left out);
        read-only arrays, computed once per polytope (the occlusion tests ask every cycle)."""
        return self._halfspaces_3d

    @cached_property
    def footprint_disc(self) -> tuple[np.ndarray, float]:
        """The footprint's vertex centroid [2] and the radius (m) of the circle about it that
        holds every vertex (cached: culling tests ask for it many times per cycle)."""
        centre = self.vertices.mean(axis=0)
        return _frozen(centre), float(np.max(np.linalg.norm(self.vertices - centre, axis=1)))

    @cached_property
    def footprint_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """The footprint's axis-aligned bounds: least and greatest (x, y) [2] (cached)."""
        return _frozen(self.vertices.min(axis=0)), _frozen(self.vertices.max(axis=0))

    @cached_property
    def _halfspaces_3d(self) -> tuple[np.ndarray, np.ndarray]:
        rows = [np.hstack([self.A, np.zeros((len(self.A), 1))])]
        offs = [self.b]
        if math.isfinite(self.z_max_m):
            rows.append(np.array([[0.0, 0.0, 1.0]]))
            offs.append(np.array([self.z_max_m]))
        if math.isfinite(self.z_min_m):
            rows.append(np.array([[0.0, 0.0, -1.0]]))
            offs.append(np.array([-self.z_min_m]))
        return _frozen(np.vstack(rows)), _frozen(np.concatenate(offs))


def _split_prism(
    a: np.ndarray, off: np.ndarray, z_min_m: float, z_max_m: float
) -> tuple[np.ndarray, np.ndarray, float, float]:
    norm = np.linalg.norm(a, axis=1, keepdims=True)
    if np.any(norm < 1e-12):
        raise CroaInputError("polytope A has a zero row")
    a, off = a / norm, off / norm[:, 0]
    vertical = np.abs(a[:, 2]) < 1e-9
    top, bottom = a[:, 2] > 1.0 - 1e-9, a[:, 2] < -1.0 + 1e-9
    if not np.all(vertical | top | bottom):
        raise CroaInputError("polytope rows must be vertical faces, a top or a bottom (prisms)")
    if np.any(top):
        z_max_m = min(z_max_m, float(np.min(off[top])))
    if np.any(bottom):
        z_min_m = max(z_min_m, float(np.max(-off[bottom])))
    return a[vertical, :2], off[vertical], z_min_m, z_max_m


@dataclass(frozen=True)
class RobotState:
    """Planar robot state at base_link (field names as sim's RobotState).

    Attributes:
        x_m, y_m: base_link position in the map frame (m).
        yaw_rad: heading (rad).
        v_mps: signed speed (m/s), negative when reversing.
        steer_rad: front wheel angle (rad).
    """

    x_m: float
    y_m: float
    yaw_rad: float
    v_mps: float = 0.0
    steer_rad: float = 0.0

    def __post_init__(self) -> None:
        for name in ("x_m", "y_m", "yaw_rad", "v_mps", "steer_rad"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise CroaInputError(f"robot state {name}={value!r}: must be a number")
            if not math.isfinite(value):
                raise CroaInputError(f"robot state {name}={value!r}: must be finite")

    def as_array(self) -> np.ndarray:
        """[x_m, y_m, yaw_rad, v_mps] float64 [4] (base_link)."""
        return np.array([self.x_m, self.y_m, self.yaw_rad, self.v_mps])


@dataclass(frozen=True, eq=False)
class Trajectory:
    """A planned motion: base_link states at ``stamp_ns + times_s``.

    Attributes:
        stamp_ns: time of the first state (int ns).
        times_s: [N] seconds after ``stamp_ns``, starting at 0.
        states: [N, 4] base_link x_m, y_m, yaw_rad, v_mps.
        controls: [N - 1, 2] acceleration (m/s^2) and steering angle (rad) of each step.
    """

    stamp_ns: int
    times_s: np.ndarray  # [N]
    states: np.ndarray  # [N, 4]
    controls: np.ndarray  # [N - 1, 2]

    @property
    def poses(self) -> np.ndarray:
        """[N, 3] x_m, y_m, yaw_rad."""
        return self.states[:, :3]

    def length_m(self) -> float:
        return float(np.sum(np.linalg.norm(np.diff(self.states[:, :2], axis=0), axis=1)))


class PlanStatus(enum.Enum):
    """How a plan came about. Only OK and ITERATION_LIMIT are fresh, verified plans."""

    OK = "ok"  # solved (converged for iterative methods) and verified collision-free
    ITERATION_LIMIT = "iteration_limit"  # verified collision-free, not converged
    FALLBACK_PREVIOUS = "fallback_previous"  # no new safe plan: rest of the last safe path
    FALLBACK_STOP = "fallback_stop"  # no safe plan at all: brake to a stop


@dataclass(frozen=True)
class PlanTimings:
    """Wall time of one ``plan`` call (ms) and the number of convex solves it made."""

    total_ms: float
    setup_ms: float = 0.0
    solve_ms: float = 0.0
    num_solves: int = 0


@dataclass(frozen=True)
class StartReport:
    """What the CCP loop did from one initialization (CROA's diagnostics; the benchmark's
    ablation reads them).

    Attributes:
        name: the initialization ("straight", "sampled").
        start_occlusion, result_occlusion: exact occlusion of the target along the trajectory
            (the surrogate's scan weights), at the start and after the CCP loop.
        start_view_occlusion, result_view_occlusion: exact occlusion at the final viewpoint.
        start_merit, result_merit: the loop's merit before and after (with the exact
            occlusion: planning/croa/scp.py).
        solves: convex solves of this loop. chosen: this loop's result became the plan.
        loop_occlusion: the exact occlusion of the loop's own result; differs from
            ``result_occlusion`` (then the start's) when ``ScpConfig.keep_better_start`` kept
            the start.
    """

    name: str
    start_occlusion: float
    result_occlusion: float
    start_view_occlusion: float
    result_view_occlusion: float
    start_merit: float
    result_merit: float
    solves: int
    chosen: bool
    loop_occlusion: float = float("nan")


@dataclass(frozen=True, eq=False)
class PlanResult:
    """A planner's answer for one cycle.

    Attributes:
        method: the planner's name.
        status: see PlanStatus; ``message`` explains fallbacks and failures in words.
        trajectory: the path to drive (always present, a stop trajectory at worst).
        viewpoint_xy_m: [2] lidar position at the end of the trajectory.
        predicted_occlusion: exact occlusion of the target from the viewpoint, in [0, 1].
        surrogate_occlusion: the smooth surrogate there (NaN for methods without it).
        min_clearance_m: least footprint-obstacle distance over the trajectory (m).
        objective_history: objective after each accepted iteration (empty if not iterative).
        timings: wall time and solve count.
        starts: what the optimizer did from each initialization (CROA only).
    """

    method: str
    status: PlanStatus
    message: str
    trajectory: Trajectory
    viewpoint_xy_m: np.ndarray  # [2]
    predicted_occlusion: float
    surrogate_occlusion: float
    min_clearance_m: float
    objective_history: tuple[float, ...] = ()
    timings: PlanTimings = field(default_factory=lambda: PlanTimings(0.0))
    starts: tuple[StartReport, ...] = ()

    @property
    def is_fallback(self) -> bool:
        return self.status in (PlanStatus.FALLBACK_PREVIOUS, PlanStatus.FALLBACK_STOP)


@dataclass(frozen=True, eq=False)
class PlanObservation:
    """What a planner sees in one cycle (world frame).

    Attributes:
        stamp_ns: time of the observation (int ns).
        robot: current robot state.
        target_box: [7] target box estimate (detection or prior).
        obstacles: obstacle prisms (the static map and tracked vehicles, moving ones with their
            predicted velocity), target excluded.
        occluders: the prisms that hide the target, when they differ from the obstacles (a
            vehicle seen once is an obstacle wherever it may have driven, but hides the target
            from where it was seen: planning/croa/world_model.py); None: the obstacles.
    """

    stamp_ns: int
    robot: RobotState
    target_box: np.ndarray  # [7]
    obstacles: tuple[Polytope, ...] = ()
    occluders: tuple[Polytope, ...] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.stamp_ns, bool) or not isinstance(self.stamp_ns, int | np.integer):
            raise CroaInputError(f"stamp_ns={self.stamp_ns!r}: must be an int (ns)")
        try:
            box = validate_boxes(np.asarray(self.target_box, dtype=np.float64).reshape(1, -1))
        except (BoxError, ValueError) as err:
            raise CroaInputError(f"target_box: {err}") from err
        object.__setattr__(self, "target_box", _frozen(box[0]))
        if not all(isinstance(o, Polytope) for o in self.obstacles):
            raise CroaInputError("obstacles must be Polytope instances (Polytope.from_box)")
        object.__setattr__(self, "obstacles", tuple(self.obstacles))
        if self.occluders is not None:
            if not all(isinstance(o, Polytope) for o in self.occluders):
                raise CroaInputError("occluders must be Polytope instances (Polytope.from_box)")
            object.__setattr__(self, "occluders", tuple(self.occluders))

    def obstacles_at(self, t_s: float) -> tuple[Polytope, ...]:
        """The obstacles where they are predicted ``t_s`` seconds after ``stamp_ns``."""
        return tuple(o.at_time(t_s) for o in self.obstacles)

    @property
    def occluding(self) -> tuple[Polytope, ...]:
        """The prisms that hide the target: ``occluders``, or the obstacles when None."""
        return self.obstacles if self.occluders is None else self.occluders

    def occluders_at(self, t_s: float) -> tuple[Polytope, ...]:
        """The occluding prisms where they are predicted ``t_s`` seconds after ``stamp_ns``."""
        return tuple(o.at_time(t_s) for o in self.occluding)

    @classmethod
    def from_boxes(
        cls,
        stamp_ns: int,
        robot: RobotState,
        target_box: np.ndarray,  # [7]
        obstacle_boxes: np.ndarray,  # [K, 7], K may be 0
        velocities_mps: np.ndarray | None = None,  # [K, 2] predicted velocities, None: static
        stop_after_s: np.ndarray | None = None,  # [K] predicted stop times (s), None: never
    ) -> PlanObservation:
        """Observation from boxes (static map boxes and tracked detections with their
        predicted motion: velocity, and when a yielding vehicle stops)."""
        boxes = np.asarray(obstacle_boxes, dtype=np.float64)
        if boxes.size == 0:
            boxes = boxes.reshape(0, BOX_DIM)
        if boxes.ndim != 2 or boxes.shape[1] != BOX_DIM:
            raise CroaInputError(f"obstacle_boxes must be [K, 7], got {list(boxes.shape)}")
        vel = np.zeros((len(boxes), 2)) if velocities_mps is None else np.asarray(velocities_mps)
        stops = np.full(len(boxes), math.inf) if stop_after_s is None else np.asarray(stop_after_s)
        if vel.shape != (len(boxes), 2) or stops.shape != (len(boxes),):
            raise CroaInputError(f"velocities_mps must be [K, 2] and stop_after_s [K], got "
                                 f"{list(vel.shape)} and {list(stops.shape)}")  # fmt: skip
        return cls(stamp_ns, robot, target_box,
                   tuple(Polytope.from_box(b, (float(v[0]), float(v[1])), float(t))
                         for b, v, t in zip(boxes, vel, stops, strict=True)))  # fmt: skip


@dataclass(frozen=True, eq=False)
class PlannerState:
    """What a planner carries between cycles (returned by ``plan``, passed to the next call).

    Attributes:
        last_safe: the last verified trajectory, for warm starts and the fallback.
        cycles: ``plan`` calls so far.
    """

    last_safe: Trajectory | None = None
    cycles: int = 0


class Planner(Protocol):
    """The CROA interface shared by CROA and its baselines."""

    name: str

    def plan(
        self, observation: PlanObservation, state: PlannerState | None
    ) -> tuple[PlanResult, PlannerState]: ...
