"""The simulated street scene: a small, serialisable dataclass that reproduces a scene exactly.

A scene is a flat list of objects, each one oriented box ``[x, y, z, l, w, h, yaw]`` in the
world (``map``) frame holding a box, a z-aligned cylinder or an ellipsoid, with a colour (RGB in
[0, 1], the same one the camera and the Gaussian-splatting samples use) and a lidar material.
Vehicles (kinds in ``CLASSES``) may move at ``speed_mps`` along their heading; ``at_time`` gives
the scene after ``t`` seconds, wrapping movers around the street's x range. The scene also keeps
the lane layout (for ego pose sampling and planners), the ego start pose and the named target
vehicle of the CROA scenario (arXiv 2412.18453: a target occluded by clutter in a multi-lane
urban street).

Files: YAML (``.yaml``/``.yml``) or JSON (``.json``), ``format: robomr-sim-scene``, version 1.
Floats are written with Python's shortest round-trip repr, so save -> load is exact.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from sim.materials import NON_OBSTACLE_KINDS
from sim.objects import Lane, SceneError, SceneObject, floats, read_structured_file
from sim.terrain import Terrain, TerrainError

FORMAT = "robomr-sim-scene"
VERSION = 1

__all__ = [
    "FORMAT",
    "VERSION",
    "Lane",
    "Scene",
    "SceneError",
    "SceneObject",
    "read_structured_file",
]


@dataclass(frozen=True)
class Scene:
    """A complete street scene (see the module docstring).

    Attributes:
        name: scenario name it came from (e.g. ``"occluded-target"``).
        seed: generator seed.
        objects: every object, static and moving.
        lanes: lane layout, sorted by ``center_y_m``.
        street_x_range_m: (x_min, x_max) of the street; movers wrap around it.
        ego_start: ego start pose (x_m, y_m, yaw_rad) of ``base_link`` in the world.
        target_name: name of the target vehicle, or None.
        generator: generator settings that produced the scene (provenance only).
        terrain: the street surface's height field (``sim/terrain.py``); flat by default.
            Object boxes hold their true height (already lifted onto the surface).
    """

    name: str
    seed: int
    objects: tuple[SceneObject, ...]
    lanes: tuple[Lane, ...]
    street_x_range_m: tuple[float, float]
    ego_start: tuple[float, float, float]
    target_name: str | None = None
    generator: dict[str, Any] = field(default_factory=dict, hash=False)
    terrain: Terrain = field(default_factory=Terrain)

    def __post_init__(self) -> None:
        object.__setattr__(self, "objects", tuple(self.objects))
        object.__setattr__(self, "lanes", tuple(self.lanes))
        object.__setattr__(self, "ego_start", floats(self.ego_start, 3, "ego_start"))
        x_range = floats(self.street_x_range_m, 2, "street_x_range_m")
        if x_range[1] <= x_range[0]:
            raise SceneError(f"street_x_range_m must be increasing, got {x_range}")
        object.__setattr__(self, "street_x_range_m", x_range)
        names = [o.name for o in self.objects]
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise SceneError(f"object names must be unique, duplicated: {dup}")
        if (
            self.target_name is not None
            and not self.objects[self.index(self.target_name)].is_vehicle
        ):
            raise SceneError(f"target {self.target_name!r} is not a vehicle")

    def index(self, name: str) -> int:
        """Index of the object called ``name``.

        Raises:
            SceneError: no such object.
        """
        for i, obj in enumerate(self.objects):
            if obj.name == name:
                return i
        raise SceneError(f"scene {self.name!r} has no object named {name!r}")

    @property
    def target_index(self) -> int:
        """Index of the target in ``objects``, -1 if the scene has none."""
        return -1 if self.target_name is None else self.index(self.target_name)

    def boxes(self) -> np.ndarray:
        """Boxes of all objects, float64 [M, 7]."""
        return np.array([o.box for o in self.objects], dtype=np.float64).reshape(-1, 7)

    def vehicle_indices(self) -> np.ndarray:
        """Indices (int64 [V]) of the vehicles in ``objects``, in scene order."""
        return np.array([i for i, o in enumerate(self.objects) if o.is_vehicle], dtype=np.int64)

    def obstacle_boxes(
        self,
        robot_height_m: float = 2.0,
        exclude_kinds: Collection[str] = NON_OBSTACLE_KINDS,
        exclude_names: Collection[str] = (),
    ) -> tuple[np.ndarray, list[str]]:
        """Boxes [K, 7] and names of everything a robot of ``robot_height_m`` could hit.

        Leaves out drivable surfaces (``exclude_kinds``), objects entirely above the robot
        (e.g. tree crowns; heights above the terrain's surface) and ``exclude_names``. Moving
        vehicles are included at their current position: call
        ``scene.at_time(t).obstacle_boxes()`` for a later time.
        """
        keep = [
            o
            for o in self.objects
            if o.kind not in exclude_kinds
            and o.name not in exclude_names
            and o.box[2] - 0.5 * o.box[5] - float(self.terrain.height(o.box[0], o.box[1]))
            < robot_height_m
        ]
        return np.array([o.box for o in keep], dtype=np.float64).reshape(-1, 7), [
            o.name for o in keep
        ]

    def static(self) -> Scene:
        """The scene without its moving vehicles."""
        return replace(self, objects=tuple(o for o in self.objects if o.speed_mps == 0.0))

    def at_time(self, t_s: float) -> Scene:
        """The scene after ``t_s`` seconds: movers advanced along their heading, wrapped in x
        (and kept on the terrain's surface)."""
        if not math.isfinite(t_s):
            raise SceneError(f"at_time: t_s must be finite, got {t_s}")
        x0, x1 = self.street_x_range_m
        moved = []
        for o in self.objects:
            if o.speed_mps != 0.0:
                b = list(o.box)
                lift = -float(self.terrain.height(b[0], b[1]))
                b[0] = x0 + (b[0] + o.speed_mps * t_s * math.cos(b[6]) - x0) % (x1 - x0)
                b[1] += o.speed_mps * t_s * math.sin(b[6])
                b[2] += lift + float(self.terrain.height(b[0], b[1]))
                o = replace(o, box=tuple(b))
            moved.append(o)
        return replace(self, objects=tuple(moved))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON/YAML-compatible dict (inverse of ``from_dict``)."""
        return {
            "format": FORMAT,
            "version": VERSION,
            "name": self.name,
            "seed": self.seed,
            "street_x_range_m": list(self.street_x_range_m),
            "ego_start": list(self.ego_start),
            "target_name": self.target_name,
            "generator": self.generator,
            "lanes": [
                {
                    "center_y_m": ln.center_y_m,
                    "width_m": ln.width_m,
                    "direction": ln.direction,
                    "kind": ln.kind,
                }
                for ln in self.lanes
            ],
            "objects": [
                {
                    "name": o.name,
                    "kind": o.kind,
                    "shape": o.shape,
                    "box": list(o.box),
                    "color": list(o.color),
                    "material": o.material,
                    "speed_mps": o.speed_mps,
                }
                for o in self.objects
            ],
        } | ({} if self.terrain.is_flat else {"terrain": self.terrain.to_dict()})

    @classmethod
    def from_dict(cls, data: Any) -> Scene:
        """Scene from ``to_dict`` output.

        Raises:
            SceneError: wrong format/version, missing or malformed field.
        """
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise SceneError(f"not a scene: expected a mapping with format: {FORMAT}")
        if data.get("version") != VERSION:
            raise SceneError(f"scene version {data.get('version')!r} unsupported (want {VERSION})")
        try:
            lanes = tuple(
                Lane(
                    float(d["center_y_m"]), float(d["width_m"]), int(d["direction"]), str(d["kind"])
                )
                for d in data["lanes"]
            )
            objects = tuple(SceneObject(**d) for d in data["objects"])
            return cls(
                str(data["name"]),
                int(data["seed"]),
                objects,
                lanes,
                tuple(data["street_x_range_m"]),
                tuple(data["ego_start"]),
                data.get("target_name"),
                dict(data.get("generator") or {}),
                Terrain.from_dict(data["terrain"]) if "terrain" in data else Terrain(),
            )
        except TerrainError as err:
            raise SceneError(str(err)) from err
        except KeyError as err:
            raise SceneError(f"scene file is missing field {err}") from err
        except (TypeError, ValueError, OverflowError) as err:
            if isinstance(err, SceneError):
                raise
            raise SceneError(f"scene file has a malformed entry: {err}") from err

    def save(self, path: str | Path) -> Path:
        """Writes the scene as YAML (``.yaml``/``.yml``) or JSON (``.json``)."""
        p = Path(path)
        data = self.to_dict()
        if p.suffix in (".yaml", ".yml"):
            text = yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=120)
        elif p.suffix == ".json":
            text = json.dumps(data, indent=1) + "\n"
        else:
            raise SceneError(f"scene file {p}: suffix must be .yaml, .yml or .json")
        p.write_text(text)
        return p

    @classmethod
    def load(cls, path: str | Path) -> Scene:
        """Reads a file written by ``save``.

        Raises:
            SceneError: missing file, unparsable text or malformed content.
        """
        data = read_structured_file(path, SceneError)
        try:
            return cls.from_dict(data)
        except SceneError as err:  # name the file at fault
            raise SceneError(f"{path}: {err}") from None
