"""A sky dome for Gaussian-splatting maps: what pixels that no Gaussian covers show.

Street maps have no geometry above the roofs; a constant background colour there costs several
dB of PSNR against a real (or simulated) camera. The sky is modelled as a vertical gradient of
the viewing direction d (unit, world frame, z up):

    sky(d) = (1 - u) * horizon_rgb + u * zenith_rgb,   u = sqrt(clip(d_z, 0, 1))

which is the simulator's sky (sim/shading.py) and a common low-order sky model. The final pixel
is ``rgb_gaussians + (1 - alpha) * sky`` (front-to-back compositing over the dome).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


class SkyError(ValueError):
    """A sky colour outside [0, 1] or a malformed camera."""


@dataclass(frozen=True)
class SkyGradient:
    """Sky colours (RGB in [0, 1]) straight up and at the horizon."""

    zenith_rgb: tuple[float, float, float] = (0.38, 0.56, 0.85)
    horizon_rgb: tuple[float, float, float] = (0.80, 0.86, 0.93)

    def __post_init__(self) -> None:
        for name in ("zenith_rgb", "horizon_rgb"):
            value = np.asarray(getattr(self, name), dtype=np.float64)
            if value.shape != (3,) or not np.all((value >= 0.0) & (value <= 1.0)):
                raise SkyError(f"{name}={getattr(self, name)} must be 3 values in [0, 1]")

    def image(
        self,
        T_world_camera_optical: np.ndarray,  # [4, 4]
        K: np.ndarray,  # [3, 3]
        width: int,
        height: int,
    ) -> np.ndarray:
        """Sky colour of every pixel, float32 [H, W, 3] in [0, 1]."""
        k = np.asarray(K, dtype=np.float64)
        u, v = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
        rays = np.stack(
            [(u - k[0, 2]) / k[0, 0], (v - k[1, 2]) / k[1, 1], np.ones_like(u)], axis=-1
        )  # [H, W, 3] camera_optical
        dirs = rays @ np.asarray(T_world_camera_optical)[:3, :3].T
        dirs /= np.linalg.norm(dirs, axis=-1, keepdims=True)
        up = np.sqrt(np.clip(dirs[..., 2:3], 0.0, 1.0))
        sky = (1.0 - up) * np.asarray(self.horizon_rgb) + up * np.asarray(self.zenith_rgb)
        return sky.astype(np.float32)
