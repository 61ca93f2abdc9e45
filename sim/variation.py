"""Domain randomisation for labelled datasets: many sensors, mountings, streets and motions.

A ``Variation`` says how each group of frames (one scene) and each frame is drawn:

- scene: a scenario from ``scenarios`` (weights ``scenario_weights``), its street randomised
  (``randomise_scenario``): lanes, widths, parking occupancy, class mix, traffic, clutter,
  pedestrians, cyclists, furniture, fences, bushes, kerb height, and, with probability
  ``slope_probability``, a grade of up to +-``max_grade``, a vertical curve and a road crown;
  target searches are relaxed (any occlusion) so generation stays fast, except for scenarios in
  ``keep_occlusion`` (the occluded-target views); with ``roadside_range_per_100m`` above 0,
  roadside walls, planters, hedges and kerb extensions (``sim/roadside.py``) at a rate uniform
  in that range (drawn after every other street draw, so without it datasets are unchanged);
- sensor: a model from ``sensors`` (``sim/sensors.py``), each beam's elevation jittered by a
  unit's calibration spread;
- mounting: height uniform in ``height_range_m``, pitch and roll N(0, ``tilt_std_rad``) clipped
  to 2.5 sigma, on a robot standing on the terrain (its own pitch and roll follow the ground);
- motion: forward speed uniform in ``speed_range_mps``, yaw rate N(0, ``yaw_rate_std_radps``),
  giving rolling-shutter distortion over the sensor's scan period.
All draws come from the dataset writer's per-group and per-frame generators, so a seed fixes
the dataset.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from sim.lidar import LidarMotion
from sim.scenarios import Scenario, ScenarioConfig
from sim.sensors import SENSORS


class VariationError(ValueError):
    """A variation setting is out of its bounds (the message names the field)."""


@dataclass(frozen=True)
class Variation:
    """How a mixed dataset varies (module docstring)."""

    sensors: tuple[str, ...] = ("hdl64e", "hdl32e", "vlp16", "os1-64")
    sensor_weights: tuple[float, ...] = ()  # empty: uniform
    height_range_m: tuple[float, float] = (1.0, 2.2)
    tilt_std_rad: float = 0.015
    speed_range_mps: tuple[float, float] = (0.0, 12.0)
    yaw_rate_std_radps: float = 0.1
    scenarios: tuple[str, ...] = ("urban-clutter", "occluded-target", "open-road", "negatives")
    scenario_weights: tuple[float, ...] = (0.35, 0.2, 0.3, 0.15)
    keep_occlusion: tuple[str, ...] = ("occluded-target",)
    slope_probability: float = 0.5
    max_grade: float = 0.06
    roadside_range_per_100m: tuple[float, float] = (0.0, 0.0)

    def __post_init__(self) -> None:
        unknown = [s for s in self.sensors if s not in SENSORS]
        if not self.sensors or unknown:
            raise VariationError(
                f"sensors={self.sensors}: unknown {unknown}; known {sorted(SENSORS)}"
            )
        for name, weights, n in (
            ("sensor_weights", self.sensor_weights, len(self.sensors)),
            ("scenario_weights", self.scenario_weights, len(self.scenarios)),
        ):
            if weights and (len(weights) != n or min(weights) < 0 or sum(weights) <= 0):
                raise VariationError(f"{name}={weights}: need {n} weights >= 0, sum > 0")
        lo, hi = self.height_range_m
        if not 0.2 <= lo <= hi <= 5.0:
            raise VariationError(
                f"height_range_m={self.height_range_m}: need 0.2 <= min <= max <= 5"
            )
        lo, hi = self.roadside_range_per_100m
        if not 0.0 <= lo <= hi <= 50.0:
            raise VariationError(
                f"roadside_range_per_100m={self.roadside_range_per_100m}: need 0 <= min <= max"
                " <= 50"
            )
        lo, hi = self.speed_range_mps
        if not 0.0 <= lo <= hi <= 40.0:
            raise VariationError(
                f"speed_range_mps={self.speed_range_mps}: need 0 <= min <= max <= 40"
            )
        checks = {
            "tilt_std_rad": (0.0, 0.1),
            "yaw_rate_std_radps": (0.0, 1.0),
            "slope_probability": (0.0, 1.0),
            "max_grade": (0.0, 0.12),
        }
        for name, (lo, hi) in checks.items():
            if not lo <= getattr(self, name) <= hi:
                raise VariationError(f"{name}={getattr(self, name)}: must be in [{lo}, {hi}]")

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    def pick(
        self, rng: np.random.Generator, names: tuple[str, ...], weights: tuple[float, ...]
    ) -> str:
        w = np.asarray(weights or [1.0] * len(names), dtype=np.float64)
        return names[int(rng.choice(len(names), p=w / w.sum()))]

    def mounting(self, rng: np.random.Generator) -> tuple[float, float, float]:
        """(height_m, pitch_rad, roll_rad) of the lidar on the robot."""
        lim = 2.5 * self.tilt_std_rad
        pitch, roll = np.clip(rng.normal(0.0, self.tilt_std_rad, 2), -lim, lim)
        return float(rng.uniform(*self.height_range_m)), float(pitch), float(roll)

    def motion(self, rng: np.random.Generator) -> tuple[float, LidarMotion]:
        """Forward speed and the lidar's motion during the scan (lidar frame ~ robot frame)."""
        speed = float(rng.uniform(*self.speed_range_mps))
        yaw_rate = float(rng.normal(0.0, self.yaw_rate_std_radps))
        return speed, LidarMotion((speed, 0.0, 0.0), yaw_rate)


