"""A rotating multi-beam lidar simulated by raycasting the world.

Beam model: ``beams`` rings with elevations spaced uniformly from ``vertical_fov_down_deg``
(ring 0, lowest) to ``vertical_fov_up_deg``; one column every ``azimuth_resolution_deg`` from
azimuth -180 deg. A return at range ``r`` in ``[min_range_m, max_range_m]`` is kept with
probability ``1 - dropout_prob``; its range gets Gaussian noise of ``range_noise_std_m``; its
intensity is ``reflectivity(material) * |cos(incidence)|`` in [0, 1]. The scan is instantaneous
(no motion distortion). Points come column by column (azimuth-major), ring-minor, in the lidar
frame, as float32 [N, 5] = (x, y, z, intensity, ring), the layout of docs/conventions.md.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from sim.world import World, check_transform, rotate

SUPPORTED_BEAMS = (16, 32, 64, 128)


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
    """

    beams: int = 32
    vertical_fov_up_deg: float = 15.0
    vertical_fov_down_deg: float = -25.0
    azimuth_resolution_deg: float = 0.2
    min_range_m: float = 0.5
    max_range_m: float = 100.0
    range_noise_std_m: float = 0.02
    dropout_prob: float = 0.01

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

    @property
    def columns(self) -> int:
        """Number of azimuth columns per revolution."""
        return round(360.0 / self.azimuth_resolution_deg)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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
        elevation = np.deg2rad(np.linspace(c.vertical_fov_down_deg, c.vertical_fov_up_deg, c.beams))
        azimuth = np.deg2rad(-180.0 + c.azimuth_resolution_deg * np.arange(c.columns))
        az, el = np.meshgrid(azimuth, elevation, indexing="ij")  # [A, B], column-major order
        self.directions = np.stack(
            [np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)], axis=-1
        ).reshape(-1, 3)  # [A * B, 3] unit, lidar frame
        self.rings = np.broadcast_to(np.arange(c.beams), az.shape).reshape(-1)  # [A * B]

    @property
    def rays_per_scan(self) -> int:
        return len(self.directions)

    def scan(
        self,
        world: World,
        T_world_lidar: np.ndarray,  # [4, 4]
        rng: np.random.Generator | None = None,
    ) -> LidarScan:
        """One scan from pose ``T_world_lidar``; ``rng`` draws noise and dropout (None: none).

        Raises:
            LidarError: ``T_world_lidar`` is not a finite rigid 4x4 transform.
        """
        T = check_transform(T_world_lidar, "T_world_lidar", LidarError)
        c = self.config
        world_dirs = rotate(T[:3, :3], self.directions)  # [R, 3]
        hits = world.cast_hits(T[:3, 3], world_dirs)
        t = hits.t_hit  # [R]
        keep = (t >= c.min_range_m) & (t <= c.max_range_m)
        if rng is not None and c.dropout_prob > 0.0:
            keep &= rng.random(len(t)) >= c.dropout_prob
        idx = np.flatnonzero(keep)
        r = t[idx]
        if rng is not None and c.range_noise_std_m > 0.0:
            r = np.maximum(r + rng.normal(0.0, c.range_noise_std_m, len(idx)), 0.0)
        cos_incidence = np.abs(np.einsum("nj,nj->n", hits.normals[idx], world_dirs[idx]))
        obj = hits.object_index[idx]
        points = np.empty((len(idx), 5), dtype=np.float32)
        points[:, :3] = self.directions[idx] * r[:, None]
        points[:, 3] = np.clip(world.reflectivity[obj] * cos_incidence, 0.0, 1.0)
        points[:, 4] = self.rings[idx]
        return LidarScan(points=points, object_index=obj.astype(np.int32))
