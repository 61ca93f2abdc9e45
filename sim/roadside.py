"""Roadside structures of car height: the false alarms the detector gave on a real street.

On the shared nuScenes sweep (docs/perception.md, "Figures") five of the detector's seven
false boxes held roadside structures with returns 0.3-1.0 m (median) above the road and a top
at 0.7-1.7 m: walls, fences, raised planters and hedges a few metres from the lane; one held a
kerb / road edge, one a building or tree. The streets of ``sim/street.py`` have none of them
near the road, so ``place_roadside`` adds, per side of the street and per 100 m (a Poisson
count, ``ScenarioConfig.roadside_per_100m``; 0, the default, draws nothing, so scenes of
earlier versions are unchanged):

- low wall (35 %): brick, concrete or wood, 0.4-1.6 m high, 0.2-0.4 m thick;
- raised planter (25 %): a concrete bed 0.3-0.8 m high, 0.8-2.0 m wide, planted with a hedge
  to 0.8-1.6 m in all;
- hedge (20 %): foliage 0.4-1.6 m high, 0.5-1.5 m deep;
- kerb extension (20 %): a kerbed island in the parking lane at kerb height (0.1-0.2 m in
  the randomised streets), 0.6-2.0 m deep: a kerb step beside the driving lane.

Runs are 2-30 m long (a third of them at most 8 m), parallel to the road, their road-side face
0.5-4 m from the road's edge (the kerb; where the sidewalk is narrower, at its back). Behind a
wall, planter or hedge run, one in four gets a low facade (a kiosk, garage or porch: 2.5-7 m
high, 1-2.5 m deep) at the back of the sidewalk, or a tree there. A run that collides with
what is placed is shortened (halved, down to 2 m) and otherwise left out (``sim.placement``).
"""

from __future__ import annotations

import numpy as np

from sim.materials import FACADE_PALETTE
from sim.placement import Placer, footprint
from sim.scenarios import ScenarioConfig
from sim.street import ObjectBuilder

KINDS_P = (("wall", 0.35), ("planter", 0.25), ("hedge", 0.2), ("kerb", 0.2))
RUN_M = (2.0, 30.0)  # run length, m
SETBACK_M = (0.5, 4.0)  # road-side face from the kerb, m
HEIGHT_M = (0.4, 1.6)  # top of walls, planters and hedges above the sidewalk, m
BEHIND_P = 0.25  # a facade or tree behind a run


def place_roadside(b: ObjectBuilder, c: ScenarioConfig, placer: Placer) -> None:
    """Adds the roadside runs of the module docstring to ``b`` (none when the rate is 0)."""
    if c.roadside_per_100m <= 0.0:
        return
    kerb = c.lanes_per_direction * c.lane_width_m + c.parking_lane_width_m
    outer, top, length = kerb + c.sidewalk_width_m, c.kerb_height_m, c.street_length_m
    names, p = zip(*KINDS_P, strict=True)
    for side in (-1.0, 1.0):
        for _ in range(int(b.rng.poisson(c.roadside_per_100m * length / 100.0))):
            kind = names[int(b.rng.choice(len(names), p=np.asarray(p)))]
            short = b.rng.random() < 1.0 / 3.0
            run = b.rng.uniform(RUN_M[0], 8.0 if short else RUN_M[1])
            x = b.rng.uniform(0.0, length)
            if kind == "kerb":
                depth = b.rng.uniform(0.6, min(2.0, c.parking_lane_width_m))
                box = (x, side * (kerb - 0.5 * depth), 0.5 * (top - 0.01), run, depth, top + 0.01)
                _put_run(b, placer, "sidewalk", box, length)
                continue
            if kind == "wall":
                depth, height = b.rng.uniform(0.2, 0.4), b.rng.uniform(*HEIGHT_M)
            elif kind == "planter":
                depth, height = b.rng.uniform(0.8, 2.0), b.rng.uniform(0.8, HEIGHT_M[1])
            else:
                depth, height = b.rng.uniform(0.5, 1.5), b.rng.uniform(*HEIGHT_M)
            room = c.sidewalk_width_m - depth - 0.1  # the run's face from the kerb, at most
            if room < 0.2:
                continue
            face = min(b.rng.uniform(*SETBACK_M), room)
            y = side * (kerb + face + 0.5 * depth)
            behind = b.rng.random() < BEHIND_P
            if _structure(b, placer, kind, (x, y, top, run, depth, height), length) and behind:
                _behind(b, placer, side, x, kerb + face + depth, outer, top)


