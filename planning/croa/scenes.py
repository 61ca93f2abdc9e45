"""Small seeded street scenes for CROA's tests and plots (arXiv 2412.18453's multi-lane urban
setting, simplified). The benchmark scenes come from the simulator (sim/); these exist so the
planner can be exercised without it.

Layout (world frame, metres): a street along +x; the robot drives in the lane y = 0 facing +x;
a parking lane at y = -3.4 and an opposite lane at y = +3.5; building blocks beyond |y| = 7.
The target (a car) is parked ahead on either side; occluders (cars, vans, trucks) stand near the
line of sight between the robot and the target, other vehicles are parked anywhere. Boxes never
overlap, the robot starts at least ``min_clearance_m + 0.3`` from everything, and a layout is
kept only if moving can reveal the target (``random_scene``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from planning.croa.config import CroaConfig
from planning.croa.occlusion import exact_occlusion
from planning.croa.polygons import rectangle_vertices, signed_distance
from planning.croa.types import PlanObservation, RobotState

_SPACING_M = 0.3  # exact-occlusion sample spacing of the layout check (fixed: scenes must not
# change with planner settings)
# length, width, height (m) of the vehicle classes used here
_SIZES = {"car": (4.5, 1.9, 1.5), "van": (5.2, 2.1, 2.3), "truck": (8.0, 2.5, 3.4)}


class SceneError(ValueError):
    """A scene could not be generated with the requested settings."""


@dataclass(frozen=True, eq=False)
class Scene:
    """A planning scene: robot start, target box [7], obstacle boxes [K, 7] (world frame)."""

    name: str
    robot: RobotState
    target_box: np.ndarray  # [7]
    obstacle_boxes: np.ndarray  # [K, 7]

    def observation(self, stamp_ns: int = 0, robot: RobotState | None = None) -> PlanObservation:
        return PlanObservation.from_boxes(
            stamp_ns, robot or self.robot, self.target_box, self.obstacle_boxes
        )


def _box(x: float, y: float, kind: str, yaw: float = 0.0) -> np.ndarray:
    length, width, height = _SIZES[kind]
    return np.array([x, y, 0.5 * height, length, width, height, yaw])


def _gap(a: np.ndarray, b: np.ndarray) -> float:  # BEV distance of two boxes [7]
    pa = rectangle_vertices(a[:2], np.array(a[6]), a[3], a[4])
    pb = rectangle_vertices(b[:2], np.array(b[6]), b[3], b[4])
    return float(signed_distance(pa, pb)[0])


def random_scene(
    seed: int,
    num_occluders: int = 2,
    num_parked: int = 2,
    config: CroaConfig | None = None,
    min_improvement: float = 0.3,
    max_attempts: int = 300,
) -> Scene:
    """A seeded street scene (module docstring) whose target is at least half occluded from the
    start while some lidar position within ``0.7 reach`` of the start (the distance one horizon
    can cover) sees it at least ``min_improvement`` less occluded (exact occlusion).

    Raises:
        SceneError: no such layout within ``max_attempts`` tries.
    """
    cfg = config or CroaConfig()
    rng = np.random.default_rng(seed)
    for _ in range(max_attempts):
        scene = _layout(rng, num_occluders, num_parked, cfg)
        if scene is not None and _has_better_view(scene, cfg, min_improvement):
            return Scene(f"street-{seed}", scene.robot, scene.target_box, scene.obstacle_boxes)
    raise SceneError(f"seed {seed}: no layout with a better view in {max_attempts} tries")


def _layout(
    rng: np.random.Generator, num_occluders: int, num_parked: int, cfg: CroaConfig
) -> Scene | None:
    robot = RobotState(
        0.0,
        float(rng.uniform(-0.3, 0.3)),
        float(rng.uniform(-0.1, 0.1)),
        float(rng.uniform(0.0, 1.0)),
    )
    robot_box = np.array(
        [robot.x_m, robot.y_m, 0.8, cfg.robot.length_m, cfg.robot.width_m, 1.6, robot.yaw_rad]
    )
    target = _box(float(rng.uniform(12.0, 18.0)), float(rng.choice([-3.4, 3.5])), "car")
    boxes = [
        np.array([x, s * 9.5, 5.0, 18.0, 4.0, 10.0, 0.0])
        for x in (-10.0, 10.0, 30.0)
        for s in (-1.0, 1.0)
    ]
    for k in range(num_occluders + num_parked):
        box = _place(rng, k < num_occluders, target, [target, *boxes], robot_box, cfg)
        if box is None:
            return None
        boxes.append(box)
    return Scene("street", robot, target, np.array(boxes))


def _place(
    rng: np.random.Generator,
    occluder: bool,
    target: np.ndarray,  # [7]
    others: list[np.ndarray],
    robot_box: np.ndarray,  # [7]
    cfg: CroaConfig,
    tries: int = 30,
) -> np.ndarray | None:
    """A vehicle box [7] clear of the others and of the robot, or None."""
    for _ in range(tries):
        kind = str(rng.choice(["car", "van", "truck"], p=[0.4, 0.3, 0.3]))
        if occluder:  # near the line of sight from the start to the target
            frac = rng.uniform(0.3, 0.8)
            y = float(np.clip(frac * target[1] + rng.normal(0.0, 1.0), -3.4, 3.5))
            box = _box(frac * target[0], y, kind, float(rng.normal(0.0, 0.05)))
        else:
            box = _box(float(rng.uniform(-5, 30)), float(rng.choice([-3.4, 3.5])), kind)
        if min(_gap(box, o) for o in others) >= 0.6 and (
            _gap(box, robot_box) >= cfg.min_clearance_m + 0.3
        ):
            return box
    return None


def _has_better_view(scene: Scene, cfg: CroaConfig, min_improvement: float) -> bool:
    obs = scene.observation()
    start = np.array([[scene.robot.x_m, scene.robot.y_m, cfg.robot.lidar_z_m]])
    radius = 0.7 * cfg.robot.max_speed_mps * cfg.horizon_steps * cfg.dt_s
    ring = np.linspace(0.0, 2.0 * np.pi, 16, endpoint=False)
    probes = np.vstack(
        [
            start[:, :2] + r * np.stack([np.cos(ring), np.sin(ring)], 1)
            for r in (0.5 * radius, radius)
        ]
    )
    origins = np.hstack([probes, np.full((len(probes), 1), cfg.robot.lidar_z_m)])
    here = exact_occlusion(start, obs.target_box, obs.obstacles, _SPACING_M)[0]
    best = exact_occlusion(origins, obs.target_box, obs.obstacles, _SPACING_M).min()
    return bool(here >= 0.5 and best <= here - min_improvement)


def boxed_in_scene(gap_m: float = 0.15, config: CroaConfig | None = None) -> Scene:
    """The robot at rest with walls ``gap_m`` from its footprint on all four sides."""
    cfg = config or CroaConfig()
    length, width = cfg.robot.length_m, cfg.robot.width_m
    t = 0.5
    walls = np.array(
        [
            [0.5 * length + gap_m + 0.5 * t, 0.0, 1.5, t, width + 4.0, 3.0, 0.0],
            [-0.5 * length - gap_m - 0.5 * t, 0.0, 1.5, t, width + 4.0, 3.0, 0.0],
            [0.0, 0.5 * width + gap_m + 0.5 * t, 1.5, length + 4.0, t, 3.0, 0.0],
            [0.0, -0.5 * width - gap_m - 0.5 * t, 1.5, length + 4.0, t, 3.0, 0.0],
        ]
    )
    target = _box(15.0, 0.0, "car")
    return Scene("boxed-in", RobotState(0.0, 0.0, 0.0, 0.0), target, walls)
