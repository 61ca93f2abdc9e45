"""A pinhole RGB-D camera rendered by raycasting the world (one ray per pixel centre).

Pixel ``(u, v)`` (column, row) looks along ``((u + 0.5 - cx) / fx, (v + 0.5 - cy) / fy, 1)`` in
``camera_optical`` (z forward, x right, y down), the pixel-centre convention gsplat uses, with
``fx = fy = (W / 2) / tan(hfov / 2)``, ``cx = W / 2``, ``cy = H / 2``. The colour of a hit is
``sim.shading.shade`` (Lambert + ambient + hard sun shadow, view-independent); a miss shows the
sky gradient. Optional fog blends toward the horizon colour by ``1 - exp(-t / fog_distance_m)``.
Depth is the z coordinate of the hit in ``camera_optical`` (m), inf for a miss. The renderer is
deterministic: the same world and pose give the same bytes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from sim.shading import Lighting, shade, sky_color
from sim.world import World, check_transform, rotate


class CameraError(ValueError):
    """Bad camera configuration or pose (the message names the field and the limit)."""


@dataclass(frozen=True)
class CameraConfig:
    """Camera settings.

    Attributes:
        width_px: image width (pixels), in [8, 4096].
        height_px: image height (pixels), in [8, 4096].
        hfov_deg: horizontal field of view (deg), in [10, 170].
        fog_distance_m: fog e-folding distance (m); 0 disables fog, else in [1, 1e5].
        lighting: sun, ambient and sky (``sim.shading.Lighting``).
    """

    width_px: int = 320
    height_px: int = 240
    hfov_deg: float = 90.0
    fog_distance_m: float = 0.0
    lighting: Lighting = field(default_factory=Lighting)

    def __post_init__(self) -> None:
        for name in ("width_px", "height_px"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 8 <= value <= 4096:
                raise CameraError(f"{name}={value!r}: must be an integer in [8, 4096]")
        if not math.isfinite(self.hfov_deg) or not 10.0 <= self.hfov_deg <= 170.0:
            raise CameraError(f"hfov_deg={self.hfov_deg!r}: must be in [10, 170]")
        fog = self.fog_distance_m
        if not math.isfinite(fog) or not (fog == 0.0 or 1.0 <= fog <= 1e5):
            raise CameraError(f"fog_distance_m={fog!r}: must be 0 (off) or in [1, 1e5]")

    @property
    def K(self) -> np.ndarray:
        """Intrinsics float64 [3, 3]."""
        f = 0.5 * self.width_px / math.tan(math.radians(0.5 * self.hfov_deg))
        return np.array(
            [[f, 0.0, 0.5 * self.width_px], [0.0, f, 0.5 * self.height_px], [0.0, 0.0, 1.0]]
        )


@dataclass(frozen=True)
class CameraFrame:
    """One rendered image.

    Attributes:
        rgb: uint8 [H, W, 3].
        depth: float32 [H, W] z in camera_optical (m), inf where nothing is hit.
        object_index: int32 [H, W] object seen at each pixel, -1 for sky.
        K: float64 [3, 3] intrinsics.
    """

    rgb: np.ndarray  # [H, W, 3]
    depth: np.ndarray  # [H, W]
    object_index: np.ndarray  # [H, W]
    K: np.ndarray  # [3, 3]


class Camera:
    """Renders ``CameraFrame``s of a ``World`` from ``T_world_camera_optical`` poses."""

    def __init__(self, config: CameraConfig | None = None) -> None:
        self.config = config or CameraConfig()
        c, K = self.config, self.config.K
        v, u = np.mgrid[0 : c.height_px, 0 : c.width_px]  # [H, W] row, column
        rays = np.stack(
            [(u + 0.5 - K[0, 2]) / K[0, 0], (v + 0.5 - K[1, 2]) / K[1, 1], np.ones(u.shape)],
            axis=-1,
        ).reshape(-1, 3)
        self._norm = np.linalg.norm(rays, axis=1)  # [H * W]
        self._rays = rays / self._norm[:, None]  # [H * W, 3] unit, camera_optical

    def render(self, world: World, T_world_camera_optical: np.ndarray) -> CameraFrame:
        """RGB, depth and object ids seen from ``T_world_camera_optical`` [4, 4].

        Raises:
            CameraError: the pose is not a finite rigid transform.
        """
        T = check_transform(T_world_camera_optical, "T_world_camera_optical", CameraError)
        c, lighting = self.config, self.config.lighting
        dirs = rotate(T[:3, :3], self._rays)  # [P, 3] world
        hits = world.cast_hits(T[:3, 3], dirs)
        hit = np.flatnonzero(hits.object_index >= 0)
        color = sky_color(dirs, lighting)  # [P, 3]
        t = hits.t_hit[hit]
        points = T[:3, 3] + dirs[hit] * t[:, None]
        material = None if hits.material is None else hits.material[hit]
        color[hit] = shade(
            world, points, hits.normals[hit], hits.object_index[hit], lighting, material
        )
        if c.fog_distance_m > 0.0:
            fog = 1.0 - np.exp(-t / c.fog_distance_m)
            color[hit] = (1.0 - fog[:, None]) * color[hit] + fog[:, None] * np.asarray(
                lighting.sky_horizon_rgb
            )
        depth = np.full(len(dirs), np.inf, dtype=np.float32)
        depth[hit] = t / self._norm[hit]  # z = t * cos(angle to the optical axis)
        shape = (c.height_px, c.width_px)
        rgb = np.round(np.clip(color, 0.0, 1.0) * 255.0).astype(np.uint8)
        return CameraFrame(
            rgb.reshape(*shape, 3), depth.reshape(shape), hits.object_index.reshape(shape), c.K
        )
