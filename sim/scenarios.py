"""Scenario settings (the generator's difficulty knobs) and the named scenarios shipped in
``config/scenarios/*.yaml``.

A scenario file is YAML: ``name``, ``description``, ``default_seed`` and ``config`` (the fields
of ``ScenarioConfig``; omitted ones take their defaults). ``generate_scene(name, seed)``
(``sim/generator.py``) turns a scenario and a seed into a ``Scene``; the same name and seed give
the same scene on every machine.
"""

from __future__ import annotations

import math
import sys
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from sim.materials import CLASSES
from sim.scene import read_structured_file

# Shipped scenario files: the source tree, then an installed share/ folder.
SCENARIO_DIRS: tuple[Path, ...] = (
    Path(__file__).resolve().parents[1] / "config" / "scenarios",
    Path(sys.prefix) / "share" / "robomr" / "config" / "scenarios",
)


class ScenarioError(ValueError):
    """A scenario name, file or setting is invalid (the message names the field and limit)."""


@dataclass(frozen=True)
class ScenarioConfig:
    """Generator settings of a street scene. Lengths in metres, speeds in m/s.

    Attributes:
        street_length_m: length of the street along x, [40, 1000].
        lanes_per_direction: driving lanes each way, [1, 4].
        lane_width_m: driving lane width, [2.5, 5].
        parking_lane_width_m: kerb-side parking lane width on both sides, [2, 4].
        sidewalk_width_m: sidewalk width on both sides, [1, 10].
        building_height_range_m: (min, max) building height, within [3, 150].
        parked_occupancy: fraction of parking slots holding a vehicle, [0, 1].
        class_weights: sampling weights of (car, van, truck, bus) for parked and moving vehicles,
            each >= 0, sum > 0.
        num_moving_vehicles: vehicles driving in the lanes, [0, 50].
        moving_speed_range_mps: (min, max) speed of moving vehicles, within [0.5, 30].
        clutter_per_100m: bins, barriers and scooters per 100 m of each sidewalk, [0, 200].
        trees_per_100m: trees per 100 m of each sidewalk, [0, 50].
        poles_per_100m: lamp/sign poles per 100 m of each sidewalk, [0, 50].
        ego_start_x_m: ego start position along the street, from its start, >= 5, with
            ``ego_start_x_m + target_distance_range_m[1] <= street_length_m - 15``.
        ego_lane: ego start lane counted from the kerb (0 = kerb-side driving lane).
        sensor_height_m: height of the lidar above the ground, used to measure the target's
            occlusion from the start pose, [0.5, 4].
        target_class: class of the target vehicle, one of CLASSES.
        target_side: parking lane of the target, "right" (kerb side of the ego) or "left".
        target_distance_range_m: (min, max) distance along x from the ego start to the target,
            within [5, 80].
        target_occlusion_range: (min, max) occlusion ratio of the target from the ego start's
            lidar (sim/truth.py definition), within [0, 1].
        better_view_radius_m: radius around the ego start searched for a better viewpoint,
            [0, 50].
        min_view_improvement: required drop of the target's occlusion at the best viewpoint
            within ``better_view_radius_m`` (0 disables the check), [0, 1].
        max_occluder_attempts: random occluder layouts tried before giving up, [1, 100000].
        vehicle_shapes: "realistic" (bodies with hood, cabin, glass and wheels, sizes from
            published statistics, ``sim/vehicles.py``) or "box" (the boxes of earlier
            versions).
        has_target: place the target and its occluders; False gives a scene without a target
            (with ``parked_occupancy`` and ``num_moving_vehicles`` 0: no vehicle at all).
        pedestrians_per_100m: pedestrians per 100 m of each sidewalk (a few cross the road),
            [0, 200].
        cyclists_per_100m: cyclists per 100 m of street riding at the kerb, [0, 50].
        furniture_per_100m: benches, bollards, parked bicycles, signs and cone rows per 100 m
            of each sidewalk, [0, 200].
        fences_per_100m: fence or hedge runs per 100 m of each sidewalk, [0, 50].
        bushes_per_100m: bushes per 100 m of each sidewalk, [0, 50].
        kerb_height_m: height of the kerb above the road, [0.05, 0.3].
        roadside_per_100m: low walls, raised planters, hedges and kerb extensions near the
            road per 100 m of each side (``sim/roadside.py``), [0, 50]; 0 places none.
        grade_range: (min, max) longitudinal grade of the street at the ego start, within
            [-0.12, 0.12] (``sim/terrain.py``).
        grade_change_range_per_100m: (min, max) change of the grade per 100 m, within
            [-0.1, 0.1].
        crown_range: (min, max) cross slope of the road, within [0, 0.05].
    """

    street_length_m: float = 140.0
    lanes_per_direction: int = 2
    lane_width_m: float = 3.5
    parking_lane_width_m: float = 2.5
    sidewalk_width_m: float = 3.5
    building_height_range_m: tuple[float, float] = (8.0, 30.0)
    parked_occupancy: float = 0.6
    class_weights: tuple[float, float, float, float] = (0.6, 0.2, 0.12, 0.08)
    num_moving_vehicles: int = 4
    moving_speed_range_mps: tuple[float, float] = (4.0, 11.0)
    clutter_per_100m: float = 20.0
    trees_per_100m: float = 5.0
    poles_per_100m: float = 4.0
    ego_start_x_m: float = 25.0
    ego_lane: int = 0
    sensor_height_m: float = 1.8
    target_class: str = "car"
    target_side: str = "right"
    target_distance_range_m: tuple[float, float] = (18.0, 28.0)
    target_occlusion_range: tuple[float, float] = (0.5, 0.95)
    better_view_radius_m: float = 15.0
    min_view_improvement: float = 0.25
    max_occluder_attempts: int = 600
    vehicle_shapes: str = "realistic"
    has_target: bool = True
    pedestrians_per_100m: float = 4.0
    cyclists_per_100m: float = 1.0
    furniture_per_100m: float = 4.0
    fences_per_100m: float = 1.0
    bushes_per_100m: float = 2.0
    kerb_height_m: float = 0.15
    roadside_per_100m: float = 0.0
    grade_range: tuple[float, float] = (0.0, 0.0)
    grade_change_range_per_100m: tuple[float, float] = (0.0, 0.0)
    crown_range: tuple[float, float] = (0.0, 0.0)

    def __post_init__(self) -> None:
        if self.vehicle_shapes not in ("realistic", "box"):
            raise ScenarioError(
                f"vehicle_shapes={self.vehicle_shapes!r}: must be 'realistic' or 'box'"
            )
        if not isinstance(self.has_target, bool):
            raise ScenarioError(f"has_target={self.has_target!r}: must be true or false")
        for f in fields(self):  # pairs and weight lists keep their length
            value = getattr(self, f.name)
            if isinstance(f.default, tuple) and (
                not isinstance(value, tuple) or len(value) != len(f.default)
            ):
                raise ScenarioError(
                    f"{f.name}={value!r}: must be a list of {len(f.default)} numbers"
                )
        for name in _INT_FIELDS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ScenarioError(f"{name}={value!r}: must be an integer")
        for name, (lo, hi) in _BOUNDS.items():
            value = getattr(self, name)
            values = value if isinstance(value, tuple) else (value,)
            for v in values:
                if not isinstance(v, (int, float)) or not math.isfinite(v) or not lo <= v <= hi:
                    raise ScenarioError(f"{name}={value!r}: must be in [{lo}, {hi}]")
            if isinstance(value, tuple) and len(value) == 2 and value[0] > value[1]:
                raise ScenarioError(f"{name}={value!r}: min must be <= max")
        if len(self.class_weights) != len(CLASSES) or sum(self.class_weights) <= 0:
            raise ScenarioError(
                f"class_weights={self.class_weights!r}: need {len(CLASSES)} "
                "weights >= 0 with a positive sum"
            )
        if self.ego_lane >= self.lanes_per_direction:
            raise ScenarioError(
                f"ego_lane={self.ego_lane}: must be < lanes_per_direction="
                f"{self.lanes_per_direction}"
            )
        far_end = self.ego_start_x_m + self.target_distance_range_m[1]
        if far_end > self.street_length_m - 15.0:
            raise ScenarioError(
                f"ego_start_x_m + target_distance_range_m[1] = {far_end}: must be <= "
                f"street_length_m - 15 = {self.street_length_m - 15.0} (the target must fit)"
            )
        if self.target_class not in CLASSES:
            raise ScenarioError(f"target_class={self.target_class!r}: must be one of {CLASSES}")
        if self.target_side not in ("right", "left"):
            raise ScenarioError(f"target_side={self.target_side!r}: must be 'right' or 'left'")

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (tuples as lists) of every field."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: Any) -> ScenarioConfig:
        """Config from a mapping of field values; unknown keys are an error.

        Raises:
            ScenarioError: not a mapping, an unknown key, or a value out of bounds.
        """
        if not isinstance(data, dict):
            raise ScenarioError(f"scenario config must be a mapping, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ScenarioError(
                f"unknown scenario config field(s) {unknown}; known: {sorted(known)}"
            )
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


