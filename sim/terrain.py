"""Ground that slopes: the height of the street surface above the flat ``z = 0`` plane.

A terrain is a road along x with a longitudinal grade that changes linearly along the street
(a vertical curve, as in road design: crest or sag) and a crowned cross-section (the road falls
from its centre line to both kerbs and is level beyond them):

    h(x, y) = grade * (x - x_ref_m) + 0.5 * (grade_change_per_m) * (x - x_ref_m)^2
              - crown * min(|y|, crown_half_width_m)

Typical values: urban grades up to 6-8 %, vertical curves changing the grade by a few percent
over 100 m, crown (cross slope) 1.5-2.5 % (AASHTO and most national road design guides).
A scene with a terrain stores object boxes at their true height (the generator lifts each object
onto the surface at its centre); the world drapes the ground, road, sidewalk and markings over the
surface and shears every other mesh by ``h(vertex) - h(centre)`` so it follows the slope
(``sim/world.py``). ``Terrain()`` is flat.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


class TerrainError(ValueError):
    """A terrain value is out of its bounds (the message names the field and the limit)."""


_BOUNDS = {
    "grade": (-0.15, 0.15),
    "grade_change_per_m": (-0.002, 0.002),
    "x_ref_m": (-1e4, 1e4),
    "crown": (0.0, 0.06),
    "crown_half_width_m": (0.0, 50.0),
}


@dataclass(frozen=True)
class Terrain:
    """Street surface height (module docstring).

    Attributes:
        grade: longitudinal slope dz/dx at ``x_ref_m``, in [-0.15, 0.15].
        grade_change_per_m: change of the grade per metre along x (vertical curve), in
            [-0.002, 0.002] (0.2 % per metre: a crest or sag on a residential street).
        x_ref_m: where the grade is ``grade`` and the height 0 (world x, m).
        crown: cross slope of the road from its centre line, in [0, 0.06].
        crown_half_width_m: distance from the centre line to the kerb, where the crown stops
            (m), in [0, 50].
    """

    grade: float = 0.0
    grade_change_per_m: float = 0.0
    x_ref_m: float = 0.0
    crown: float = 0.0
    crown_half_width_m: float = 0.0

    def __post_init__(self) -> None:
        for name, (lo, hi) in _BOUNDS.items():
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                raise TerrainError(f"terrain.{name}={value!r}: must be a finite number")
            if not lo <= value <= hi:
                raise TerrainError(f"terrain.{name}={value!r}: must be in [{lo}, {hi}]")
            object.__setattr__(self, name, float(value))

    @property
    def is_flat(self) -> bool:
        return self.grade == 0.0 and self.grade_change_per_m == 0.0 and self.crown == 0.0

    def height(self, x: np.ndarray | float, y: np.ndarray | float) -> np.ndarray:
        """Surface height h(x, y) (m), broadcast over the inputs."""
        dx = np.asarray(x, dtype=np.float64) - self.x_ref_m
        ay = np.minimum(np.abs(np.asarray(y, dtype=np.float64)), self.crown_half_width_m)
        return self.grade * dx + 0.5 * self.grade_change_per_m * dx * dx - self.crown * ay

    def gradient(self, x: float, y: float) -> tuple[float, float]:
        """(dh/dx, dh/dy) at a point."""
        dhdx = self.grade + self.grade_change_per_m * (x - self.x_ref_m)
        dhdy = -self.crown * math.copysign(1.0, y) if abs(y) < self.crown_half_width_m else 0.0
        return dhdx, dhdy

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> Terrain:
        """Terrain from ``to_dict`` output.

        Raises:
            TerrainError: not a mapping, unknown key or bad value.
        """
        if not isinstance(data, dict):
            raise TerrainError(f"terrain must be a mapping, got {type(data).__name__}")
        unknown = sorted(set(data) - set(_BOUNDS))
        if unknown:
            raise TerrainError(f"unknown terrain field(s) {unknown}; known: {sorted(_BOUNDS)}")
        return cls(**data)


def surface_frame(terrain: Terrain, x: float, y: float, yaw: float) -> np.ndarray:
    """``T_world_base`` [4, 4] of a vehicle standing at (x, y) with heading ``yaw`` on the
    surface: origin on the surface, z along its normal, x the heading projected on it."""
    dhdx, dhdy = terrain.gradient(x, y)
    up = np.array([-dhdx, -dhdy, 1.0])
    up /= np.linalg.norm(up)
    heading = np.array([math.cos(yaw), math.sin(yaw), 0.0])
    fwd = heading - up * (heading @ up)
    fwd /= np.linalg.norm(fwd)
    left = np.cross(up, fwd)
    T = np.eye(4)
    T[:3, :3] = np.stack([fwd, left, up], axis=1)
    T[:3, 3] = (x, y, float(terrain.height(x, y)))
    return T
