"""Seeded generator of multi-lane urban street scenes (the CROA scenario, arXiv 2412.18453:
a target vehicle occluded by clutter in a multi-lane urban street).

First the fixed street (``sim/street.py``: lanes, road, sidewalks, markings, buildings). Then:
the target (parked in the parking lane ``target_side``, ahead of the ego), the ego start (lane
``ego_lane`` counted from the kerb, heading +x), parked vehicles, sidewalk clutter (bins,
barriers, scooters), trees and poles, all kept out of the ego's sight corridor to the target;
then occluders placed in that corridor until the target's occlusion from the ego start lands in
``target_occlusion_range`` (``sim/occluders.py``, verified by raycasting); last, moving
vehicles (one speed per lane, so they never overtake). Every random draw comes from one
``numpy.random.Generator`` seeded with ``seed``, in a fixed order: same config and seed, same
scene.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from sim.materials import CLASSES, VEHICLE_SIZE_RANGES_M
from sim.occluders import OccluderError, OccluderSearch, place_occluders
from sim.placement import Placer, convex_hull, footprint
from sim.scenarios import Scenario, ScenarioConfig, ScenarioError, load_scenario
from sim.scene import FORMAT as SCENE_FORMAT
from sim.scene import Lane, Scene, read_structured_file
from sim.street import KERB_HEIGHT_M, ObjectBuilder, build_layout, street_lanes
from sim.world import World

_MOVER_DRAWS = 20  # position draws per moving vehicle before leaving it out


class GeneratorError(ValueError):
    """The generator could not build a scene with the requested settings."""


def _parked(b: ObjectBuilder, c: ScenarioConfig, lanes: tuple[Lane, ...], placer: Placer) -> None:
    for lane in (ln for ln in lanes if ln.kind == "parking"):
        x = 2.0
        while x < c.street_length_m - 6.0:
            if b.rng.random() >= c.parked_occupancy:
                x += b.rng.uniform(5.0, 7.0)
                continue
            kind = b.vehicle_class(c.class_weights)
            yaw = (0.0 if lane.direction > 0 else math.pi) + b.rng.uniform(-0.04, 0.04)
            start = x if lane.direction > 0 else x + VEHICLE_SIZE_RANGES_M[kind][0][1]
            box = b.vehicle_box(kind, start, lane.center_y_m + b.rng.uniform(-0.15, 0.15), yaw)
            if box[0] + 0.5 * box[3] < c.street_length_m and placer.try_add(footprint(box), 0.4):
                b.add(kind, box, color=b.paint(), material="car_paint")
            x += box[3] + b.rng.uniform(0.8, 2.5)


def _sidewalk_items(b: ObjectBuilder, c: ScenarioConfig, placer: Placer) -> None:
    kerb = c.lanes_per_direction * c.lane_width_m + c.parking_lane_width_m
    top = KERB_HEIGHT_M
    for side in (-1.0, 1.0):
        per_side = c.street_length_m / 100.0
        for _ in range(int(b.rng.poisson(c.trees_per_100m * per_side))):
            x, diameter = b.rng.uniform(1.0, c.street_length_m - 1.0), b.rng.uniform(3.0, 4.5)
            y, crown_h = side * (kerb + 1.0), b.rng.uniform(3.0, 4.2)
            trunk = (x, y, top + 1.5, 0.35, 0.35, 3.0, 0.0)
            if placer.try_add(footprint(trunk), 0.3):
                b.add("tree_trunk", trunk, shape="cylinder")
                b.add(
                    "tree_crown",
                    (x, y, top + 2.6 + 0.5 * crown_h, diameter, diameter, crown_h, 0.0),
                    shape="ellipsoid",
                )
        for _ in range(int(b.rng.poisson(c.poles_per_100m * per_side))):
            height = b.rng.uniform(4.0, 8.0)
            pole = (
                b.rng.uniform(1.0, c.street_length_m - 1.0),
                side * (kerb + 0.4),
                top + 0.5 * height,
                0.25,
                0.25,
                height,
                0.0,
            )
            if placer.try_add(footprint(pole), 0.3):
                b.add("pole", pole, shape="cylinder")
        for _ in range(int(b.rng.poisson(c.clutter_per_100m * per_side))):
            kind = ("bin", "barrier", "scooter")[int(b.rng.choice(3, p=[0.4, 0.3, 0.3]))]
            size = {
                "bin": (0.6, 0.6, 1.05),
                "barrier": (2.0, 0.5, 1.0),
                "scooter": (1.7, 0.6, 1.1),
            }[kind]
            yaw = 0.0 if kind == "barrier" else float(b.rng.choice([0.0, 0.4, -0.4, 0.5 * math.pi]))
            y = side * (kerb + b.rng.uniform(0.6, c.sidewalk_width_m - 0.6))
            box = (b.rng.uniform(1.0, c.street_length_m - 1.0), y, top + 0.5 * size[2], *size, yaw)
            if placer.try_add(footprint(box), 0.2):
                b.add(kind, box)


def _moving(b: ObjectBuilder, c: ScenarioConfig, lanes: tuple[Lane, ...], placer: Placer) -> None:
    driving = [ln for ln in lanes if ln.kind == "driving"]
    speeds = [b.rng.uniform(*c.moving_speed_range_mps) for _ in driving]
    placed = 0
    for _ in range(_MOVER_DRAWS * c.num_moving_vehicles):  # a busy street may refuse some draws
        if placed == c.num_moving_vehicles:
            break
        k = int(b.rng.integers(len(driving)))
        lane, kind = driving[k], b.vehicle_class(c.class_weights)
        yaw = 0.0 if lane.direction > 0 else math.pi
        box = b.vehicle_box(
            kind, b.rng.uniform(0.0, c.street_length_m - 12.0), lane.center_y_m, yaw
        )
        if placer.try_add(footprint(box), 2.0):
            b.add(kind, box, color=b.paint(), material="car_paint", speed_mps=speeds[k])
            placed += 1


def build_scene(config: ScenarioConfig, name: str, seed: int) -> Scene:
    """A scene from settings and a seed (module docstring).

    Raises:
        GeneratorError: no occluder layout reached the target occlusion range with a better
            viewpoint nearby within ``max_occluder_attempts``.
    """
    c = config
    b = ObjectBuilder(np.random.default_rng(seed))
    lanes = street_lanes(c)
    build_layout(b, c)
    placer = Placer()
    parking = next(
        ln
        for ln in lanes
        if ln.kind == "parking" and (ln.center_y_m < 0) == (c.target_side == "right")
    )
    yaw = (0.0 if parking.direction > 0 else math.pi) + b.rng.uniform(-0.03, 0.03)
    ego = (c.ego_start_x_m, -(c.lanes_per_direction - 0.5 - c.ego_lane) * c.lane_width_m, 0.0)
    x_target = ego[0] + b.rng.uniform(*c.target_distance_range_m)
    target = b.add(
        c.target_class,
        b.vehicle_box(c.target_class, x_target, parking.center_y_m, yaw),
        color=b.paint(),
        material="car_paint",
        name="target",
    )
    target_poly = footprint(target.box_array)
    placer.add(target_poly)
    ego_box = np.array([ego[0], ego[1], 0.8, 6.5, 3.0, 1.6, 0.0])  # robot footprint + 1 m margin
    placer.add(footprint(ego_box))
    corridor = convex_hull(np.vstack([target_poly, [ego[:2]]]))
    corridor_handle = placer.add(corridor)  # nothing but the occluders may enter it
    _parked(b, c, lanes, placer)
    _sidewalk_items(b, c, placer)
    base = Scene(name, seed, tuple(b.objects), lanes, (0.0, c.street_length_m), ego, "target")
    placer.set_active(corridor_handle, False)
    search = OccluderSearch(world=World(base), scene=base, config=c, placer=placer)
    try:
        occluders, stats = place_occluders(search, b.rng)
    except OccluderError as err:
        raise GeneratorError(f"scenario {name!r} seed {seed}: {err}") from err
    for kind, box in occluders:
        vehicle = kind in CLASSES
        b.add(
            kind,
            box,
            color=b.paint() if vehicle else None,
            material="car_paint" if vehicle else None,
        )
    placer.set_active(corridor_handle, True)  # movers start outside it
    _moving(b, c, lanes, placer)
    return Scene(
        name,
        seed,
        tuple(b.objects),
        lanes,
        (0.0, c.street_length_m),
        ego,
        "target",
        {"config": c.to_dict(), **stats},
    )


def generate_scene(
    scenario: str | Path | Scenario | ScenarioConfig = "urban-clutter", seed: int | None = None
) -> Scene:
    """The scene of a named scenario, a scenario file, a ``Scenario`` or bare settings, for a
    seed (default: the scenario's ``default_seed``, 0 for bare settings).

    Raises:
        ScenarioError: unknown scenario, invalid settings, or a negative seed.
        GeneratorError: the occlusion requirements could not be met for this seed.
    """
    if isinstance(scenario, ScenarioConfig):
        scenario = Scenario("custom", "", 0, scenario)
    elif not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    used_seed = scenario.default_seed if seed is None else int(seed)
    if not 0 <= used_seed < 2**63:  # numpy seeds are non-negative
        raise ScenarioError(f"seed={used_seed}: must be a non-negative integer (< 2**63)")
    return build_scene(scenario.config, scenario.name, used_seed)


def load_or_generate(spec: str | Path, seed: int | None = None) -> Scene:
    """A scene file (``format: robomr-sim-scene``; ``seed`` must then be None) or a scenario
    name/file generated with ``seed``.

    Raises:
        ScenarioError: unknown scenario, unreadable file, or a seed given with a scene file.
        SceneError: malformed scene file.
        GeneratorError: see ``generate_scene``.
    """
    path = Path(spec)
    if path.suffix and path.is_file():
        data = read_structured_file(path, ScenarioError)
        if isinstance(data, dict) and data.get("format") == SCENE_FORMAT:
            if seed is not None:
                raise ScenarioError(f"{path} is a scene file: it fixes the scene, drop the seed")
            return Scene.from_dict(data)
    return generate_scene(spec, seed)