_INT_FIELDS = ("lanes_per_direction", "num_moving_vehicles", "ego_lane", "max_occluder_attempts")

# Bounds of numeric fields (tuples: every element); see the class docstring.
_BOUNDS: dict[str, tuple[float, float]] = {
    "street_length_m": (40.0, 1000.0),
    "lanes_per_direction": (1, 4),
    "lane_width_m": (2.5, 5.0),
    "parking_lane_width_m": (2.0, 4.0),
    "sidewalk_width_m": (1.0, 10.0),
    "building_height_range_m": (3.0, 150.0),
    "parked_occupancy": (0.0, 1.0),
    "class_weights": (0.0, math.inf),
    "num_moving_vehicles": (0, 50),
    "moving_speed_range_mps": (0.5, 30.0),
    "clutter_per_100m": (0.0, 200.0),
    "trees_per_100m": (0.0, 50.0),
    "poles_per_100m": (0.0, 50.0),
    "ego_start_x_m": (5.0, math.inf),
    "ego_lane": (0, 3),
    "sensor_height_m": (0.5, 4.0),
    "target_distance_range_m": (5.0, 80.0),
    "target_occlusion_range": (0.0, 1.0),
    "better_view_radius_m": (0.0, 50.0),
    "min_view_improvement": (0.0, 1.0),
    "max_occluder_attempts": (1, 100000),
    "pedestrians_per_100m": (0.0, 200.0),
    "cyclists_per_100m": (0.0, 50.0),
    "furniture_per_100m": (0.0, 200.0),
    "fences_per_100m": (0.0, 50.0),
    "bushes_per_100m": (0.0, 50.0),
    "kerb_height_m": (0.05, 0.3),
    "roadside_per_100m": (0.0, 50.0),
    "grade_range": (-0.12, 0.12),
    "grade_change_range_per_100m": (-0.1, 0.1),
    "crown_range": (0.0, 0.05),
}


