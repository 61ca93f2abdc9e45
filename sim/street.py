"""The fixed part of a street scene: lanes, ground, road, sidewalks, markings and buildings,
and the object builder the generator uses for everything it places.

Right-hand traffic along x from 0 to ``street_length_m``: ``n`` driving lanes each way around
y = 0 (traffic along +x at y < 0), then a parking lane, a sidewalk with a 15 cm kerb and a row
of buildings (random widths, depths, heights, occasional alleys) on each side. Road paint is a
thin box 8 mm above the road: a double yellow centre line, dashed lane dividers (3 m every
9 m) and a solid line along each parking lane.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from geometry.transforms import wrap_angle
from sim.materials import CLASSES, FACADE_PALETTE, KIND_APPEARANCE, VEHICLE_PALETTE
from sim.occluders import sample_vehicle_size
from sim.scenarios import ScenarioConfig
from sim.scene import Lane, SceneObject
from sim.vehicles import sample_body

KERB_HEIGHT_M = 0.15  # the default; scenarios set ``kerb_height_m``
MARK_Z_M, MARK_H_M = 0.003, 0.01  # painted lines: a thin box whose top is 8 mm above the road
YELLOW = (0.95, 0.78, 0.10)


class ObjectBuilder:
    """Accumulates objects with unique names ``kind_<n>``."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.objects: list[SceneObject] = []
        self._counts: dict[str, int] = {}

    def add(
        self,
        kind: str,
        box: tuple[float, ...],
        shape: str = "box",
        color: Any = None,
        material: str | None = None,
        speed_mps: float = 0.0,
        name: str | None = None,
    ) -> SceneObject:
        if name is None:
            n = self._counts.get(kind, 0)
            self._counts[kind] = n + 1
            name = f"{kind}_{n}"
        default_color, default_material = KIND_APPEARANCE.get(kind, ((0.5, 0.5, 0.5), "car_paint"))
        obj = SceneObject(
            name,
            kind,
            (*(float(v) for v in box[:6]), float(wrap_angle(box[6]))),
            color or default_color,
            material or default_material,
            shape,
            speed_mps,
        )
        self.objects.append(obj)
        return obj

    def vehicle_size(self, kind: str, shapes: str = "box") -> tuple[str, float, float, float]:
        """(shape, length, width, height) of a new vehicle: a realistic body
        (``sim/vehicles.py``) or, for ``shapes="box"``, a box of the class's size range."""
        if shapes == "box":
            return ("box", *sample_vehicle_size(self.rng, kind))
        return sample_body(self.rng, kind)

    def vehicle_box(
        self,
        kind: str,
        x: float,
        y: float,
        yaw: float,
        size: tuple[float, float, float] | None = None,
    ) -> tuple[float, ...]:
        """Box of a vehicle whose rear end is at x (heading +x) or front end at x (heading
        -x), i.e. the centre half a length along the heading from x."""
        length, width, height = size or sample_vehicle_size(self.rng, kind)
        return (x + 0.5 * length * math.cos(yaw), y, 0.5 * height, length, width, height, yaw)

    def vehicle_class(self, weights: tuple[float, ...]) -> str:
        w = np.asarray(weights, dtype=np.float64)
        return CLASSES[int(self.rng.choice(len(CLASSES), p=w / w.sum()))]

    def paint(self) -> tuple[float, float, float]:
        return VEHICLE_PALETTE[int(self.rng.integers(len(VEHICLE_PALETTE)))]


def street_lanes(c: ScenarioConfig) -> tuple[Lane, ...]:
    """Lanes sorted by y: right parking, right driving (kerb first), left driving, left parking."""
    n, w, pw = c.lanes_per_direction, c.lane_width_m, c.parking_lane_width_m
    right = [Lane(-(n * w + 0.5 * pw), pw, 1, "parking")]
    right += [Lane(-(n - 0.5 - k) * w, w, 1, "driving") for k in range(n)]
    left = [Lane(-ln.center_y_m, ln.width_m, -1, ln.kind) for ln in reversed(right)]
    return tuple(right + left)


def build_layout(b: ObjectBuilder, c: ScenarioConfig) -> None:
    """Ground, road, sidewalks, markings and buildings."""
    length, n, w = c.street_length_m, c.lanes_per_direction, c.lane_width_m
    road_half = n * w + c.parking_lane_width_m
    xm = 0.5 * length
    outer = road_half + c.sidewalk_width_m
    b.add("ground", (xm, 0.0, -0.06, length + 60.0, 2.0 * outer + 60.0, 0.1, 0.0))
    b.add("road", (xm, 0.0, -0.025, length, 2.0 * road_half, 0.05, 0.0))
    for side in (-1.0, 1.0):
        b.add(
            "sidewalk",
            (
                xm,
                side * (road_half + 0.5 * c.sidewalk_width_m),
                0.5 * (c.kerb_height_m - 0.01),
                length,
                c.sidewalk_width_m,
                c.kerb_height_m + 0.01,
                0.0,
            ),
        )
        b.add("marking", (xm, side * 0.1, MARK_Z_M, length, 0.12, MARK_H_M, 0.0), color=YELLOW)
        b.add("marking", (xm, side * n * w, MARK_Z_M, length, 0.12, MARK_H_M, 0.0))
        for k in range(1, n):
            for x in np.arange(2.0, length - 3.0, 9.0):
                b.add("marking", (x + 1.5, side * k * w, MARK_Z_M, 3.0, 0.12, MARK_H_M, 0.0))
        x = -20.0
        while x < length + 20.0:
            width, depth = b.rng.uniform(10.0, 28.0), b.rng.uniform(10.0, 20.0)
            height = b.rng.uniform(*c.building_height_range_m)
            k = int(b.rng.integers(len(FACADE_PALETTE)))
            b.add(
                "building",
                (
                    x + 0.5 * width,
                    side * (outer + 0.5 + 0.5 * depth),
                    0.5 * height - 0.01,
                    width,
                    depth,
                    height + 0.01,
                    0.0,
                ),
                color=FACADE_PALETTE[k],
                material=("brick", "concrete", "glass_facade")[k % 3],
            )
            x += width + (b.rng.uniform(3.0, 8.0) if b.rng.random() < 0.3 else 0.0)
