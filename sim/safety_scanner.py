"""A planar safety laser scanner and its protective field: the stop a real mobile robot has
below its planner, on raw range returns, whatever the detector reported.

Industrial mobile robots and driverless trucks carry safety laser scanners (IEC 61496-3) whose
protective field stops the vehicle when anything enters it (ISO 3691-4 sizes the field to the
stopping distance at the current speed). Here:

* **Sensor.** One horizontal fan of rays at ``height_m`` above the ground under base_link,
  ``resolution_deg`` apart over 360 deg (two corner scanners' combined view), range
  ``max_range_m``, every ``period_s``. The rays are cast in 2D against the oriented boxes of
  the objects the scan plane cuts (their current poses: moving traffic included); the nearest
  hit of each ray is its return. Boxes rather than meshes: at bumper height a vehicle's box
  and its body differ by centimetres, and a box cast costs a millisecond where rebuilding the
  mesh raycaster every control step would cost tens.
* **Protective field.** The robot's footprint grown by ``margin_m``, swept for the stopping
  distance ``v t_react + v^2 / (2 a) + margin_m`` (reaction ``reaction_s``, braking ``a``)
  both along the robot's current motion (its present steering held: where it goes if the
  follower does nothing new, as speed- and steering-switched fields of real scanners cover)
  and along the rest of the plan being driven. A return inside it stops the robot.

Pure geometry on numpy arrays; the benchmark's episode (bench/croa_sim.py) calls it while a
plan is driven.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


class SafetyScannerError(ValueError):
    """Bad scanner settings or inputs."""


@dataclass(frozen=True)
class SafetyScannerConfig:
    """Attributes:
    height_m: scan plane above the ground under base_link (m), in [0.05, 2].
    resolution_deg: angle between rays (deg), in [0.05, 5].
    max_range_m: longest return (m), in (0, 100].
    period_s: time between scans (s), in [0.01, 1].
    margin_m: the field's growth around the footprint and beyond the stopping distance (m),
        in [0, 1].
    reaction_s: time from a return in the field to full braking (s), in [0, 1].
    """

    height_m: float = 0.4
    resolution_deg: float = 0.5
    max_range_m: float = 20.0
    period_s: float = 0.1
    margin_m: float = 0.1
    reaction_s: float = 0.1

    def __post_init__(self) -> None:
        bounds = {
            "height_m": (0.05, 2.0),
            "resolution_deg": (0.05, 5.0),
            "max_range_m": (1e-3, 100.0),
            "period_s": (0.01, 1.0),
            "margin_m": (0.0, 1.0),
            "reaction_s": (0.0, 1.0),
        }
        check_bounds(self, bounds)


def check_bounds(settings: object, bounds: dict[str, tuple[float, float]]) -> None:
    """Each named attribute of ``settings`` is a finite number within its [lo, hi].

    Raises:
        SafetyScannerError: naming the first that is not.
    """
    for name, (lo, hi) in bounds.items():
        value = getattr(settings, name)
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            raise SafetyScannerError(f"{name}={value!r}: must be a finite number")
        if not lo <= value <= hi:
            raise SafetyScannerError(f"{name}={value!r}: must be in [{lo}, {hi}]")


def box_edges(boxes: np.ndarray) -> np.ndarray:  # [K, 7] -> [4 K, 2, 2]
    """The four footprint edges (start, end points) of each box [x, y, z, l, w, h, yaw]."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 7)
    c, s = np.cos(b[:, 6]), np.sin(b[:, 6])
    local = np.array([[1, 1], [-1, 1], [-1, -1], [1, -1]], dtype=np.float64) * 0.5  # [4, 2]
    dx = local[None, :, 0] * b[:, 3, None]  # [K, 4]
    dy = local[None, :, 1] * b[:, 4, None]
    corners = np.stack([b[:, 0, None] + c[:, None] * dx - s[:, None] * dy,
                        b[:, 1, None] + s[:, None] * dx + c[:, None] * dy], axis=-1)  # fmt: skip
    return np.stack([corners, np.roll(corners, -1, axis=1)], axis=2).reshape(-1, 2, 2)