def randomise_scenario(
    scenario: Scenario, rng: np.random.Generator, variation: Variation
) -> Scenario:
    """``scenario`` with its street drawn at random (module docstring)."""
    c = scenario.config
    lanes = int(rng.integers(1, 4))
    weights = np.asarray(c.class_weights) * rng.uniform(0.6, 1.6, 4)
    sloped = rng.random() < variation.slope_probability
    grade = float(rng.uniform(-variation.max_grade, variation.max_grade)) if sloped else 0.0
    change = float(rng.uniform(-0.04, 0.04)) if sloped else 0.0
    crown = float(rng.uniform(0.01, 0.03)) if sloped else 0.0
    vehicles = c.parked_occupancy > 0.0 or c.num_moving_vehicles > 0
    new: dict[str, Any] = {
        "lanes_per_direction": lanes,
        "lane_width_m": float(rng.uniform(3.0, 3.8)),
        "parking_lane_width_m": float(rng.uniform(2.2, 2.8)),
        "sidewalk_width_m": float(rng.uniform(2.5, 5.0)),
        "ego_lane": int(rng.integers(lanes)),
        "pedestrians_per_100m": float(rng.uniform(1.0, 15.0)),
        "cyclists_per_100m": float(rng.uniform(0.0, 4.0)),
        "furniture_per_100m": float(rng.uniform(1.0, 10.0)),
        "fences_per_100m": float(rng.uniform(0.0, 3.0)),
        "bushes_per_100m": float(rng.uniform(0.0, 6.0)),
        "trees_per_100m": float(rng.uniform(1.0, 10.0)),
        "clutter_per_100m": float(rng.uniform(5.0, 40.0)),
        "kerb_height_m": float(rng.uniform(0.10, 0.20)),
        "grade_range": (grade, grade),
        "grade_change_range_per_100m": (change, change),
        "crown_range": (crown, crown),
    }
    if vehicles:
        new |= {
            "parked_occupancy": float(rng.uniform(0.3, 0.9)),
            "class_weights": tuple(float(w) for w in weights),
            "num_moving_vehicles": int(rng.integers(1, 9)),
        }
    if c.has_target and scenario.name not in variation.keep_occlusion:
        new |= {"target_occlusion_range": (0.0, 1.0), "min_view_improvement": 0.0}
    if variation.roadside_range_per_100m[1] > 0.0:
        new["roadside_per_100m"] = float(rng.uniform(*variation.roadside_range_per_100m))
    return replace(scenario, config=replace(c, **new))


NEGATIVES = Scenario(
    "negatives",
    "no vehicles: pedestrians, cyclists, furniture, fences and plants only",
    0,
    ScenarioConfig(
        has_target=False,
        parked_occupancy=0.0,
        num_moving_vehicles=0,
        pedestrians_per_100m=12.0,
        cyclists_per_100m=4.0,
        furniture_per_100m=10.0,
        fences_per_100m=3.0,
        bushes_per_100m=6.0,
    ),
)


def sensor_pose_on_robot(height_m: float, pitch_rad: float, roll_rad: float) -> np.ndarray:
    """``T_base_lidar`` [4, 4]: the lidar at ``height_m`` above base_link, tilted."""
    cp, sp, cr, sr = (
        math.cos(pitch_rad),
        math.sin(pitch_rad),
        math.cos(roll_rad),
        math.sin(roll_rad),
    )
    T = np.eye(4)
    T[:3, :3] = np.array([[cp, 0, sp], [0, 1, 0], [-sp, 0, cp]]) @ np.array(
        [[1, 0, 0], [0, cr, -sr], [0, sr, cr]]
    )
    T[2, 3] = height_m
    return T
