"""What a vehicle detector must not report: pedestrians, cyclists, street furniture, fences,
hedges and bushes, placed by the scene generator (``sim/generator.py``).

Per side of the street and per 100 m (Poisson counts, ``ScenarioConfig`` rates): fence or hedge
runs along the building line or the kerb (4-15 m); bushes on the sidewalk; furniture (benches,
bollard rows at the kerb, parked bicycles, signs on poles, rows of traffic cones at the edge of
the road); pedestrians on the sidewalk (one in ten crossing the road); cyclists per 100 m of
street riding at the kerb-side edge of a driving lane along the traffic. Sizes: pedestrian
height N(1.72, 0.09) m in [1.45, 1.98] (KITTI's pedestrian mean height 1.76 m), cyclists
1.6-1.9 m long (KITTI mean 1.76 m), everything else from typical street furniture. Every item is
placed collision-free (``sim.placement.Placer``) or left out.
"""

from __future__ import annotations

import math

import numpy as np

from sim.placement import Placer, footprint
from sim.scenarios import ScenarioConfig
from sim.scene import Lane
from sim.street import ObjectBuilder

CLOTHING: tuple[tuple[float, float, float], ...] = (
    (0.10, 0.10, 0.12), (0.20, 0.25, 0.45), (0.55, 0.10, 0.12), (0.75, 0.72, 0.65),
    (0.30, 0.32, 0.30), (0.85, 0.85, 0.82), (0.15, 0.35, 0.20), (0.60, 0.45, 0.25),
)  # fmt: skip


def _put(
    b: ObjectBuilder,
    placer: Placer,
    kind: str,
    box: tuple[float, ...],
    margin_m: float = 0.2,
    **kwargs: object,
) -> bool:
    if not placer.try_add(footprint(np.asarray(box)), margin_m):
        return False
    b.add(kind, box, **kwargs)  # type: ignore[arg-type]
    return True


def _count(b: ObjectBuilder, per_100m: float, length_m: float) -> int:
    return int(b.rng.poisson(per_100m * length_m / 100.0))


def place_negatives(
    b: ObjectBuilder, c: ScenarioConfig, lanes: tuple[Lane, ...], placer: Placer
) -> None:
    """Adds the negatives of the module docstring to ``b``."""
    kerb = c.lanes_per_direction * c.lane_width_m + c.parking_lane_width_m
    outer, top, length = kerb + c.sidewalk_width_m, c.kerb_height_m, c.street_length_m
    for side in (-1.0, 1.0):
        _fences(b, c, placer, side, kerb, outer, top)
        for _ in range(_count(b, c.bushes_per_100m, length)):
            d, h = b.rng.uniform(0.8, 2.0), b.rng.uniform(0.6, 1.5)
            y = side * (outer - 0.2 - 0.5 * d)
            box = (
                b.rng.uniform(1, length - 1),
                y,
                top + 0.5 * h,
                d,
                d * b.rng.uniform(0.7, 1),
                h,
                0.0,
            )
            _put(b, placer, "bush", box, shape="ellipsoid")
        for _ in range(_count(b, c.furniture_per_100m, length)):
            _furniture(b, c, lanes, placer, side, kerb, outer, top)
        for _ in range(_count(b, c.pedestrians_per_100m, length)):
            _pedestrian(b, c, lanes, placer, side, kerb, top)
    driving = [ln for ln in lanes if ln.kind == "driving"]
    kerbside = [min(driving, key=lambda ln, s=s: abs(ln.center_y_m - s * kerb)) for s in (-1, 1)]
    for _ in range(_count(b, c.cyclists_per_100m, length)):
        lane = kerbside[int(b.rng.integers(2))]
        size = (b.rng.uniform(1.6, 1.9), b.rng.uniform(0.5, 0.7), b.rng.uniform(1.6, 1.9))
        y = lane.center_y_m + np.sign(lane.center_y_m) * (0.5 * lane.width_m - 0.7)
        yaw = (0.0 if lane.direction > 0 else math.pi) + b.rng.uniform(-0.1, 0.1)
        box = (b.rng.uniform(2, length - 2), y, 0.5 * size[2], *size, yaw)
        _put(b, placer, "cyclist", box, 0.5, shape="cyclist", color=_cloth(b))


def _cloth(b: ObjectBuilder) -> tuple[float, float, float]:
    return CLOTHING[int(b.rng.integers(len(CLOTHING)))]


