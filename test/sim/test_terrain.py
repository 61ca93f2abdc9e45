"""Sloped ground: the height field, standing on it, draping the world over it, scene files."""

from __future__ import annotations

import numpy as np
import pytest

from sim.generator import generate_scene
from sim.scenarios import ScenarioConfig
from sim.scene import Scene, SceneError
from sim.terrain import Terrain, TerrainError, surface_frame
from sim.world import World

SLOPE = Terrain(grade=0.05, grade_change_per_m=0.0004, x_ref_m=20.0, crown=0.02,
                crown_half_width_m=9.5)  # fmt: skip


@pytest.mark.parametrize(("x", "y"), [(20.0, 0.0), (50.0, 3.0), (-10.0, -12.0), (80.0, 9.5)])
def test_height_follows_grade_vertical_curve_and_crown(x, y) -> None:
    dx = x - 20.0
    expected = 0.05 * dx + 0.5 * 0.0004 * dx**2 - 0.02 * min(abs(y), 9.5)
    assert float(SLOPE.height(x, y)) == pytest.approx(expected, abs=1e-12)


def test_surface_frame_stands_on_the_ground_along_its_normal() -> None:
    T = surface_frame(SLOPE, 50.0, 3.0, 0.3)
    np.testing.assert_allclose(T[:3, :3] @ T[:3, :3].T, np.eye(3), atol=1e-12)
    assert T[2, 3] == pytest.approx(float(SLOPE.height(50.0, 3.0)))
    # Finite differences of the height field lie in the frame's xy plane (z is the normal).
    h = 1e-4
    for d in (np.array([h, 0.0]), np.array([0.0, h])):
        p = np.array([50.0, 3.0]) + d
        step = np.array([*d, float(SLOPE.height(*p) - SLOPE.height(50.0, 3.0))])
        assert abs(step @ T[:3, 2]) < 1e-8


def test_world_drapes_the_road_over_the_terrain() -> None:
    scene = generate_scene(
        ScenarioConfig(grade_range=(0.06, 0.06), crown_range=(0.02, 0.02), has_target=False,
                       parked_occupancy=0.0, num_moving_vehicles=0, pedestrians_per_100m=0.0,
                       cyclists_per_100m=0.0, furniture_per_100m=0.0, clutter_per_100m=0.0,
                       trees_per_100m=0.0, poles_per_100m=0.0, fences_per_100m=0.0,
                       bushes_per_100m=0.0),
        seed=1,
    )  # fmt: skip
    assert not scene.terrain.is_flat
    xs = np.array([10.0, 40.0, 90.0])
    ys = np.array([-2.0, 4.0, 0.5])
    t, _ = World(scene).cast(np.stack([xs, ys, np.full(3, 50.0)], 1), np.tile([0, 0, -1.0], (3, 1)))
    ground = 50.0 - t
    # The road box's top is 0 on flat ground; markings add 8 mm where a line is painted.
    np.testing.assert_allclose(ground, scene.terrain.height(xs, ys), atol=0.012)


def test_objects_are_lifted_onto_the_surface_and_movers_stay_on_it() -> None:
    scene = generate_scene(ScenarioConfig(grade_range=(0.05, 0.05), has_target=False), seed=2)
    for obj in scene.objects:
        if obj.is_vehicle:
            bottom = obj.box[2] - 0.5 * obj.box[5]
            assert bottom == pytest.approx(float(scene.terrain.height(*obj.box[:2])), abs=1e-9)
    later = scene.at_time(7.0)
    for obj in later.objects:
        if obj.speed_mps:
            bottom = obj.box[2] - 0.5 * obj.box[5]
            assert bottom == pytest.approx(float(later.terrain.height(*obj.box[:2])), abs=1e-9)


def test_scene_files_keep_the_terrain_and_old_files_load_flat(tmp_path, make_scene) -> None:
    scene = make_scene([("b", "building", (5, 5, 1, 2, 2, 2, 0))], terrain=SLOPE)
    assert Scene.load(scene.save(tmp_path / "s.yaml")) == scene
    flat = make_scene([("b", "building", (5, 5, 1, 2, 2, 2, 0))])
    assert "terrain" not in flat.to_dict()  # files of flat scenes are unchanged
    data = scene.to_dict()
    data["terrain"]["grade"] = 0.5
    with pytest.raises(SceneError, match="grade"):
        Scene.from_dict(data)


@pytest.mark.parametrize("kwargs", [{"grade": 0.3}, {"crown": -0.01}, {"x_ref_m": np.nan}])
def test_bad_terrain_values_name_the_field(kwargs) -> None:
    with pytest.raises(TerrainError, match=next(iter(kwargs))):
        Terrain(**kwargs)