class SafetyScanner:
    """The planar scanner of a ``SafetyScannerConfig`` (module docstring)."""

    def __init__(self, config: SafetyScannerConfig | None = None) -> None:
        self.config = config or SafetyScannerConfig()
        n = round(360.0 / self.config.resolution_deg)
        angles = np.deg2rad(self.config.resolution_deg) * np.arange(n)
        self.directions = np.stack([np.cos(angles), np.sin(angles)], axis=1)  # [R, 2] world

    def scan(self, origin_xy: np.ndarray, ground_z_m: float, boxes: np.ndarray) -> np.ndarray:
        """Returns [N, 2] (map frame) of one scan from ``origin_xy`` against ``boxes`` [K, 7]
        (centre z, full heights): only the boxes the plane at ``ground_z_m + height_m`` cuts.

        Raises:
            SafetyScannerError: a non-finite origin or malformed boxes.
        """
        o = np.asarray(origin_xy, dtype=np.float64).reshape(-1)
        b = np.asarray(boxes, dtype=np.float64)
        if o.shape != (2,) or not np.all(np.isfinite(o)) or not math.isfinite(ground_z_m):
            raise SafetyScannerError(f"origin {origin_xy!r} / ground {ground_z_m!r}: not finite")
        if b.size and (b.ndim != 2 or b.shape[1] != 7 or not np.all(np.isfinite(b))):
            raise SafetyScannerError(f"boxes: need finite [K, 7], got shape {b.shape}")
        plane = ground_z_m + self.config.height_m
        if b.size == 0:
            return np.zeros((0, 2))
        cut = b[(b[:, 2] - b[:, 5] / 2 <= plane) & (b[:, 2] + b[:, 5] / 2 >= plane)]
        if len(cut) == 0:
            return np.zeros((0, 2))
        edges = box_edges(cut)  # [E, 2, 2]
        a, e = edges[:, 0] - o, edges[:, 1] - edges[:, 0]  # edge start (from o), direction
        d = self.directions  # [R, 2]
        # o + t d = o + a + u e  ->  t (d x e) = a x e,  u (d x e) = a x d   (2D cross products)
        den = d[:, None, 0] * e[None, :, 1] - d[:, None, 1] * e[None, :, 0]  # [R, E]
        a_x_e = a[:, 0] * e[:, 1] - a[:, 1] * e[:, 0]  # [E]
        a_x_d = a[None, :, 0] * d[:, None, 1] - a[None, :, 1] * d[:, None, 0]  # [R, E]
        with np.errstate(divide="ignore", invalid="ignore"):
            t = a_x_e[None, :] / den
            u = a_x_d / den
        ok = (np.abs(den) > 1e-12) & (t >= 0.0) & (u >= 0.0) & (u <= 1.0)
        t = np.where(ok, t, np.inf).min(axis=1)  # [R] nearest hit
        hit = t <= self.config.max_range_m
        return o + d[hit] * t[hit, None]


def stopping_distance_m(speed_mps: float, decel_mps2: float, config: SafetyScannerConfig) -> float:
    """``v t_react + v^2 / (2 a) + margin`` (m)."""
    if not decel_mps2 > 0:
        raise SafetyScannerError(f"decel_mps2={decel_mps2!r}: must be > 0")
    v = abs(speed_mps)
    return v * config.reaction_s + v * v / (2.0 * decel_mps2) + config.margin_m


def field_poses(poses: np.ndarray, here: np.ndarray, distance_m: float) -> np.ndarray:
    """The robot's pose ``here`` [3] and the plan poses [M, 3] (from the one nearest the robot
    on) within ``distance_m`` of path length: where the footprint sweeps while stopping."""
    p = np.asarray(poses, dtype=np.float64).reshape(-1, 3)
    if len(p) == 0:
        return np.asarray(here, dtype=np.float64).reshape(1, 3)
    start = int(np.argmin(np.hypot(p[:, 0] - here[0], p[:, 1] - here[1])))
    rest = p[start:]
    s = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(rest[:, :2], axis=0).T))])
    return np.vstack([np.asarray(here, dtype=np.float64).reshape(1, 3), rest[s <= distance_m]])


def arc_poses(
    here: np.ndarray,  # [3] base_link x, y, yaw
    speed_mps: float,
    steer_rad: float,
    wheelbase_m: float,
    distance_m: float,
    step_m: float = 0.25,
) -> np.ndarray:  # [M, 3]
    """Base_link poses over ``distance_m`` of the rear axle's arc with the steering held
    (bicycle model, base_link ``wheelbase_m / 2`` ahead of the rear axle; backwards when
    ``speed_mps`` < 0)."""
    x, y, yaw = (float(v) for v in np.asarray(here, dtype=np.float64).reshape(3))
    half = wheelbase_m / 2
    xr, yr = x - half * math.cos(yaw), y - half * math.sin(yaw)
    kappa = math.tan(steer_rad) / wheelbase_m
    s = np.linspace(0.0, distance_m, max(2, math.ceil(distance_m / step_m) + 1))
    s = -s if speed_mps < 0 else s
    heading = yaw + kappa * s
    if abs(kappa) < 1e-9:
        xs, ys = xr + s * math.cos(yaw), yr + s * math.sin(yaw)
    else:
        xs = xr + (np.sin(heading) - math.sin(yaw)) / kappa
        ys = yr - (np.cos(heading) - math.cos(yaw)) / kappa
    return np.stack([xs + half * np.cos(heading), ys + half * np.sin(heading), heading], axis=1)


def in_field(
    points_xy: np.ndarray,  # [N, 2] returns, map frame
    poses: np.ndarray,  # [M, 3] base_link poses the footprint sweeps (``field_poses``)
    length_m: float,
    width_m: float,
    margin_m: float,
) -> np.ndarray:  # [N] bool
    """Returns inside the footprint (``length_m`` x ``width_m`` centred on base_link) grown by
    ``margin_m`` at any of ``poses``."""
    pts = np.asarray(points_xy, dtype=np.float64).reshape(-1, 2)
    inside = np.zeros(len(pts), dtype=bool)
    half = np.array([length_m / 2 + margin_m, width_m / 2 + margin_m])
    for x, y, yaw in np.asarray(poses, dtype=np.float64).reshape(-1, 3):
        c, s = math.cos(yaw), math.sin(yaw)
        rel = pts - (x, y)
        local = np.stack([c * rel[:, 0] + s * rel[:, 1], -s * rel[:, 0] + c * rel[:, 1]], axis=1)
        inside |= np.all(np.abs(local) <= half, axis=1)
    return inside
