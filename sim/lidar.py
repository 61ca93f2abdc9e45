"""A rotating multi-beam lidar simulated by raycasting the world.

Beam model: ``beams`` rings with elevations from a beam table (``elevations_deg``: a real
sensor's table, ``sim/sensors.py``) or spaced uniformly from ``vertical_fov_down_deg`` (ring 0,
lowest) to ``vertical_fov_up_deg``; one column every ``azimuth_resolution_deg`` from azimuth
-180 deg. For a ray with a first hit at range ``r`` on a surface of reflectivity ``rho`` at
incidence ``theta`` (angle to the surface normal):

- see-through (``see_through``): a surface whose material returns a beam only with probability
  ``p < 1`` (glass, wire mesh, foliage; ``sim.materials.RETURN_PROBABILITY``) lets it through
  with probability ``1 - p``; the beam goes on to the next surface (at most ``_MAX_PASSES``
  surfaces), so windows give few points and the car's far side or interior shows through;
- detection (``range_10pct_m`` > 0): the return is detected with probability
  ``1 / (1 + (S10 / S)^k)``, ``S = rho |cos theta| / r^2`` the received power (Lambertian
  target, beam wider than nothing: the lidar equation up to constants), ``S10 = 0.1 /
  range_10pct_m^2`` the power of a 10 % target at normal incidence at ``range_10pct_m``, where
  detection is 50 %, ``k = detection_steepness``: dark (tyres, dark paint), grazing (far road)
  and far returns drop out; on top, every return is lost with probability ``dropout_prob``;
- returns outside ``[min_range_m, max_range_m]`` are dropped; the range gets Gaussian noise of
  ``range_noise_std_m`` along the ray;
- intensity ``rho * |cos theta|^a`` (``a = intensity_incidence_exponent``; 1: Lambertian, 0:
  calibrated reflectivity) times ``1 + N(0, intensity_noise_std)``, clipped to [0, 1];
- rolling shutter (``scan(..., motion=...)``): column ``j`` of ``C`` is fired at
  ``t_j = (j + 1 - C) / C * scan_period_s`` (the scan ends at the pose given, t = 0); its rays
  leave from the pose the lidar has at ``t_j`` when it moves with constant velocity and yaw rate
  in its own frame, and its points are reported in that same moving frame, as a real spinning
  lidar does: a moving robot sees the world smeared by up to ``v * scan_period_s``.
Points come column by column (azimuth-major), ring-minor, in the lidar frame, as float32
[N, 5] = (x, y, z, intensity, ring), the layout of docs/conventions.md. With the defaults
(no beam table, no detection model, no see-through, incidence exponent 1, no intensity noise)
the model is the simple one of earlier versions: intensity ``rho |cos theta|``, uniform rings.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from sim.world import RayHits, World, check_transform, rotate

SUPPORTED_BEAMS = (16, 32, 64, 128)
_MAX_PASSES = 3  # surfaces a see-through beam may cross before it counts as lost
_PASS_OFFSET_M = 0.01  # a passing beam restarts this far behind the surface it crossed


class LidarError(ValueError):
    """Bad lidar configuration or pose (the message names the field and the limit)."""


@dataclass(frozen=True)
class LidarConfig:
    """Lidar settings.

    Attributes:
        beams: number of rings, one of 16, 32, 64, 128.
        vertical_fov_up_deg: elevation of the top ring (deg), in [-90, 90], > the bottom one.
        vertical_fov_down_deg: elevation of the bottom ring (deg), in [-90, 90].
        azimuth_resolution_deg: angle between columns (deg), in [0.05, 10].
        min_range_m: returns closer than this are dropped (m), in [0, max_range_m).
        max_range_m: returns farther than this are dropped (m), in (0, 1000].
        range_noise_std_m: standard deviation of Gaussian range noise (m), in [0, 1].
        dropout_prob: probability that a return is lost, in [0, 1).
        elevations_deg: beam table, ``beams`` elevations in ascending order within the two
            field-of-view bounds (deg); empty: uniform spacing.
        range_10pct_m: range at which a 10 % reflective target at normal incidence is detected
            half the time (m), in [0, 1000]; 0 disables the detection model.
        detection_steepness: exponent ``k`` of the detection model, in [0.5, 10].
        intensity_incidence_exponent: ``a`` in ``rho |cos theta|^a``, in [0, 2].
        intensity_noise_std: relative Gaussian noise of the intensity, in [0, 1].
        see_through: beams may pass glass, wire mesh and foliage (module docstring).
        scan_period_s: time of one revolution (s), in [0.01, 1]; used with ``motion``.
    """

    beams: int = 32
    vertical_fov_up_deg: float = 15.0
    vertical_fov_down_deg: float = -25.0
    azimuth_resolution_deg: float = 0.2
    min_range_m: float = 0.5
    max_range_m: float = 100.0
    range_noise_std_m: float = 0.02
    dropout_prob: float = 0.01
    elevations_deg: tuple[float, ...] = ()
    range_10pct_m: float = 0.0
    detection_steepness: float = 2.0
    intensity_incidence_exponent: float = 1.0
    intensity_noise_std: float = 0.0
    see_through: bool = False
    scan_period_s: float = 0.1

    def __post_init__(self) -> None:
        if self.beams not in SUPPORTED_BEAMS:
            raise LidarError(f"beams={self.beams!r}: must be one of {SUPPORTED_BEAMS}")
        checks = (
            ("vertical_fov_up_deg", -90.0, 90.0),
            ("vertical_fov_down_deg", -90.0, 90.0),
            ("azimuth_resolution_deg", 0.05, 10.0),
            ("max_range_m", 1e-3, 1000.0),
            ("min_range_m", 0.0, self.max_range_m),
            ("range_noise_std_m", 0.0, 1.0),
            ("dropout_prob", 0.0, 0.999),
            ("range_10pct_m", 0.0, 1000.0),
            ("detection_steepness", 0.5, 10.0),
            ("intensity_incidence_exponent", 0.0, 2.0),
            ("intensity_noise_std", 0.0, 1.0),
            ("scan_period_s", 0.01, 1.0),
        )
        for name, lo, hi in checks:
            value = getattr(self, name)
            if (
                not isinstance(value, (int, float))
                or not math.isfinite(value)
                or not lo <= value <= hi
            ):
                raise LidarError(f"{name}={value!r}: must be in [{lo}, {hi}]")
        if self.vertical_fov_up_deg <= self.vertical_fov_down_deg:
            raise LidarError(
                f"vertical_fov_up_deg={self.vertical_fov_up_deg} must be > "
                f"vertical_fov_down_deg={self.vertical_fov_down_deg}"
            )
        if self.min_range_m >= self.max_range_m:
            raise LidarError(f"min_range_m={self.min_range_m} must be < max_range_m")
        table = tuple(float(e) for e in self.elevations_deg)
        if table:
            lo, hi = self.vertical_fov_down_deg - 1e-6, self.vertical_fov_up_deg + 1e-6
            if (
                len(table) != self.beams
                or list(table) != sorted(table)
                or not all(lo <= e <= hi for e in table)
            ):
                raise LidarError(
                    f"elevations_deg: need {self.beams} ascending values within "
                    f"[{self.vertical_fov_down_deg}, {self.vertical_fov_up_deg}] deg"
                )
        object.__setattr__(self, "elevations_deg", table)

    @property
    def columns(self) -> int:
        """Number of azimuth columns per revolution."""
        return round(360.0 / self.azimuth_resolution_deg)

    @property
    def elevations(self) -> np.ndarray:
        """Ring elevations (deg) [beams], ring 0 lowest."""
        if self.elevations_deg:
            return np.asarray(self.elevations_deg, dtype=np.float64)
        return np.linspace(self.vertical_fov_down_deg, self.vertical_fov_up_deg, self.beams)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["elevations_deg"] = list(self.elevations_deg)
        return out


@dataclass(frozen=True)
class LidarMotion:
    """Motion of the lidar during a scan (rolling shutter), in its own frame at the scan's end.

    Attributes:
        velocity_mps: (vx, vy, vz) linear velocity (m/s).
        yaw_rate_radps: rotation rate about the lidar's z axis (rad/s).
    """

    velocity_mps: tuple[float, float, float] = (0.0, 0.0, 0.0)
    yaw_rate_radps: float = 0.0


@dataclass(frozen=True)
class LidarScan:
    """One lidar revolution.

    Attributes:
        points: float32 [N, 5] x, y, z (lidar frame, m), intensity [0, 1], ring (0 = lowest).
        object_index: int32 [N] index into ``scene.objects`` of the object each point hit.
    """

    points: np.ndarray  # [N, 5]
    object_index: np.ndarray  # [N]


class Lidar:
    """Casts the beam pattern of a ``LidarConfig`` into a ``World``."""

    def __init__(self, config: LidarConfig | None = None) -> None:
        self.config = config or LidarConfig()
        c = self.config
        elevation = np.deg2rad(c.elevations)
        azimuth = np.deg2rad(-180.0 + c.azimuth_resolution_deg * np.arange(c.columns))
        az, el = np.meshgrid(azimuth, elevation, indexing="ij")  # [A, B], column-major order
        self.directions = np.stack(
            [np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)], axis=-1
        ).reshape(-1, 3)  # [A * B, 3] unit, lidar frame
        self.rings = np.broadcast_to(np.arange(c.beams), az.shape).reshape(-1)  # [A * B]
        self.column = np.repeat(np.arange(c.columns), c.beams)  # [A * B]

    @property
    def rays_per_scan(self) -> int:
        return len(self.directions)

    def _ray_poses(
        self, T: np.ndarray, motion: LidarMotion | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """World origins [R, 3] (or [3]) and unit directions [R, 3] of every ray."""
        if motion is None:
            return T[:3, 3], rotate(T[:3, :3], self.directions)
        c = self.config
        t_col = (np.arange(c.columns) + 1.0 - c.columns) / c.columns * c.scan_period_s  # <= 0
        angle = motion.yaw_rate_radps * t_col  # [C] lidar yaw at t relative to the end
        cos, sin = np.cos(angle), np.sin(angle)
        offset = np.asarray(motion.velocity_mps, dtype=np.float64)[None] * t_col[:, None]
        # Rotate each ray by its column's yaw, then into the world with the end pose.
        d = self.directions.reshape(c.columns, c.beams, 3)
        local = np.stack(
            [
                cos[:, None] * d[..., 0] - sin[:, None] * d[..., 1],
                sin[:, None] * d[..., 0] + cos[:, None] * d[..., 1],
                d[..., 2],
            ],
            axis=-1,
        ).reshape(-1, 3)
        origins = rotate(T[:3, :3], np.repeat(offset, c.beams, axis=0)) + T[:3, 3]
        return origins, rotate(T[:3, :3], local)

    def _cast(
        self,
        world: World,
        origins: np.ndarray,
        dirs: np.ndarray,
        rng: np.random.Generator | None,
    ) -> tuple[np.ndarray, RayHits]:
        """Total range [R] and the surface that returned each ray (see-through included)."""
        hits = world.cast_hits(origins, dirs)
        t = hits.t_hit.copy()
        if not (self.config.see_through and rng is not None and hits.material is not None):
            return t, hits
        obj, normals, material = hits.object_index, hits.normals, hits.material
        origins = np.broadcast_to(origins, dirs.shape)
        for _ in range(_MAX_PASSES - 1):
            hit = np.flatnonzero(obj >= 0)
            p_return = world.material_return_probability[material[hit]]
            through = hit[rng.random(len(hit)) >= p_return]
            if len(through) == 0:
                break
            start = t[through] + _PASS_OFFSET_M
            nxt = world.cast_hits(origins[through] + dirs[through] * start[:, None], dirs[through])
            t[through] = start + nxt.t_hit
            obj[through], normals[through] = nxt.object_index, nxt.normals
            material[through] = nxt.material
        return t, RayHits(t, obj, normals, material)

    def scan(
        self,
        world: World,
        T_world_lidar: np.ndarray,  # [4, 4]
        rng: np.random.Generator | None = None,
        motion: LidarMotion | None = None,
    ) -> LidarScan:
        """One scan ending at pose ``T_world_lidar``; ``rng`` draws noise, dropout and
        see-through (None: none of them); ``motion`` adds rolling-shutter distortion.

        Raises:
            LidarError: ``T_world_lidar`` is not a finite rigid 4x4 transform.
        """
        T = check_transform(T_world_lidar, "T_world_lidar", LidarError)
        c = self.config
        origins, world_dirs = self._ray_poses(T, motion)
        t, hits = self._cast(world, origins, world_dirs, rng)
        keep = (t >= c.min_range_m) & (t <= c.max_range_m) & (hits.object_index >= 0)
        cos_incidence = np.abs(np.einsum("nj,nj->n", hits.normals, world_dirs))
        obj = hits.object_index
        rho = (
            world.material_reflectivity[hits.material]
            if hits.material is not None
            else world.reflectivity[obj]
        )
        if rng is not None and c.range_10pct_m > 0.0:
            signal = rho * cos_incidence / np.maximum(t, 1e-3) ** 2
            s10 = 0.1 / c.range_10pct_m**2
            with np.errstate(divide="ignore", over="ignore"):
                p_detect = 1.0 / (1.0 + (s10 / np.maximum(signal, 1e-30)) ** c.detection_steepness)
            keep &= rng.random(len(t)) < p_detect
        if rng is not None and c.dropout_prob > 0.0:
            keep &= rng.random(len(t)) >= c.dropout_prob
        idx = np.flatnonzero(keep)
        r = t[idx]
        if rng is not None and c.range_noise_std_m > 0.0:
            r = np.maximum(r + rng.normal(0.0, c.range_noise_std_m, len(idx)), 0.0)
        intensity = rho[idx] * cos_incidence[idx] ** c.intensity_incidence_exponent
        if rng is not None and c.intensity_noise_std > 0.0:
            intensity = intensity * (1.0 + rng.normal(0.0, c.intensity_noise_std, len(idx)))
        points = np.empty((len(idx), 5), dtype=np.float32)
        points[:, :3] = self.directions[idx] * r[:, None]
        points[:, 3] = np.clip(intensity, 0.0, 1.0)
        points[:, 4] = self.rings[idx]
        return LidarScan(points=points, object_index=obj[idx].astype(np.int32))