def _put_run(
    b: ObjectBuilder, placer: Placer, kind: str, box: tuple[float, ...], length: float,
    **kwargs: object,
) -> tuple[float, ...] | None:  # fmt: skip
    """Adds a run (box without yaw), halving its length until it fits; the box placed."""
    x, y, z, run, depth, height = box
    while run >= RUN_M[0]:
        lo, hi = 0.5 * run, length - 0.5 * run
        if hi >= lo:
            placed = (float(np.clip(x, lo, hi)), y, z, run, depth, height, 0.0)
            if placer.try_add(footprint(np.asarray(placed)), 0.2):
                b.add(kind, placed, **kwargs)  # type: ignore[arg-type]
                return placed
        run *= 0.5
    return None


def _structure(
    b: ObjectBuilder, placer: Placer, kind: str, spec: tuple[float, ...], length: float
) -> bool:
    """Adds a wall, hedge or planter run; whether it fitted."""
    x, y, top, run, depth, height = spec
    if kind in ("wall", "hedge"):
        style: dict[str, object] = {}
        if kind == "wall":
            k = int(b.rng.integers(len(FACADE_PALETTE)))
            material = ("brick", "concrete", "wood")[int(b.rng.integers(3))]
            style = {"color": FACADE_PALETTE[k], "material": material}
        box = (x, y, top + 0.5 * height, run, depth, height)
        return _put_run(b, placer, kind, box, length, **style) is not None
    bed = b.rng.uniform(0.3, min(0.8, height - 0.3))
    placed = _put_run(b, placer, "planter", (x, y, top + 0.5 * bed, run, depth, bed), length)
    if placed is None:
        return False
    plants = height - bed  # the hedge grows from the bed, a little inside its rim
    box = (placed[0], y, top + bed + 0.5 * plants, placed[3] - 0.2, depth - 0.2, plants, 0.0)
    b.add("hedge", box)
    return True


def _behind(
    b: ObjectBuilder, placer: Placer, side: float, x: float, back_m: float, outer: float,
    top: float,
) -> None:  # fmt: skip
    """A low facade or a tree between a run's back (``back_m`` from the centre line) and the
    buildings, if there is room."""
    if b.rng.random() < 0.5:
        depth = b.rng.uniform(1.0, 2.5)
        if outer - depth < back_m + 0.3:
            return
        width, height = b.rng.uniform(4.0, 15.0), b.rng.uniform(2.5, 7.0)
        box = (x, side * (outer - 0.5 * depth), top + 0.5 * height, width, depth, height, 0.0)
        if placer.try_add(footprint(np.asarray(box)), 0.2):
            k = int(b.rng.integers(len(FACADE_PALETTE)))
            b.add("building", box, color=FACADE_PALETTE[k], material=("brick", "concrete")[k % 2])
        return
    if outer - back_m < 0.8:
        return
    diameter, crown = b.rng.uniform(2.5, 4.5), b.rng.uniform(2.5, 4.5)
    y = side * 0.5 * (back_m + outer)
    trunk = (x, y, top + 1.25, 0.3, 0.3, 2.5, 0.0)
    if placer.try_add(footprint(np.asarray(trunk)), 0.2):
        b.add("tree_trunk", trunk, shape="cylinder")
        crown_box = (x, y, top + 2.2 + 0.5 * crown, diameter, diameter, crown, 0.0)
        b.add("tree_crown", crown_box, shape="ellipsoid")
