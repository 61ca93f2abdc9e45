"""Roadside walls, planters, hedges and kerb extensions (sim/roadside.py): where they stand,
what the lidar sees of them, that they are never vehicles, and that a seed fixes them."""

from __future__ import annotations

import functools
from dataclasses import replace

import numpy as np
import pytest

from sim.generator import generate_scene
from sim.lidar import Lidar, LidarConfig
from sim.roadside import HEIGHT_M, RUN_M, SETBACK_M
from sim.scenarios import ScenarioConfig, ScenarioError, load_scenario
from sim.truth import ground_truth
from sim.variation import Variation, VariationError, randomise_scenario
from sim.world import World

# A street without vehicles (the scan then sees only negatives) and many roadside runs.
CONFIG = ScenarioConfig(
    has_target=False,
    parked_occupancy=0.0,
    num_moving_vehicles=0,
    roadside_per_100m=12.0,
    sidewalk_width_m=4.5,
)


@functools.cache
def scene(seed: int, **changes: object):
    return generate_scene(replace(CONFIG, **changes), seed)


def _runs(s, kind: str) -> list[np.ndarray]:
    return [o.box_array for o in s.objects if o.kind == kind]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_runs_stand_beside_the_road_at_car_height(seed) -> None:
    s, c = scene(seed), CONFIG
    kerb = c.lanes_per_direction * c.lane_width_m + c.parking_lane_width_m
    walls, planters = _runs(s, "wall"), _runs(s, "planter")
    assert walls and planters
    for box in walls + planters:
        top = box[2] + 0.5 * box[5]
        assert top <= c.kerb_height_m + HEIGHT_M[1] + 1e-9
        assert RUN_M[0] - 1e-9 <= box[3] <= RUN_M[1] + 1e-9
        face = abs(box[1]) - 0.5 * box[4] - kerb  # road-side face from the kerb
        assert SETBACK_M[0] - 1e-9 <= face <= SETBACK_M[1] + 1e-9
        assert abs(box[1]) + 0.5 * box[4] <= kerb + c.sidewalk_width_m  # on the sidewalk
    for box in walls:
        assert box[2] - 0.5 * box[5] == pytest.approx(c.kerb_height_m)  # on the sidewalk
        assert box[5] >= HEIGHT_M[0] - 1e-9
    # Kerb extensions: kerb-high islands in the parking lane, touching the kerb.
    islands = [b for b in _runs(s, "sidewalk") if b[3] < c.street_length_m]
    assert islands
    for box in islands:
        assert box[2] + 0.5 * box[5] == pytest.approx(c.kerb_height_m)
        assert abs(box[1]) + 0.5 * box[4] == pytest.approx(kerb)
        assert box[4] <= c.parking_lane_width_m


def test_lidar_returns_from_runs_lie_at_their_heights_and_label_no_vehicle() -> None:
    s = scene(0)
    world = World(s)
    x, y, _ = s.ego_start
    T = np.eye(4)
    T[:3, 3] = (x, y, 1.8)
    scan = Lidar(LidarConfig(beams=32, azimuth_resolution_deg=0.4)).scan(world, T)
    kinds = np.array([o.kind for o in s.objects])[scan.object_index]
    roadside = np.isin(kinds, ("wall", "planter"))
    assert roadside.sum() > 100
    z_road = scan.points[roadside, 2] + 1.8  # height above the road
    # Between the sidewalk (kerb height) and the runs' highest top.
    assert z_road.min() >= CONFIG.kerb_height_m - 0.01
    assert z_road.max() <= CONFIG.kerb_height_m + HEIGHT_M[1] + 0.01
    truth = ground_truth(world, T, scan)
    assert len(truth.labels) == 0 and (truth.point_object == -1).all()


def test_same_seed_same_runs_and_rate_zero_changes_nothing() -> None:
    assert generate_scene(CONFIG, 3) == generate_scene(CONFIG, 3)
    assert generate_scene(CONFIG, 4).to_dict() != generate_scene(CONFIG, 3).to_dict()
    base = load_scenario("urban-clutter").config
    assert base.roadside_per_100m == 0.0
    plain = generate_scene(base, 5)
    assert not {"wall", "planter"} & {o.kind for o in plain.objects}


def test_variation_draws_the_rate_last_and_only_when_asked() -> None:
    scenario = load_scenario("urban-clutter")
    plain = randomise_scenario(scenario, np.random.default_rng(7), Variation())
    asked = randomise_scenario(
        scenario, np.random.default_rng(7), Variation(roadside_range_per_100m=(4.0, 12.0))
    )
    assert plain.config.roadside_per_100m == 0.0
    assert 4.0 <= asked.config.roadside_per_100m <= 12.0
    assert replace(asked.config, roadside_per_100m=0.0) == plain.config


@pytest.mark.parametrize("rate", [-1.0, 60.0, float("nan")])
def test_rate_out_of_bounds_is_an_error(rate) -> None:
    with pytest.raises(ScenarioError, match="roadside_per_100m"):
        ScenarioConfig(roadside_per_100m=rate)


@pytest.mark.parametrize("lo_hi", [(5.0, 1.0), (-1.0, 2.0), (0.0, 80.0)])
def test_variation_range_out_of_bounds_is_an_error(lo_hi) -> None:
    with pytest.raises(VariationError, match="roadside_range_per_100m"):
        Variation(roadside_range_per_100m=lo_hi)
