"""Scenario settings and the seeded scene generator: determinism, occlusion range (verified by
raycasting), the better viewpoint nearby, non-overlapping placement, knobs and errors."""

from __future__ import annotations

import functools
import itertools

import numpy as np
import pytest

from sim.generator import GeneratorError, generate_scene, load_or_generate
from sim.materials import CLASSES
from sim.placement import convex_overlap, footprint
from sim.scenarios import ScenarioConfig, ScenarioError, list_scenarios, load_scenario
from sim.truth import occlusion_ratio
from sim.world import World

CASES = [
    (name, seed) for name in ("urban-clutter", "occluded-target", "open-road") for seed in (0, 1)
]
VIEW_CASES = [c for c in CASES if c[0] != "open-road"]  # open-road asks for no better viewpoint


@functools.cache
def generated(name: str, seed: int):
    return load_scenario(name).config, generate_scene(name, seed)


@pytest.fixture(scope="module", params=CASES, ids=[f"{n}-{s}" for n, s in CASES])
def case(request):
    return generated(*request.param)


def test_shipped_scenarios_are_listed() -> None:
    assert {"urban-clutter", "occluded-target", "open-road"} <= set(list_scenarios())


def test_same_seed_same_scene_other_seed_other_scene() -> None:
    a, b = generate_scene("occluded-target", 3), generate_scene("occluded-target", 3)
    assert a == b and a.to_dict() == b.to_dict()
    assert generate_scene("occluded-target", 4).to_dict() != a.to_dict()


def test_target_occlusion_from_start_is_in_the_requested_range(case) -> None:
    config, scene = case
    x, y, _ = scene.ego_start
    origin = np.array([x, y, config.sensor_height_m])
    target = scene.objects[scene.target_index]
    occ = occlusion_ratio(World(scene.static()), origin, target.box_array, scene.target_index)
    lo, hi = config.target_occlusion_range
    assert lo <= occ <= hi
    # The generator stored the same computation (same rays, same sums): equal to rounding.
    assert occ == pytest.approx(scene.generator["target_occlusion_start"], abs=1e-12)


@pytest.mark.parametrize(("name", "seed"), VIEW_CASES)
def test_a_better_viewpoint_exists_within_the_radius(name, seed) -> None:
    config, scene = generated(name, seed)
    assert config.min_view_improvement >= 0.3
    bx, by, best = scene.generator["best_view"]
    ex, ey, _ = scene.ego_start
    assert np.hypot(bx - ex, by - ey) <= config.better_view_radius_m
    assert best <= scene.generator["target_occlusion_start"] - config.min_view_improvement
    world = World(scene.static())
    target = scene.objects[scene.target_index]
    origin = np.array([bx, by, config.sensor_height_m])
    # Same computation as the generator's verification: equal to float64 rounding.
    assert occlusion_ratio(world, origin, target.box_array, scene.target_index) == pytest.approx(
        best, abs=1e-12
    )
    robot = footprint(np.array([bx, by, 0.8, 4.5, 1.9, 1.6, 0.0]))
    boxes, _ = scene.static().obstacle_boxes()
    assert not any(convex_overlap(robot, footprint(b)) for b in boxes)


def test_placed_objects_do_not_overlap(case) -> None:
    _, scene = case
    placed = [
        o
        for o in scene.objects
        if o.is_vehicle or o.kind in ("bin", "barrier", "scooter", "pole", "tree_trunk")
    ]
    polys = [footprint(o.box_array) for o in placed]
    for (a, pa), (b, pb) in itertools.combinations(zip(placed, polys, strict=True), 2):
        assert not convex_overlap(pa, pb), f"{a.name} overlaps {b.name}"


def test_occlusion_knob_moves_the_target_occlusion() -> None:
    heavy = ScenarioConfig(target_occlusion_range=(0.85, 0.98), min_view_improvement=0.3)
    light = ScenarioConfig(target_occlusion_range=(0.0, 0.1), min_view_improvement=0.0)
    for seed in (0, 1):
        assert generate_scene(heavy, seed).generator["target_occlusion_start"] >= 0.85
        assert generate_scene(light, seed).generator["target_occlusion_start"] <= 0.1


@pytest.mark.parametrize("seed", [0, 1])
def test_target_across_the_street_is_hidden_by_double_parking_or_roadworks(seed) -> None:
    config = ScenarioConfig(target_side="left")
    scene = generate_scene(config, seed)
    target = scene.objects[scene.target_index]
    assert target.box[1] > 0  # left parking lane
    occ = scene.generator["target_occlusion_start"]
    assert 0.5 <= occ <= 0.95
    assert scene.generator["best_view"][2] <= occ - config.min_view_improvement


def test_clutter_knob_controls_sidewalk_clutter() -> None:
    def clutter(density: float) -> int:
        scene = generate_scene(
            ScenarioConfig(
                clutter_per_100m=density,
                min_view_improvement=0.0,
                target_occlusion_range=(0.0, 1.0),
            ),
            0,
        )
        return sum(o.kind in ("bin", "barrier", "scooter") for o in scene.objects)

    assert clutter(0.0) == 0 < clutter(20.0) < clutter(80.0)


