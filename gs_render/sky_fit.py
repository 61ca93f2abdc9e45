"""The sky of a learned Gaussian map, fitted to uploaded camera frames (GSRMR, arXiv 2504.13697).

A street map has no geometry above the roofs; :class:`gs_render.SkyGradient` models that sky as
a vertical gradient in u = sqrt(up component of the viewing ray). ``SkyFit`` learns its two
colours from the pixels of uploaded frames that no Gaussian covers and that look up: per band
of u it keeps each frame's median colour (so unmapped building tops above the lidar's field
of view do not drag it, as long as sky is the majority in a band), and the gradient is the
least-squares fit through the per-band medians over frames.
"""

from __future__ import annotations

import numpy as np

from gs_render.sky import SkyGradient

#: Bands of u = sqrt(up) in [0, 1] over which the sky's colour is summarised.
SKY_BANDS = 8


class SkyFit:
    """Per-band colour samples and the gradient through them."""

    def __init__(self) -> None:
        self.samples: list[list[np.ndarray]] = [[] for _ in range(SKY_BANDS)]

    def copy(self) -> SkyFit:
        other = SkyFit()
        other.samples = [list(band) for band in self.samples]
        return other

    def add(
        self,
        image: np.ndarray,  # [H, W, 3] uint8
        k: np.ndarray,  # [3, 3]
        pose: np.ndarray,  # [4, 4] T_world_camera_optical
        alpha: np.ndarray,  # [H, W] the map's opacity at each pixel
    ) -> None:
        """Records the median colour per band of the uncovered upward pixels."""
        height, width = image.shape[:2]
        vv, uu = np.mgrid[0:height, 0:width]
        rays = np.stack([(uu + 0.5 - k[0, 2]) / k[0, 0], (vv + 0.5 - k[1, 2]) / k[1, 1],
                         np.ones(uu.shape)], -1) @ pose[:3, :3].T  # fmt: skip
        up = rays[..., 2] / np.linalg.norm(rays, axis=-1)
        sky = (alpha < 0.02) & (up > 0.02)
        if not sky.any():
            return
        u = np.sqrt(up[sky])
        colours = image[sky].astype(np.float64) / 255.0
        band = np.minimum((u * SKY_BANDS).astype(np.int64), SKY_BANDS - 1)
        for b in np.unique(band):
            members = band == b
            if members.sum() >= 20:  # a band needs enough pixels for its median to mean much
                self.samples[b].append(np.median(colours[members], axis=0))

    @property
    def learned(self) -> bool:
        """At least two bands seen: the gradient is determined."""
        return sum(bool(v) for v in self.samples) >= 2

    def gradient(self, default_rgb: tuple[float, float, float]) -> SkyGradient:
        """The least-squares gradient, or a uniform ``default_rgb`` sky until ``learned``."""
        bands = [b for b in range(SKY_BANDS) if self.samples[b]]
        if len(bands) < 2:
            return SkyGradient(default_rgb, default_rgb)
        u = (np.asarray(bands) + 0.5) / SKY_BANDS
        colour = np.stack([np.median(np.stack(self.samples[b]), axis=0) for b in bands])
        basis = np.stack([1.0 - u, u], axis=1)
        (horizon, zenith), *_ = np.linalg.lstsq(basis, colour, rcond=None)
        horizon, zenith = np.clip(horizon, 0.0, 1.0), np.clip(zenith, 0.0, 1.0)
        return SkyGradient(tuple(zenith.tolist()), tuple(horizon.tolist()))
