"""Seeded generator of multi-lane urban street scenes (the CROA scenario, arXiv 2412.18453:
a target vehicle occluded by clutter in a multi-lane urban street).

First the fixed street (``sim/street.py``: lanes, road, sidewalks, markings, buildings). Then:
the target (parked in the parking lane ``target_side``, ahead of the ego), the ego start (lane
``ego_lane`` counted from the kerb, heading +x), roadside walls, planters, hedges and kerb
extensions (``sim/roadside.py``, none by default), parked vehicles, sidewalk clutter (bins,
barriers, scooters), trees and poles, all kept out of the ego's sight corridor to the target;
then occluders placed in that corridor until the target's occlusion from the ego start lands in
``target_occlusion_range`` (``sim/occluders.py``, verified by raycasting); last, moving
vehicles (one speed per lane, so they never overtake). Every random draw comes from one
``numpy.random.Generator`` seeded with ``seed``, in a fixed order: same config and seed, same
scene.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np

from sim.materials import CLASSES
from sim.negatives import place_negatives
from sim.occluders import OccluderError, OccluderSearch, place_occluders
from sim.placement import Placer, convex_hull, footprint
from sim.roadside import place_roadside
from sim.scenarios import Scenario, ScenarioConfig, ScenarioError, load_scenario
from sim.scene import FORMAT as SCENE_FORMAT
from sim.scene import Lane, Scene, SceneObject, read_structured_file
from sim.street import ObjectBuilder, build_layout, street_lanes
from sim.terrain import Terrain
from sim.world import SURFACE_KINDS, World

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
            shape, *size = b.vehicle_size(kind, c.vehicle_shapes)
            start = x if lane.direction > 0 else x + size[0]
            y = lane.center_y_m + b.rng.uniform(-0.15, 0.15)
            box = b.vehicle_box(kind, start, y, yaw, tuple(size))  # type: ignore[arg-type]
            if box[0] + 0.5 * box[3] < c.street_length_m and placer.try_add(footprint(box), 0.4):
                b.add(kind, box, shape=shape, color=b.paint(), material="car_paint")
            x += box[3] + b.rng.uniform(0.8, 2.5)


def _sidewalk_items(b: ObjectBuilder, c: ScenarioConfig, placer: Placer) -> None:
    kerb = c.lanes_per_direction * c.lane_width_m + c.parking_lane_width_m
    top = c.kerb_height_m
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
        shape, *size = b.vehicle_size(kind, c.vehicle_shapes)
        x = b.rng.uniform(0.0, c.street_length_m - 12.0)
        box = b.vehicle_box(kind, x, lane.center_y_m, yaw, tuple(size))  # type: ignore[arg-type]
        if placer.try_add(footprint(box), 2.0):
            b.add(
                kind, box, shape=shape, color=b.paint(), material="car_paint", speed_mps=speeds[k]
            )
            placed += 1


def _terrain(b: ObjectBuilder, c: ScenarioConfig, ego_x: float) -> Terrain:
    """The street's surface, drawn from the scenario's ranges (flat unless they are set)."""
    ranges = (c.grade_range, c.grade_change_range_per_100m, c.crown_range)
    if all(lo == hi == 0.0 for lo, hi in ranges):
        return Terrain()
    grade, change, crown = (float(b.rng.uniform(lo, hi)) for lo, hi in ranges)
    road_half = c.lanes_per_direction * c.lane_width_m + c.parking_lane_width_m
    return Terrain(grade, change / 100.0, ego_x, crown, road_half)


def _on_terrain(objects: list[SceneObject], terrain: Terrain) -> tuple[SceneObject, ...]:
    """Objects lifted onto the terrain at their centre (surfaces are draped by the world)."""
    if terrain.is_flat:
        return tuple(objects)
    out = []
    for o in objects:
        if o.kind not in SURFACE_KINDS:
            box = list(o.box)
            box[2] += float(terrain.height(box[0], box[1]))
            o = replace(o, box=tuple(box))
        out.append(o)
    return tuple(out)


def _target(
    b: ObjectBuilder, c: ScenarioConfig, lanes: tuple[Lane, ...], ego: tuple[float, ...]
) -> SceneObject:
    parking = next(
        ln
        for ln in lanes
        if ln.kind == "parking" and (ln.center_y_m < 0) == (c.target_side == "right")
    )
    yaw = (0.0 if parking.direction > 0 else math.pi) + b.rng.uniform(-0.03, 0.03)
    x_target = ego[0] + b.rng.uniform(*c.target_distance_range_m)
    shape, *size = b.vehicle_size(c.target_class, c.vehicle_shapes)
    dims: tuple[float, float, float] = tuple(size)  # type: ignore[assignment]
    box = b.vehicle_box(c.target_class, x_target, parking.center_y_m, yaw, dims)
    return b.add(
        c.target_class, box, shape=shape, color=b.paint(), material="car_paint", name="target"
    )


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
    ego = (c.ego_start_x_m, -(c.lanes_per_direction - 0.5 - c.ego_lane) * c.lane_width_m, 0.0)
    ego_box = np.array([ego[0], ego[1], 0.8, 6.5, 3.0, 1.6, 0.0])  # robot footprint + 1 m margin
    placer.add(footprint(ego_box))
    corridor_handle = None
    if c.has_target:
        target = _target(b, c, lanes, ego)
        target_poly = footprint(target.box_array)
        placer.add(target_poly)
        corridor = convex_hull(np.vstack([target_poly, [ego[:2]]]))
        corridor_handle = placer.add(corridor)  # nothing but the occluders may enter it
    place_roadside(b, c, placer)  # before parked cars and clutter: long runs need the room
    _parked(b, c, lanes, placer)
    _sidewalk_items(b, c, placer)
    place_negatives(b, c, lanes, placer)
    target_name = "target" if c.has_target else None
    base = Scene(name, seed, tuple(b.objects), lanes, (0.0, c.street_length_m), ego, target_name)
    stats: dict[str, object] = {}
    if corridor_handle is not None:
        placer.set_active(corridor_handle, False)
        search = OccluderSearch(world=World(base), scene=base, config=c, placer=placer)
        try:
            occluders, stats = place_occluders(search, b.rng)
        except OccluderError as err:
            raise GeneratorError(f"scenario {name!r} seed {seed}: {err}") from err
        for kind, box, shape in occluders:
            vehicle = kind in CLASSES
            b.add(
                kind,
                box,
                shape=shape,
                color=b.paint() if vehicle else None,
                material="car_paint" if vehicle else None,
            )
        placer.set_active(corridor_handle, True)  # movers start outside it
    _moving(b, c, lanes, placer)
    terrain = _terrain(b, c, ego[0])
    return Scene(
        name,
        seed,
        _on_terrain(b.objects, terrain),
        lanes,
        (0.0, c.street_length_m),
        ego,
        target_name,
        {"config": c.to_dict(), **stats},
        terrain,
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
