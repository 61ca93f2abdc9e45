"""Shared CROA fixtures: planners are compiled once per session (cvxpy canonicalization takes
about a second each) and seeded scenes are generated once."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from planning.croa.baselines import (
    GreedyNbvPlanner,
    ObcaOffsetPlanner,
    StayPlanner,
    StraightPlanner,
)
from planning.croa.config import CroaConfig
from planning.croa.planner import CroaPlanner
from planning.croa.polygons import rectangle_vertices
from planning.croa.scenes import Scene, random_scene

SCENE_SEEDS = (0, 1, 2, 3)  # test_planner.py parametrizes over the same seeds


@pytest.fixture(scope="session")
def config() -> CroaConfig:
    return CroaConfig()


@pytest.fixture(scope="session")
def croa(config: CroaConfig) -> CroaPlanner:
    return CroaPlanner(config)


@pytest.fixture(scope="session")
def planners(config: CroaConfig, croa: CroaPlanner) -> dict[str, object]:
    """Every planner of the CROA interface, by name."""
    others = [StayPlanner(config), StraightPlanner(config), GreedyNbvPlanner(config),
              ObcaOffsetPlanner(config)]  # fmt: skip
    return {p.name: p for p in [croa, *others]}


@pytest.fixture(scope="session")
def scenes() -> dict[int, Scene]:
    return {seed: random_scene(seed) for seed in SCENE_SEEDS}


def _footprint_polygon(base_state: np.ndarray, config: CroaConfig) -> np.ndarray:
    """Footprint [4, 2] of a base_link state, written independently of the library: base_link
    is the footprint centre (docs/conventions.md)."""
    r = config.robot
    return rectangle_vertices(np.asarray(base_state[:2]), np.array(base_state[2]), r.length_m,
                              r.width_m)  # fmt: skip


def _box_polygon(box: np.ndarray) -> np.ndarray:  # [7] -> [4, 2]
    return rectangle_vertices(box[:2], np.array(box[6]), box[3], box[4])


def _segments_cross(p1: np.ndarray, p2: np.ndarray, q1: np.ndarray, q2: np.ndarray) -> bool:
    def orient(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> float:
        return float((b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0]))

    d1, d2 = orient(q1, q2, p1), orient(q1, q2, p2)
    d3, d4 = orient(p1, p2, q1), orient(p1, p2, q2)
    if d1 == d2 == d3 == d4 == 0.0:  # collinear: cross iff the bounding boxes meet
        lo, hi = np.minimum(p1, p2), np.maximum(p1, p2)
        return bool(np.all(np.maximum(q1, q2) >= lo) and np.all(np.minimum(q1, q2) <= hi))
    return d1 * d2 <= 0.0 and d3 * d4 <= 0.0


def _inside(point: np.ndarray, poly: np.ndarray) -> bool:  # CCW convex polygon
    edges = np.roll(poly, -1, axis=0) - poly
    rel = point - poly
    return bool(np.all(edges[:, 0] * rel[:, 1] - edges[:, 1] * rel[:, 0] >= 0.0))


def _point_segment(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    t = np.clip(np.dot(p - a, b - a) / np.dot(b - a, b - a), 0.0, 1.0)
    return float(np.linalg.norm(p - (a + t * (b - a))))


def _polygon_gap(p: np.ndarray, q: np.ndarray) -> float:
    """Distance between convex polygons, 0 when they touch or overlap: a plain reference
    (edge crossings, containment, vertex-to-edge distances), independent of polygons.py."""
    n, m = len(p), len(q)
    for i in range(n):
        for j in range(m):
            if _segments_cross(p[i], p[(i + 1) % n], q[j], q[(j + 1) % m]):
                return 0.0
    if _inside(p[0], q) or _inside(q[0], p):
        return 0.0
    d = [_point_segment(v, q[j], q[(j + 1) % m]) for v in p for j in range(m)]
    d += [_point_segment(v, p[i], p[(i + 1) % n]) for v in q for i in range(n)]
    return min(d)


@pytest.fixture(scope="session")
def geometry_reference() -> SimpleNamespace:
    """Independent geometry helpers: polygon_gap, footprint_polygon, box_polygon."""
    return SimpleNamespace(polygon_gap=_polygon_gap, footprint_polygon=_footprint_polygon,
                           box_polygon=_box_polygon)  # fmt: skip
