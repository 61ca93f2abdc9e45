"""Occluder placement: puts clutter between the ego start and the target so that the target's
occlusion ratio (``sim/truth.py``) from the ego start's lidar lands in a requested range, and
checks that a clearly better viewpoint exists nearby (the situation CROA, arXiv 2412.18453,
resolves by moving).

Random search. Each attempt draws 1-3 occluders (parked cars, vans, trucks, buses, rows of
construction barriers, bins) in the target's parking lane or, unless the ego starts there, the
driving lane beside it (double parking, roadworks: the only way to hide a target across the
street), on the stretch the sight lines cross, and evaluates with the exact samples of
``visible_face_samples``:

    occ(v) = sum_i w_i(v) [blocked_base_i(v) or blocked_occluders_i(v)] / sum_i w_i(v)

where ``blocked_base`` comes from the open3d world without occluders (cast once per viewpoint)
and ``blocked_occluders`` from the numpy slab test against the attempt's few boxes. An attempt
is accepted when ``occ(start)`` is in the range and, if ``min_view_improvement > 0``, some
collision-free viewpoint ``v`` in a driving lane within ``better_view_radius_m`` of the start
(robot 4.5 x 1.9 m, heading +x, lidar at ``sensor_height_m``) has
``occ(v) <= occ(start) - min_view_improvement``; the start value is then re-verified by raycasting
the world with the occluders added.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from sim.materials import VEHICLE_SIZE_RANGES_M
from sim.placement import Placer, convex_overlap, footprint
from sim.scenarios import ScenarioConfig
from sim.scene import Lane, Scene, SceneObject
from sim.slab import slab_cast
from sim.truth import BLOCK_MARGIN_M, blocked_rays, occlusion_ratio, visible_face_samples
from sim.vehicles import sample_body
from sim.world import World

SAMPLE_SPACING_M = 0.25  # target surface sampling during the search
VIEW_STEP_M = 2.5  # spacing of candidate viewpoints along the lanes
ROBOT_SIZE_M = (4.5, 1.9)  # footprint used to check that a candidate viewpoint is free
_KINDS = ("van", "truck", "car", "bus", "barrier", "bin")
_KIND_P = (0.25, 0.2, 0.15, 0.05, 0.25, 0.1)


class OccluderError(ValueError):
    """No occluder layout met the occlusion range and better-view requirement."""


def sample_vehicle_size(rng: np.random.Generator, kind: str) -> tuple[float, float, float]:
    """(length, width, height) in metres, uniform in the class's ranges."""
    return tuple(float(rng.uniform(lo, hi)) for lo, hi in VEHICLE_SIZE_RANGES_M[kind])  # type: ignore[return-value]


@dataclass
class OccluderSearch:
    """Inputs of the search: the scene without occluders, its world, settings and the placer
    holding every footprint already placed (the sight corridor must be inactive)."""

    world: World
    scene: Scene
    config: ScenarioConfig
    placer: Placer


@dataclass(frozen=True)
class _View:
    origin: np.ndarray  # [3]
    points: np.ndarray  # [S, 3]
    weights: np.ndarray  # [S]
    base_blocked: np.ndarray  # [S]
    footprint: np.ndarray  # [4, 2]

    def occlusion(self, boxes: np.ndarray) -> float:
        blocked = self.base_blocked
        if len(boxes):
            t, _ = slab_cast(boxes, self.origin, self.points - self.origin)
            dist = np.linalg.norm(self.points - self.origin, axis=1)
            blocked = blocked | (t < dist - BLOCK_MARGIN_M)
        return float(np.sum(self.weights * blocked) / np.sum(self.weights))


def _view(s: OccluderSearch, x: float, y: float) -> _View:
    origin = np.array([x, y, s.config.sensor_height_m])
    target = s.scene.target_index
    points, weights, _ = visible_face_samples(
        origin, s.scene.objects[target].box_array, SAMPLE_SPACING_M
    )
    blocked = blocked_rays(s.world, origin, points, np.full(len(points), target))
    robot = footprint(np.array([x, y, 0.8, *ROBOT_SIZE_M, 1.6, 0.0]))
    return _View(origin, points, weights, blocked, robot)


