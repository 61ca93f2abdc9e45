"""Vehicle bodies and actors: sizes from the cited statistics, meshes inside their boxes with
outward normals, glass and tyres where a real vehicle has them, and what a lidar sees of them."""

from __future__ import annotations

import numpy as np
import pytest

from geometry.transforms import pose_to_transform
from sim.actors import actor_mesh
from sim.lidar import Lidar, LidarConfig
from sim.materials import ACTOR_SHAPES, BODY_SHAPES, CLASSES, MATERIAL_NAMES
from sim.scene import SceneObject
from sim.vehicles import BODY_TYPES, SIZE_STATS, body_mesh, sample_body
from sim.world import World

GROUND = ("ground", "ground", (0, 0, -0.05, 200, 200, 0.1, 0))
EPS_M = 1e-9  # meshes are built inside the box up to float rounding


@pytest.mark.parametrize("kind", CLASSES)
def test_sampled_sizes_stay_in_their_body_type_bounds(kind) -> None:
    rng = np.random.default_rng(0)
    for _ in range(300):
        body, *dims = sample_body(rng, kind)
        assert body in dict(BODY_TYPES[kind])
        for d, (_, _, lo, hi) in zip(dims, SIZE_STATS[body], strict=True):
            assert lo <= d <= hi


def test_car_sizes_match_the_published_class_statistics() -> None:
    rng = np.random.default_rng(1)
    cars = np.array([sample_body(rng, "car")[1:] for _ in range(4000)])
    # Module docstring: the car mixture's mean length lies between KITTI's (3.88 m) and
    # nuScenes' (4.61 m) means and every car is 3.5-5.1 m long (the issue's 3.5-5.0 m plus
    # large SUVs); 4000 draws put the sample mean within 0.02 m of the mixture's 4.44 m.
    assert 3.88 < cars[:, 0].mean() < 4.61
    assert cars[:, 0].min() >= 3.5 and cars[:, 0].max() <= 5.1
    assert abs(cars[:, 0].mean() - 4.44) < 0.03
    # Larger cars are wider: the shared size factor correlates length and width.
    assert np.corrcoef(cars[:, 0], cars[:, 1])[0, 1] > 0.3


def _outward(vertices: np.ndarray, tris: np.ndarray) -> float:
    """Share of the area whose normal points away from the mesh's vertical axis or centre."""
    a, b, c = vertices[tris[:, 0]], vertices[tris[:, 1]], vertices[tris[:, 2]]
    n = np.cross(b - a, c - a)
    centre = (a + b + c) / 3.0
    away = np.einsum("ij,ij->i", n, centre - vertices.mean(axis=0)) > 0
    area = 0.5 * np.linalg.norm(n, axis=1)
    return float(area[away].sum() / area.sum())


@pytest.mark.parametrize("body", BODY_SHAPES)
def test_body_mesh_fills_its_box_with_glass_tyres_and_outward_faces(body) -> None:
    length, width, height = (s[0] for s in SIZE_STATS[body])
    v, t, m = body_mesh(body, length, width, height)
    half = 0.5 * np.array([length, width, height])
    assert np.all(np.abs(v) <= half + EPS_M)
    np.testing.assert_allclose(v.max(axis=0) - v.min(axis=0), 2 * half, atol=0.05)  # touches
    names = {MATERIAL_NAMES[i] for i in np.unique(m) if i >= 0}
    assert {"glass", "tire_rubber", "retroreflector"} <= names
    # Normals face outwards (checked against the centre: true for almost all of a body).
    assert _outward(v, t) > 0.8


@pytest.mark.parametrize("shape", ACTOR_SHAPES)
def test_actor_meshes_stay_in_their_box(shape) -> None:
    dims = {"pedestrian": (0.7, 0.6, 1.75), "cyclist": (1.75, 0.6, 1.75), "fence": (6, 0.06, 1.5)}
    length, width, height = dims.get(shape, (1.7, 0.6, 1.0))
    v, t, m = actor_mesh(shape, length, width, height)
    assert np.all(np.abs(v) <= 0.5 * np.array([length, width, height]) + EPS_M)
    assert len(t) == len(m) and t.max() < len(v)


def test_sedan_seen_from_the_side_shows_hood_cabin_and_wheels(make_scene) -> None:
    car = SceneObject(
        "car", "car", (0, 8, 0.725, 4.7, 1.81, 1.45, 0), (0.6, 0, 0), "car_paint", "sedan"
    )
    world = World(make_scene([GROUND, car]))
    cfg = LidarConfig(
        beams=64,
        vertical_fov_down_deg=-15,
        vertical_fov_up_deg=5,
        azimuth_resolution_deg=0.1,
        range_noise_std_m=0.0,
        dropout_prob=0.0,
    )
    scan = Lidar(cfg).scan(world, pose_to_transform(0, 0, 1.6, 0))
    on = scan.points[scan.object_index == 1]
    z = on[:, 2] + 1.6  # height above the ground
    x = on[:, 0]
    # The roof (cabin) stands over the middle; the ends are lower (hood, trunk).
    assert z[np.abs(x) < 0.5].max() > 1.35 and z[np.abs(x) > 1.9].max() < 1.15
    # Wheels: level rays 0.3 m above the road hit tyre rubber at the axles (sedan overhangs
    # 0.90 m front, 1.05 m rear) and pass under the body between them (to the far tyres or
    # the axle blocks, never the paint above them).
    x = np.linspace(-2.2, 2.2, 45)
    dirs = np.stack([x, np.full_like(x, 8.0), np.zeros_like(x)], axis=1)
    hits = world.cast_hits(np.array([0.0, 0.0, 0.3]), dirs)
    tyre = hits.material == MATERIAL_NAMES.index("tire_rubber")
    assert tyre[np.abs(x - (2.35 - 0.90)) < 0.15].all()
    assert tyre[np.abs(x - (-2.35 + 1.05)) < 0.15].all()


def test_glass_lets_most_beams_through_to_the_far_side(make_scene) -> None:
    car = SceneObject(
        "car", "car", (0, 6, 0.74, 4.6, 1.86, 1.7, 0), (0.6, 0, 0), "car_paint", "suv"
    )
    wall = ("wall", "building", (0, 12, 2, 20, 1, 4, 0))
    world = World(make_scene([GROUND, car, wall]))
    # Rays through the side windows (height 1.3 m, level): with see-through, few return from
    # the car and most reach the wall behind it.
    cfg = LidarConfig(beams=16, vertical_fov_down_deg=-0.5, vertical_fov_up_deg=0.5,
                      azimuth_resolution_deg=0.1, range_noise_std_m=0.0, dropout_prob=0.0,
                      see_through=True)  # fmt: skip
    scan = Lidar(cfg).scan(world, pose_to_transform(0, 0, 1.3, 0), np.random.default_rng(0))
    toward = np.abs(np.arctan2(scan.points[:, 1], scan.points[:, 0]) - np.pi / 2) < 0.12
    hit = scan.object_index[toward]
    # Glass returns 8 % of beams per pane, two panes: 85 % of the beams through the windows
    # reach the wall; the B pillar (12 cm of the 1.4 m window stretch in view) holds some back.
    assert np.mean(hit == 2) > 0.7
    opaque = Lidar(LidarConfig(**{**cfg.to_dict(), "see_through": False}))
    blocked = opaque.scan(world, pose_to_transform(0, 0, 1.3, 0), np.random.default_rng(0))
    toward = np.abs(np.arctan2(blocked.points[:, 1], blocked.points[:, 0]) - np.pi / 2) < 0.12
    assert np.mean(blocked.object_index[toward] == 1) > 0.95