def _fences(
    b: ObjectBuilder, c: ScenarioConfig, placer: Placer, side: float, kerb: float, outer: float,
    top: float,
) -> None:  # fmt: skip
    for _ in range(_count(b, c.fences_per_100m, c.street_length_m)):
        run = b.rng.uniform(4.0, 15.0)
        x = b.rng.uniform(1.0 + 0.5 * run, c.street_length_m - 1.0 - 0.5 * run)
        if b.rng.random() < 0.35:  # hedge along the buildings
            w, h = b.rng.uniform(0.6, 1.2), b.rng.uniform(0.8, 1.8)
            _put(
                b,
                placer,
                "hedge",
                (x, side * (outer - 0.1 - 0.5 * w), top + 0.5 * h, run, w, h, 0.0),
            )
            continue
        at_kerb = b.rng.random() < 0.4  # pedestrian railing at the kerb, else along buildings
        y = side * (kerb + 0.2) if at_kerb else side * (outer - 0.15)
        h = b.rng.uniform(1.0, 1.3) if at_kerb else b.rng.uniform(1.2, 2.0)
        material = "wire_mesh" if b.rng.random() < 0.6 else "wood"
        color = (0.45, 0.47, 0.45) if material == "wire_mesh" else (0.50, 0.38, 0.25)
        _put(b, placer, "fence", (x, y, top + 0.5 * h, run, 0.06, h, 0.0), 0.1,
             shape="fence", material=material, color=color)  # fmt: skip


def _furniture(
    b: ObjectBuilder, c: ScenarioConfig, lanes: tuple[Lane, ...], placer: Placer, side: float,
    kerb: float, outer: float, top: float,
) -> None:  # fmt: skip
    x = b.rng.uniform(2.0, c.street_length_m - 2.0)
    item = ("bench", "bollards", "bicycle", "sign", "cones")[
        int(b.rng.choice(5, p=[0.25, 0.2, 0.25, 0.15, 0.15]))
    ]
    if item == "bench":
        size = (b.rng.uniform(1.5, 2.0), b.rng.uniform(0.55, 0.7), b.rng.uniform(0.8, 0.95))
        yaw = 0.0 if side < 0 else math.pi  # facing the road
        y = side * (outer - 0.6)
        _put(b, placer, "bench", (x, y, top + 0.5 * size[2], *size, yaw), shape="bench")
    elif item == "bollards":
        h = b.rng.uniform(0.8, 1.1)
        for k in range(int(b.rng.integers(2, 7))):
            box = (x + 1.5 * k, side * (kerb + 0.3), top + 0.5 * h, 0.2, 0.2, h, 0.0)
            _put(b, placer, "bollard", box, 0.1, shape="cylinder")
    elif item == "bicycle":
        size = (b.rng.uniform(1.6, 1.8), b.rng.uniform(0.5, 0.65), b.rng.uniform(0.95, 1.1))
        yaw = float(b.rng.choice([0.0, math.pi, 0.5 * math.pi, -0.5 * math.pi]))
        y = side * (kerb + b.rng.uniform(0.9, max(1.0, c.sidewalk_width_m - 0.9)))
        _put(b, placer, "bicycle", (x, y, top + 0.5 * size[2], *size, yaw), shape="bicycle",
             color=_cloth(b))  # fmt: skip
    elif item == "sign":
        h = b.rng.uniform(2.2, 3.0)
        y = side * (kerb + 0.35)
        if _put(b, placer, "pole", (x, y, top + 0.5 * h, 0.08, 0.08, h, 0.0), shape="cylinder"):
            plate = b.rng.uniform(0.5, 0.8)
            b.add("sign", (x, y, top + h + 0.5 * plate - 0.1, 0.04, plate, plate, 0.0))
    else:  # a row of cones at the edge of the parking lane or the kerb-side driving lane
        lane = min(
            (ln for ln in lanes if np.sign(ln.center_y_m) == side),
            key=lambda ln: abs(abs(ln.center_y_m) - (kerb - 0.5 * c.parking_lane_width_m - 1.0)),
        )
        y = lane.center_y_m + b.rng.uniform(-0.5, 0.5) * lane.width_m * 0.6
        for k in range(int(b.rng.integers(3, 9))):
            box = (x + 2.0 * k, y, 0.35, 0.36, 0.36, 0.7, 0.0)
            _put(b, placer, "cone", box, 0.1, shape="cone")


def _pedestrian(
    b: ObjectBuilder, c: ScenarioConfig, lanes: tuple[Lane, ...], placer: Placer, side: float,
    kerb: float, top: float,
) -> None:  # fmt: skip
    h = float(np.clip(b.rng.normal(1.72, 0.09), 1.45, 1.98))
    size = (b.rng.uniform(0.45, 0.9), b.rng.uniform(0.45, 0.65), h)
    x = b.rng.uniform(1.0, c.street_length_m - 1.0)
    if b.rng.random() < 0.1:  # crossing the road
        lane = lanes[int(b.rng.integers(len(lanes)))]
        y, z = lane.center_y_m + b.rng.uniform(-1.0, 1.0), 0.5 * h
        yaw = math.copysign(0.5 * math.pi, -side) + b.rng.uniform(-0.3, 0.3)
    else:
        y = side * (kerb + b.rng.uniform(0.4, c.sidewalk_width_m - 0.4))
        z = top + 0.5 * h
        yaw = float(b.rng.choice([0.0, math.pi])) + b.rng.uniform(-0.5, 0.5)
    _put(b, placer, "pedestrian", (x, y, z, *size, yaw), 0.15, shape="pedestrian", color=_cloth(b))