def test_scenes_hold_every_vehicle_class() -> None:
    kinds = {o.kind for seed in range(3) for o in generate_scene("urban-clutter", seed).objects}
    assert set(CLASSES) <= kinds


def test_impossible_requirements_raise_generator_error() -> None:
    config = ScenarioConfig(
        target_occlusion_range=(0.99, 1.0), min_view_improvement=0.95, max_occluder_attempts=3
    )
    with pytest.raises(GeneratorError, match="widen target_occlusion_range"):
        generate_scene(config, 0)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"lanes_per_direction": 0}, "lanes_per_direction"),
        ({"lanes_per_direction": 2.5}, "lanes_per_direction"),
        ({"target_occlusion_range": (0.9, 0.5)}, "target_occlusion_range"),
        ({"target_occlusion_range": (0.5, 1.5)}, "target_occlusion_range"),
        ({"parked_occupancy": -0.1}, "parked_occupancy"),
        ({"class_weights": (0.0, 0.0, 0.0, 0.0)}, "class_weights"),
        ({"target_class": "tank"}, "target_class"),
        ({"target_side": "middle"}, "target_side"),
        ({"ego_lane": 2}, "ego_lane"),
        ({"ego_start_x_m": 130.0}, "ego_start_x_m"),
        ({"clutter_per_100m": float("nan")}, "clutter_per_100m"),
    ],
)
def test_bad_settings_raise_scenario_error_naming_the_field(kwargs, field) -> None:
    with pytest.raises(ScenarioError, match=field):
        ScenarioConfig(**kwargs)


def test_unknown_fields_and_names_raise_scenario_error(tmp_path) -> None:
    with pytest.raises(ScenarioError, match="clutter_density"):
        ScenarioConfig.from_dict({"clutter_density": 3})
    with pytest.raises(ScenarioError, match=r"known: .*urban-clutter"):
        generate_scene("no-such-scenario")
    bad = tmp_path / "s.yaml"
    bad.write_text("name: x\n")
    with pytest.raises(ScenarioError, match="config"):
        load_scenario(bad)


def test_load_or_generate_reads_scene_files_and_scenario_files(tmp_path) -> None:
    scene = generate_scene("open-road", 2)
    assert load_or_generate(scene.save(tmp_path / "scene.yaml")) == scene
    with pytest.raises(ScenarioError, match="drop the seed"):
        load_or_generate(tmp_path / "scene.yaml", seed=1)
    scenario_file = tmp_path / "mine.yaml"
    scenario_file.write_text(
        "name: mine\nconfig:\n  target_occlusion_range: [0.0, 1.0]\n  min_view_improvement: 0.0\n"
    )
    assert load_or_generate(scenario_file, 5).name == "mine"


def test_realistic_scenes_have_vehicle_bodies_and_every_kind_of_negative() -> None:
    config = ScenarioConfig(
        pedestrians_per_100m=20.0,
        cyclists_per_100m=10.0,
        furniture_per_100m=20.0,
        fences_per_100m=5.0,
        bushes_per_100m=10.0,
    )
    scene = generate_scene(config, seed=4)
    shapes = {o.shape for o in scene.objects if o.is_vehicle}
    assert shapes <= {"hatchback", "sedan", "suv", "van", "truck", "bus"} and len(shapes) >= 3
    kinds = {o.kind for o in scene.objects}
    assert {"pedestrian", "cyclist", "bench", "sign", "bush"} <= kinds
    assert {"fence", "hedge"} & kinds and {"bollard", "cone", "bicycle"} & kinds
    # Nothing stands on anything else: surfaces, rows of touching buildings, tree crowns and
    # sign plates (hanging above their trunk or pole) aside.
    skip = ("ground", "road", "sidewalk", "marking", "building", "tree_crown", "sign")
    polys = [footprint(o.box_array) for o in scene.objects if o.kind not in skip]
    assert not any(convex_overlap(a, b) for a, b in itertools.combinations(polys, 2))


def test_box_vehicles_and_scenes_without_vehicles_are_available() -> None:
    boxes = generate_scene(ScenarioConfig(vehicle_shapes="box"), seed=4)
    assert {o.shape for o in boxes.objects if o.is_vehicle} == {"box"}
    empty = generate_scene(
        ScenarioConfig(has_target=False, parked_occupancy=0.0, num_moving_vehicles=0), seed=4
    )
    assert empty.target_name is None and not any(o.is_vehicle for o in empty.objects)


@pytest.mark.parametrize(
    "kwargs", [{"vehicle_shapes": "blobs"}, {"kerb_height_m": 0.5}, {"grade_range": (0.2, 0.3)}]
)
def test_new_knobs_are_validated(kwargs) -> None:
    with pytest.raises(ScenarioError, match=next(iter(kwargs))):
        ScenarioConfig(**kwargs)
