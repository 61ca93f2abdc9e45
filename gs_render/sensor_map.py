"""A Gaussian map learned online from the robot's own sensors (GSRMR, arXiv 2504.13697).

The map the mixed-reality side renders from is built only from what the robot measures:

1. **Geometry** from accumulated lidar scans (:mod:`gs_render.lidar_map`): one Gaussian per
   kept voxel, scale and opacity from the local density, orientation from the local plane.
2. **Colour** from uploaded camera frames, through the camera model: each Gaussian mean is
   projected with ``K`` and ``T_world_camera_optical``; it takes the pixel's colour where it
   is the front surface there (its depth is within ``depth_tolerance`` of the map's own
   rendered depth at that pixel). Observations are averaged with weight 1 / max(z, 1 m)^2, so
   close views dominate. Gaussians no uploaded frame has seen keep ``default_rgb``.
3. **Sky**: pixels of uploaded frames that no Gaussian covers and that look upward fit the
   two colours of a :class:`gs_render.SkyGradient` by least squares.
4. **Photometric refinement**: Adam on colours, opacity logits, log-scales and small mean
   offsets, loss (1 - lambda) L1 + lambda (1 - SSIM) through the differentiable rasterizer
   (torch on CPU, gsplat on CUDA), on the last ``refine_keyframes`` uploaded frames at
   ``refine_scale`` of their size (:func:`gs_render.fit.photometric_loss`).

The edge calls ``add_scan`` as scans arrive and ``add_frames`` with each batch of uploaded
frames; every later ``render`` shows the improved map. ``coverage`` summarises how well the
map can show a pose: the alpha-weighted share of the view covered by coloured Gaussians, each
counted by min(1, z / z_seen) (a Gaussian coloured from far away is blurred up close), with
sky pixels counted once the sky has been learned. GSCLO's forecast of L_t uses it.

Raises:
    SensorMapError: bad settings or malformed frames.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy.spatial import cKDTree

from geometry.transforms import invert_transform
from gs_render.lidar_map import LidarMapConfig, LidarVoxelMap, MapGeometry
from gs_render.map_refine import _check_frame, _keyframe, refine_appearance, solve_colours
from gs_render.model import GaussianModel
from gs_render.projection import project
from gs_render.raster_numba import composite_numba
from gs_render.rasterize import rasterize, resolve_backend
from gs_render.renderer import GaussianRenderer, RendererConfig
from gs_render.sky import SkyGradient
from gs_render.sky_fit import SkyFit


class SensorMapError(ValueError):
    """A sensor-map setting or an uploaded frame is malformed."""


@dataclass(frozen=True)
class SensorMapConfig:
    """Online map settings (learning rates are Adam step sizes in each parameter's units)."""

    lidar: LidarMapConfig = field(default_factory=LidarMapConfig)
    default_rgb: tuple[float, float, float] = (0.5, 0.5, 0.5)  # unseen, nothing seen near
    inpaint_radius_m: float = 2.0  # unseen Gaussians take the nearest seen colour this close
    default_sky_rgb: tuple[float, float, float] = (0.7, 0.7, 0.7)  # before any sky is seen
    depth_tolerance: float = 0.1  # relative depth slack of the visibility test, [0, 1]
    depth_tolerance_m: float = 0.3  # absolute depth slack (m), [0, 10]
    colour_iterations: int = 10  # colour least-squares steps per add_frames call, [0, 1000]
    refine_iterations: int = 2  # photometric steps per add_frames call, [0, 1000]
    refine_keyframes: int = 6  # newest uploaded frames the refinement cycles over, [1, 1000]
    refine_scale: float = 0.5  # keyframe resolution used by the refinement, (0, 1]
    lr_colors: float = 0.01
    lr_opacity_logits: float = 0.005
    lr_log_scales: float = 0.001
    lr_means_m: float = 0.0  # lidar places the means; moving them raised the loss (measured)
    ssim_weight: float = 0.2  # lambda of the loss, [0, 1]
    backend: str = "auto"  # rasterizer backend of the refinement and renders

    def __post_init__(self) -> None:
        for name in ("default_rgb", "default_sky_rgb"):
            rgb = getattr(self, name)
            if len(rgb) != 3 or not all(0.0 <= v <= 1.0 for v in rgb):
                raise SensorMapError(f"{name}={rgb!r} must be 3 values in [0, 1]")
        checks = {
            "depth_tolerance": (0.0, 1.0),
            "depth_tolerance_m": (0.0, 10.0),
            "inpaint_radius_m": (0.0, 100.0),
            "refine_scale": (1e-3, 1.0),
            "lr_colors": (0.0, 1.0),
            "lr_opacity_logits": (0.0, 1.0),
            "lr_log_scales": (0.0, 1.0),
            "lr_means_m": (0.0, 1.0),
            "ssim_weight": (0.0, 1.0),
        }
        for name, (low, high) in checks.items():
            if not low <= getattr(self, name) <= high:
                raise SensorMapError(f"{name}={getattr(self, name)!r} outside [{low}, {high}]")
        if not 0 <= self.colour_iterations <= 1000:
            raise SensorMapError("colour_iterations must be in [0, 1000]")
        if not 0 <= self.refine_iterations <= 1000 or not 1 <= self.refine_keyframes <= 1000:
            raise SensorMapError("refine_iterations must be in [0, 1000], keyframes in [1, 1000]")


#: Per-voxel appearance, learned from uploaded frames: name -> (columns, initial value).
_APPEARANCE = {"rgb": 3, "weight": 1, "seen_m": 1, "logit": 1, "logscale": 3, "offset": 3}


@dataclass(frozen=True)
class Frame:
    """An uploaded camera frame: image uint8 [H, W, 3], K [3, 3] (px), pose [4, 4]."""

    image: np.ndarray
    K: np.ndarray
    T_world_camera_optical: np.ndarray


class MapAppearance:
    """What uploaded frames taught the map: per-voxel colour and refinements, the sky and the
    keyframes, for a geometry given by the caller (:class:`SensorGaussianMap` passes its
    lidar map's; a benchmark may share one geometry between several appearances)."""

    def __init__(self, config: SensorMapConfig | None = None) -> None:
        self.config = config or SensorMapConfig()
        self.geometry = MapGeometry(
            np.zeros(0, np.int64), np.zeros((0, 3)), np.zeros((0, 4)), np.zeros((0, 3)), np.zeros(0)
        )
        self.app_keys = np.zeros(0, dtype=np.int64)  # [A] sorted voxel keys
        self.app = {name: np.zeros((0, cols)) for name, cols in _APPEARANCE.items()}
        self._sky = SkyFit()
        self.keyframes: deque[tuple[np.ndarray, np.ndarray, np.ndarray]] = deque(
            maxlen=self.config.refine_keyframes
        )
        self.frames_added = 0
        self._cache: tuple[MapGeometry, GaussianModel, np.ndarray] | None = None
        self._renderer: tuple[GaussianModel, GaussianRenderer] | None = None

    def copy(self) -> MapAppearance:
        """An independent copy of the learned appearance that shares the (read-only)
        geometry; rendering caches are not copied."""
        other = MapAppearance(self.config)
        other.geometry = self.geometry
        other.app_keys = self.app_keys.copy()
        other.app = {name: value.copy() for name, value in self.app.items()}
        other._sky = self._sky.copy()
        other.keyframes = deque(self.keyframes, maxlen=self.keyframes.maxlen)
        other.frames_added = self.frames_added
        return other

    def set_geometry(self, geometry: MapGeometry) -> None:
        """Uses ``geometry`` from now on (appearance is kept per voxel key)."""
        self.geometry = geometry
        self._cache = None

    def _appearance_rows(self, keys: np.ndarray) -> np.ndarray:
        """Row [G] of each key in the appearance table, adding missing keys with defaults."""
        pos = np.searchsorted(self.app_keys, keys)
        found = pos < len(self.app_keys)
        found[found] = self.app_keys[pos[found]] == keys[found]
        if not found.all():
            new = keys[~found]
            merged = np.concatenate([self.app_keys, new])
            order = np.argsort(merged, kind="stable")
            self.app_keys = merged[order]
            defaults = {
                "rgb": np.tile(self.config.default_rgb, (len(new), 1)),
                "weight": np.zeros((len(new), 1)),
                "seen_m": np.full((len(new), 1), np.inf),
                "logit": np.zeros((len(new), 1)),
                "logscale": np.zeros((len(new), 3)),
                "offset": np.zeros((len(new), 3)),
            }
            for name in _APPEARANCE:
                self.app[name] = np.concatenate([self.app[name], defaults[name]])[order]
            pos = np.searchsorted(self.app_keys, keys)
        return pos

    def _current(self) -> tuple[MapGeometry, GaussianModel, np.ndarray]:
        """(geometry, model with appearance applied, appearance rows [G]); cached."""
        if self._cache is None:
            geo = self.geometry
            rows = self._appearance_rows(geo.keys)
            self._cache = (geo, self._model(geo, rows), rows)
        return self._cache

    def _model(self, geo: MapGeometry, rows: np.ndarray) -> GaussianModel:
        a = self.app
        base_logit = np.log(geo.opacities) - np.log1p(-geo.opacities)
        opac = 1.0 / (1.0 + np.exp(-(base_logit + a["logit"][rows, 0])))
        scales = geo.scales * np.exp(a["logscale"][rows])
        t = lambda v: torch.as_tensor(np.ascontiguousarray(v), dtype=torch.float32)  # noqa: E731
        return GaussianModel(
            means=t(geo.means + a["offset"][rows]),
            quats=t(geo.quats),
            scales=t(scales),
            opacities=t(np.clip(opac, 0.0, 1.0)),
            colors=t(np.clip(self._inpainted(geo, rows), 0.0, 1.0)),
        )

    def _inpainted(self, geo: MapGeometry, rows: np.ndarray) -> np.ndarray:
        """Colours [G, 3]: a Gaussian no uploaded frame has seen takes the colour of the
        nearest seen one within ``inpaint_radius_m`` (surfaces are mostly continuous), else
        ``default_rgb``."""
        rgb = self.app["rgb"][rows].copy()
        seen = self.app["weight"][rows, 0] > 0.0
        radius = self.config.inpaint_radius_m
        if radius > 0.0 and seen.any() and not seen.all():
            dist, nearest = cKDTree(geo.means[seen]).query(
                geo.means[~seen], distance_upper_bound=radius
            )
            found = np.isfinite(dist)
            unseen = np.flatnonzero(~seen)
            rgb[unseen[found]] = rgb[np.flatnonzero(seen)[nearest[found]]]
        return rgb

    def model(self) -> GaussianModel:
        """The map as a :class:`GaussianModel` (what ``GaussianRenderer`` renders)."""
        return self._current()[1]

    def __len__(self) -> int:
        return len(self.model())

    # ---- rendering ---------------------------------------------------------------------------
    def render(
        self, T_world_camera_optical: np.ndarray, K: np.ndarray, width: int, height: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """(rgb uint8 [H, W, 3], alpha float32 [H, W]) of the map over the learned sky."""
        model = self.model()
        if self._renderer is None or self._renderer[0] is not model:
            config = RendererConfig(backend=self.config.backend, sky=self.sky())
            self._renderer = (model, GaussianRenderer(model, config))
        return self._renderer[1].render(T_world_camera_optical, K, width, height)

    def render_with_coverage(
        self, T_world_camera_optical: np.ndarray, K: np.ndarray, width: int, height: int
    ) -> tuple[np.ndarray, float]:
        """(``render``'s rgb uint8 [H, W, 3], ``coverage`` at the same size) with one
        projection on the CPU path (the benchmark's per-frame call)."""
        pose = np.asarray(T_world_camera_optical, dtype=np.float64)
        geo, model, rows = self._current()
        if len(model) == 0 or resolve_backend(self.config.backend) != "torch":
            rgb, _ = self.render(pose, K, width, height)
            return rgb, self.coverage(pose, K, width, height)
        viewmat = torch.as_tensor(invert_transform(pose), dtype=torch.float32)
        k = torch.as_tensor(np.asarray(K), dtype=torch.float32)
        with torch.no_grad():
            proj = project(model.means, model.quats, model.scales, model.opacities, viewmat, k,
                           width, height, 0.05, 1000.0)  # fmt: skip
        ids = proj.ids.numpy()
        quality = np.zeros((len(ids), 3), dtype=np.float32)
        quality[:, 0] = self._quality(geo, rows, pose)[ids]
        packed = [np.ascontiguousarray(a) for a in (proj.means2d.numpy(), proj.conics.numpy(),
                  proj.opacities.numpy(), proj.radii.numpy().astype(np.float32))]  # fmt: skip
        threads = torch.get_num_threads()
        rgba = [
            composite_numba(*packed, np.ascontiguousarray(colors), width, height, None, threads)
            for colors in (model.colors.numpy()[ids], quality)
        ]
        alpha = rgba[0][..., 3:]
        sky = self.sky().image(pose, np.asarray(K), width, height)
        image = rgba[0][..., :3] + (1.0 - alpha) * sky
        rgb = (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
        sky_share = (1.0 - alpha[..., 0]) * (1.0 if self.sky_learned else 0.0)
        return rgb, float(np.mean(rgba[1][..., 0] + sky_share))

    def _quality(self, geo: MapGeometry, rows: np.ndarray, pose: np.ndarray) -> np.ndarray:
        """Per Gaussian [G]: 0 if unseen, else min(1, distance now / closest distance seen)."""
        z = np.linalg.norm(geo.means - pose[:3, 3], axis=1)
        seen = self.app["seen_m"][rows, 0]
        return np.where(np.isfinite(seen), np.minimum(1.0, z / np.maximum(seen, 1e-3)), 0.0)

    def _render_channels(
        self, values: np.ndarray, pose: np.ndarray, k: np.ndarray, width: int, height: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Alpha-weighted sums [H, W, 3] of per-Gaussian ``values`` [G, 3] and alpha [H, W]."""
        m = self.model()
        with torch.no_grad():
            out, alpha = rasterize(
                m.means, m.quats, m.scales, m.opacities,
                torch.as_tensor(values, dtype=torch.float32),
                torch.as_tensor(invert_transform(pose), dtype=torch.float32)[None],
                torch.as_tensor(k, dtype=torch.float32)[None],
                width, height, near_m=0.05, backend=self.config.backend,
            )  # fmt: skip
        return out[0].numpy(), alpha[0, ..., 0].numpy()

    def coverage(
        self, T_world_camera_optical: np.ndarray, K: np.ndarray, width: int, height: int
    ) -> float:
        """Share of the view in [0, 1] the map shows well (module docstring); render it at a
        quarter of the size or smaller for speed."""
        geo, model, rows = self._current()
        if len(model) == 0:
            return 1.0 if self.sky_learned else 0.0
        pose = np.asarray(T_world_camera_optical, dtype=np.float64)
        values = np.zeros((len(rows), 3))
        values[:, 0] = self._quality(geo, rows, pose)
        out, alpha = self._render_channels(values, pose, K, width, height)
        sky = (1.0 - alpha) * (1.0 if self.sky_learned else 0.0)
        return float(np.mean(out[..., 0] + sky))

    # ---- learning from uploaded frames -------------------------------------------------------
    def add_frames(self, frames: list[Frame], refine: bool = True) -> None:
        """Colours the map and fits the sky from ``frames``, keeps them as keyframes and runs
        ``refine_iterations`` photometric steps (``refine=False``: none).

        Raises:
            SensorMapError: a malformed frame.
        """
        for frame in frames:
            image, k, pose = _check_frame(frame)
            self._colour(image, k, pose)
            self.keyframes.append(_keyframe(image, k, pose, self.config.refine_scale))
            self.frames_added += 1
        if refine and frames:
            solve_colours(self, self.config.colour_iterations)
            self.refine(self.config.refine_iterations)

    def _colour(self, image: np.ndarray, k: np.ndarray, pose: np.ndarray) -> None:
        geo, _, rows = self._current()
        height, width = image.shape[:2]
        if len(rows):
            viewmat = invert_transform(pose)
            cam = geo.means @ viewmat[:3, :3].T + viewmat[:3, 3]  # [G, 3]
            values = np.zeros((len(cam), 3))
            values[:, 0] = cam[:, 2]
            depth_sum, alpha = self._render_channels(values, pose, k, width, height)
            depth = depth_sum[..., 0] / np.maximum(alpha, 1e-6)
            z = cam[:, 2]
            with np.errstate(divide="ignore", invalid="ignore"):
                u = k[0, 0] * cam[:, 0] / z + k[0, 2]
                v = k[1, 1] * cam[:, 1] / z + k[1, 2]
            ok = (z > 0.05) & (u >= 0) & (u < width) & (v >= 0) & (v < height)
            idx = np.flatnonzero(ok)
            col, row = u[idx].astype(np.int64), v[idx].astype(np.int64)
            slack = self.config.depth_tolerance * depth[row, col] + self.config.depth_tolerance_m
            front = (alpha[row, col] > 0.5) & (z[idx] <= depth[row, col] + slack)
            idx, col, row = idx[front], col[front], row[front]
            r = rows[idx]
            w = 1.0 / np.maximum(z[idx], 1.0) ** 2
            a = self.app
            total = a["weight"][r, 0] + w
            observed = image[row, col].astype(np.float64) / 255.0
            a["rgb"][r] = (a["rgb"][r] * a["weight"][r] + observed * w[:, None]) / total[:, None]
            a["weight"][r, 0] = total
            a["seen_m"][r, 0] = np.minimum(a["seen_m"][r, 0], z[idx])
        else:
            alpha = np.zeros(image.shape[:2])
        self._sky.add(image, k, pose, alpha)
        self._cache = None

    def sky(self) -> SkyGradient:
        """The learned sky (``gs_render.sky_fit``); ``default_sky_rgb`` until learned."""
        return self._sky.gradient(self.config.default_sky_rgb)

    @property
    def sky_learned(self) -> bool:
        return self._sky.learned

    def refine(self, iterations: int) -> list[float]:
        """Photometric steps on the keyframes (``gs_render.map_refine``); returns the losses."""
        losses = refine_appearance(self, iterations)
        self._cache = None
        return losses


class SensorGaussianMap(MapAppearance):
    """The online map (module docstring): lidar geometry plus the appearance uploaded frames
    taught it. One writer; ``render`` may be called between updates."""

    def __init__(self, config: SensorMapConfig | None = None) -> None:
        super().__init__(config)
        self.lidar = LidarVoxelMap(self.config.lidar)
        self._geometry_stale = False

    def add_scan(self, points_world: np.ndarray, origin_world: np.ndarray) -> None:
        """Accumulates a lidar scan (world frame [N, >=3], sensor origin [3]); the Gaussians
        are rebuilt lazily, on the next render or frame."""
        self.lidar.insert(points_world, origin_world)
        self._geometry_stale = True
        self._cache = None

    def _current(self) -> tuple[MapGeometry, GaussianModel, np.ndarray]:
        if self._geometry_stale:
            self.geometry = self.lidar.gaussians()
            self._geometry_stale = False
        return super()._current()
