"""Building blocks of a scene: objects (oriented boxes holding a box, cylinder or ellipsoid,
with colour and lidar material), lanes, and the YAML/JSON file reader they share.

Every value is validated on construction; a bad one raises ``SceneError`` naming the object and
the field, so a hand-edited scene file fails with a message that points at the mistake.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from sim.materials import CLASSES, KINDS, REFLECTIVITY, SHAPES


class SceneError(ValueError):
    """A scene, scene object or scene file is malformed (the message names the field)."""


def floats(value: Any, n: int, field_name: str) -> tuple[float, ...]:
    """``value`` as ``n`` finite floats, or SceneError naming ``field_name``."""
    try:
        out = tuple(float(v) for v in value)
    except (TypeError, ValueError) as err:
        raise SceneError(f"{field_name}: expected {n} numbers, got {value!r}") from err
    if len(out) != n or not all(math.isfinite(v) for v in out):
        raise SceneError(f"{field_name}: expected {n} finite numbers, got {value!r}")
    return out


@dataclass(frozen=True)
class SceneObject:
    """One object of the scene.

    Attributes:
        name: unique name in the scene (e.g. ``"car_3"``, ``"target"``).
        kind: one of ``sim.materials.KINDS``; vehicles are ``CLASSES``.
        box: ``[x, y, z, length, width, height, yaw]`` in the world frame (metres, radians);
            the shape fills this box.
        color: RGB albedo in [0, 1].
        material: key of ``sim.materials.REFLECTIVITY``.
        shape: ``"box"``, ``"cylinder"`` (axis z, diameter = length = width) or ``"ellipsoid"``.
        speed_mps: forward speed along the heading (vehicles only), 0 for parked/static.
    """

    name: str
    kind: str
    box: tuple[float, ...]
    color: tuple[float, float, float]
    material: str
    shape: str = "box"
    speed_mps: float = 0.0

    def __post_init__(self) -> None:
        where = f"object {self.name!r}"
        if not self.name:
            raise SceneError("object name must be a non-empty string")
        if self.kind not in KINDS:
            raise SceneError(f"{where}: kind {self.kind!r} is not one of {KINDS}")
        box = floats(self.box, 7, f"{where}.box")
        if min(box[3:6]) <= 0.0:
            raise SceneError(f"{where}.box: sizes must be > 0, got {box[3:6]}")
        color = floats(self.color, 3, f"{where}.color")
        if min(color) < 0.0 or max(color) > 1.0:
            raise SceneError(f"{where}.color: components must be in [0, 1], got {color}")
        if self.material not in REFLECTIVITY:
            raise SceneError(f"{where}: material {self.material!r} not in {sorted(REFLECTIVITY)}")
        if self.shape not in SHAPES:
            raise SceneError(f"{where}: shape {self.shape!r} is not one of {SHAPES}")
        speed = float(self.speed_mps)
        if not math.isfinite(speed) or (speed != 0.0 and self.kind not in CLASSES):
            raise SceneError(f"{where}.speed_mps: must be finite and 0 for non-vehicles")
        object.__setattr__(self, "box", box)
        object.__setattr__(self, "color", color)
        object.__setattr__(self, "speed_mps", speed)

    @property
    def is_vehicle(self) -> bool:
        return self.kind in CLASSES

    @property
    def box_array(self) -> np.ndarray:
        """The box as float64 [7]."""
        return np.asarray(self.box, dtype=np.float64)


@dataclass(frozen=True)
class Lane:
    """A lane of the street, parallel to the world x axis.

    Attributes:
        center_y_m: lateral position of the lane centre line (m).
        width_m: lane width (m), > 0.
        direction: +1 for traffic along +x, -1 along -x.
        kind: ``"driving"`` or ``"parking"``.
    """

    center_y_m: float
    width_m: float
    direction: int
    kind: str

    def __post_init__(self) -> None:
        if not (math.isfinite(self.center_y_m) and math.isfinite(self.width_m)):
            raise SceneError(f"lane at y={self.center_y_m}: values must be finite")
        if self.width_m <= 0.0:
            raise SceneError(f"lane.width_m must be > 0, got {self.width_m}")
        if self.direction not in (-1, 1):
            raise SceneError(f"lane.direction must be +1 or -1, got {self.direction}")
        if self.kind not in ("driving", "parking"):
            raise SceneError(f"lane.kind must be 'driving' or 'parking', got {self.kind!r}")


def read_structured_file(path: str | Path, error: type[ValueError]) -> Any:
    """Parsed content of a YAML or JSON file; raises ``error`` naming the file on failure."""
    p = Path(path)
    try:
        text = p.read_bytes().decode("utf-8")
    except OSError as err:
        raise error(f"cannot read {p}: {err.strerror or err}") from err
    except UnicodeDecodeError as err:
        raise error(f"{p} is not a text file (byte {err.start} is not UTF-8)") from err
    try:
        return json.loads(text) if p.suffix == ".json" else yaml.safe_load(text)
    except json.JSONDecodeError as err:
        raise error(f"{p} is not valid JSON (line {err.lineno}: {err.msg})") from err
    except yaml.YAMLError as err:  # one line: the problem and where, not the echoed source
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise error(f"{p} is not valid YAML ({where}{problem})") from err