@dataclass(frozen=True)
class Scenario:
    """A named scenario: its generator settings and the seed used when none is given."""

    name: str
    description: str
    default_seed: int
    config: ScenarioConfig


def list_scenarios() -> list[str]:
    """Names of the shipped scenarios, sorted."""
    names = {p.stem for d in SCENARIO_DIRS if d.is_dir() for p in d.glob("*.yaml")}
    return sorted(names)


def load_scenario(name_or_path: str | Path) -> Scenario:
    """A shipped scenario by name, or a scenario file by path.

    Raises:
        ScenarioError: unknown name, unreadable file, or invalid content.
    """
    path = Path(name_or_path)
    if not path.suffix:
        found = [
            d / f"{name_or_path}.yaml"
            for d in SCENARIO_DIRS
            if (d / f"{name_or_path}.yaml").is_file()
        ]
        if not found:
            raise ScenarioError(
                f"unknown scenario {str(name_or_path)!r}; known: {list_scenarios()}"
            )
        path = found[0]
    data = read_structured_file(path, ScenarioError)
    if not isinstance(data, dict) or "config" not in data:
        raise ScenarioError(f"{path}: a scenario file needs a 'config' mapping")
    try:
        default_seed = int(data.get("default_seed", 0))
    except (TypeError, ValueError) as err:
        raise ScenarioError(f"{path}: default_seed must be an integer") from err
    if default_seed < 0:
        raise ScenarioError(f"{path}: default_seed={default_seed} must be >= 0")
    try:
        config = ScenarioConfig.from_dict(data["config"] or {})
    except ScenarioError as err:  # the file is the fault; say which
        raise ScenarioError(f"{path}: {err}") from None
    return Scenario(
        name=str(data.get("name", path.stem)),
        description=str(data.get("description", "")),
        default_seed=default_seed,
        config=config,
    )