def _candidate_views(s: OccluderSearch) -> list[_View]:
    ex, ey, _ = s.scene.ego_start
    radius = s.config.better_view_radius_m
    views = []
    for lane in (ln for ln in s.scene.lanes if ln.kind == "driving"):
        for x in np.arange(ex - radius, ex + radius + 1e-9, VIEW_STEP_M):
            if np.hypot(x - ex, lane.center_y_m - ey) <= radius and (x, lane.center_y_m) != (
                ex,
                ey,
            ):
                robot = footprint(np.array([x, lane.center_y_m, 0.8, *ROBOT_SIZE_M, 1.6, 0.0]))
                if s.placer.is_free(robot, 0.2):
                    views.append(_view(s, float(x), lane.center_y_m))
    return views


def _zones(s: OccluderSearch) -> list[tuple[Lane, float, float]]:
    """Lanes where occluders may go, each with the x range (lo, hi) of an occluder's front end:
    the target's parking lane, and the driving lane next to it (a double-parked vehicle or
    roadworks) unless the ego starts in it. Ranges start where the sight lines from the ego
    start to the target's corners enter the lane (2 m earlier) and end at the target's rear
    (parking lane) or centre (driving lane)."""
    target = s.scene.objects[s.scene.target_index].box_array
    ex, ey, _ = s.scene.ego_start
    corners = footprint(target)  # [4, 2]
    parking = min(
        (ln for ln in s.scene.lanes if ln.kind == "parking"),
        key=lambda ln: abs(ln.center_y_m - target[1]),
    )
    beside = min(
        (ln for ln in s.scene.lanes if ln.kind == "driving"),
        key=lambda ln: abs(ln.center_y_m - parking.center_y_m),
    )
    lanes = [parking] + ([beside] if abs(beside.center_y_m - ey) > 0.5 * beside.width_m else [])
    zones = []
    rear = target[0] - 0.5 * np.max(np.abs(target[3:5])) - 0.3
    for lane in lanes:
        edge_y = lane.center_y_m - np.sign(lane.center_y_m - ey) * 0.5 * lane.width_m
        enter = ex + (edge_y - ey) / (corners[:, 1] - ey) * (corners[:, 0] - ex)  # [4]
        x_hi = rear if lane.kind == "parking" else float(target[0])
        zones.append((lane, min(max(ex + 4.0, float(np.min(enter)) - 2.0), x_hi - 0.5), x_hi))
    return zones


Occluder = tuple[str, tuple[float, ...], str]  # kind, box [7], shape


def _draw(
    s: OccluderSearch, zones: list[tuple[Lane, float, float]], rng: np.random.Generator
) -> list[Occluder]:
    """1-3 occluders (kind, box, shape) drawn in the zones (``_zones``)."""
    ey = s.scene.ego_start[1]
    out: list[Occluder] = []
    for _ in range(int(rng.integers(1, 4))):
        lane, x_lo, x_hi = zones[int(rng.integers(len(zones)))]
        kind = _KINDS[int(rng.choice(len(_KINDS), p=_KIND_P))]
        front = rng.uniform(x_lo, x_hi)
        near_y = lane.center_y_m - np.sign(lane.center_y_m - ey) * (0.5 * lane.width_m - 0.35)
        if kind == "barrier":
            out += [
                (kind, (front - 2.05 * k - 1.0, near_y, 0.5, 2.0, 0.5, 1.0, 0.0), "box")
                for k in range(int(rng.integers(1, 5)))
            ]
        elif kind == "bin":
            out.append((kind, (front - 0.3, near_y, 0.525, 0.6, 0.6, 1.05, 0.0), "box"))
        else:
            if s.config.vehicle_shapes == "box":
                shape, (length, width, height) = "box", sample_vehicle_size(rng, kind)
            else:
                shape, length, width, height = sample_body(rng, kind)
            y = lane.center_y_m + rng.uniform(-0.15, 0.15)
            yaw = (0.0 if lane.direction > 0 else np.pi) + rng.uniform(-0.04, 0.04)
            box = (front - 0.5 * length, y, 0.5 * height, length, width, height, yaw)
            out.append((kind, box, shape))
    return out


def place_occluders(
    s: OccluderSearch, rng: np.random.Generator
) -> tuple[list[Occluder], dict[str, Any]]:
    """Occluders (kind, box [7], shape) meeting the requirements (module docstring) and statistics
    ``target_occlusion_start``, ``best_view`` (x, y, occlusion) and ``occluder_attempts``.

    Raises:
        OccluderError: nothing met them within ``max_occluder_attempts``.
    """
    c = s.config
    lo, hi = c.target_occlusion_range
    ex, ey, _ = s.scene.ego_start
    start = _view(s, ex, ey)
    views = _candidate_views(s) if c.min_view_improvement > 0.0 else []
    zones = _zones(s)
    for attempt in range(c.max_occluder_attempts):
        drawn = [] if attempt == 0 else _draw(s, zones, rng)  # first try the scene as it is
        handles = []
        for _, box, _ in drawn:
            poly = footprint(np.asarray(box))
            if not s.placer.is_free(poly, 0.3):
                break
            handles.append(s.placer.add(poly))
        boxes = np.array([box for _, box, _ in drawn], dtype=np.float64).reshape(-1, 7)
        result = None
        if len(handles) == len(drawn):
            result = _evaluate(s, start, views, drawn, boxes)
        if result is not None:
            return drawn, {**result, "occluder_attempts": attempt + 1}
        for h in handles:
            s.placer.set_active(h, False)
    base = start.occlusion(np.zeros((0, 7)))
    raise OccluderError(
        f"no occluder layout put the target occlusion in [{lo}, {hi}] with a viewpoint "
        f"{c.min_view_improvement} less occluded within {c.better_view_radius_m} m after "
        f"{c.max_occluder_attempts} attempts (occlusion without occluders: {base:.2f}); widen "
        "target_occlusion_range, lower min_view_improvement or raise max_occluder_attempts"
    )


def _evaluate(
    s: OccluderSearch,
    start: _View,
    views: list[_View],
    drawn: list[Occluder],
    boxes: np.ndarray,
) -> dict[str, Any] | None:
    c = s.config
    lo, hi = c.target_occlusion_range
    occ = start.occlusion(boxes)
    if not lo <= occ <= hi:
        return None
    best = (float(start.origin[0]), float(start.origin[1]), occ)
    if c.min_view_improvement > 0.0:
        polys = [footprint(b) for b in boxes]
        free = [v for v in views if not any(convex_overlap(v.footprint, p, 0.2) for p in polys)]
        scores = [v.occlusion(boxes) for v in free]
        if not scores or min(scores) > occ - c.min_view_improvement:
            return None
        v = free[int(np.argmin(scores))]
        best = (float(v.origin[0]), float(v.origin[1]), float(min(scores)))
    # Appearance does not matter for the ray test; the generator colours the final objects.
    extra = tuple(
        SceneObject(f"occluder_{i}", kind, box, (0.5, 0.5, 0.5), "car_paint", shape)
        for i, (kind, box, shape) in enumerate(drawn)
    )
    world = World(replace(s.scene, objects=s.scene.objects + extra))
    target = s.scene.objects[s.scene.target_index].box_array
    exact = occlusion_ratio(world, start.origin, target, s.scene.target_index)
    if not lo <= exact <= hi:
        return None
    best_exact = occlusion_ratio(
        world, np.array([best[0], best[1], start.origin[2]]), target, s.scene.target_index
    )
    return {"target_occlusion_start": exact, "best_view": [best[0], best[1], best_exact]}
