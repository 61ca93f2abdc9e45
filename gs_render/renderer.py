"""Renders the robot's camera view from a Gaussian model at a pose (what a ROS node calls).

GSRMR (arXiv 2504.13697): the mixed-reality side renders the view at the robot's reported
pose from the GS model of the environment, so the robot may send only its pose instead of the
image. ``GaussianRenderer.render`` takes the pose as ``T_world_camera_optical`` (OpenCV optical
frame, docs/conventions.md), converts it to gsplat's world -> camera ``viewmat`` =
inv(T_world_camera_optical) and returns an 8-bit RGB image and the per-pixel opacity.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from geometry.transforms import invert_transform
from gs_render.model import GaussianModel
from gs_render.raster_torch import TorchRasterConfig
from gs_render.rasterize import BACKENDS, Backend, rasterize, resolve_backend
from gs_render.sky import SkyGradient


class RendererError(ValueError):
    """A renderer setting, pose, intrinsics matrix or image size is invalid."""


@dataclass(frozen=True)
class RendererConfig:
    """Rendering settings."""

    backend: Backend = "auto"  # "auto" (gsplat on CUDA, else torch), "gsplat", "torch", "dense"
    background_rgb: tuple[float, float, float] = (0.0, 0.0, 0.0)  # each in [0, 1]
    near_m: float = 0.05  # near clipping distance (m), > 0
    far_m: float = 1000.0  # far clipping distance (m), > near_m
    torch_config: TorchRasterConfig = field(default_factory=TorchRasterConfig)  # CPU knobs
    sky: SkyGradient | None = None  # a sky dome behind the Gaussians (overrides background_rgb)

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise RendererError(f"backend={self.backend!r} is not one of {BACKENDS}")
        if len(self.background_rgb) != 3 or not all(0 <= v <= 1 for v in self.background_rgb):
            raise RendererError(f"background_rgb={self.background_rgb} must be 3 values in [0, 1]")
        if not 0.0 < self.near_m < self.far_m:
            raise RendererError(f"need 0 < near_m < far_m, got {self.near_m}, {self.far_m}")


class GaussianRenderer:
    """Holds a model on the rendering device and renders views of it.

    Contract: a node constructs one renderer per model and calls ``render`` once per frame
    (any thread, one call at a time); each call is independent and allocates its own outputs.
    """

    def __init__(self, model: GaussianModel, config: RendererConfig | None = None) -> None:
        self.config = config or RendererConfig()
        self.backend = resolve_backend(self.config.backend)
        self.device = torch.device("cuda" if self.backend == "gsplat" else "cpu")
        self.model = model.detach().to(self.device)
        background = (0.0, 0.0, 0.0) if self.config.sky is not None else self.config.background_rgb
        self._background = torch.tensor([background], dtype=torch.float32, device=self.device)

    def render(
        self,
        T_world_camera_optical: np.ndarray,  # [4, 4] float64 rigid transform
        K: np.ndarray,  # [3, 3] intrinsics (px)
        width: int,
        height: int,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Renders the view; returns (rgb uint8 [H, W, 3], alpha float32 [H, W] in [0, 1]).

        Raises:
            RendererError: the pose is not a finite rigid transform, K is not a finite pinhole
                matrix with fx, fy > 0, or the size is not a positive int.
        """
        pose = np.asarray(T_world_camera_optical, dtype=np.float64)
        k = np.asarray(K, dtype=np.float64)
        _check_pose(pose)
        if k.shape != (3, 3) or not np.isfinite(k).all() or k[0, 0] <= 0 or k[1, 1] <= 0:
            raise RendererError(f"K must be a finite [3, 3] matrix with fx, fy > 0, got {k}")
        for name, size in (("width", width), ("height", height)):
            if not isinstance(size, int) or isinstance(size, bool) or not 1 <= size <= 16384:
                raise RendererError(f"{name}={size!r} must be an int in [1, 16384] px")
        viewmat = torch.as_tensor(invert_transform(pose), dtype=torch.float32, device=self.device)
        m = self.model
        with torch.no_grad():
            rgb, alpha = rasterize(
                m.means,
                m.quats,
                m.scales,
                m.opacities,
                m.colors,
                viewmat[None],
                torch.as_tensor(k, dtype=torch.float32, device=self.device)[None],
                width,
                height,
                near_m=self.config.near_m,
                far_m=self.config.far_m,
                backgrounds=self._background,
                sh_degree=m.sh_degree,
                backend=self.backend,
                torch_config=self.config.torch_config,
            )
        color = rgb[0].float().cpu().numpy()  # [H, W, 3]
        opacity = alpha[0, ..., 0].float().cpu().numpy()  # [H, W]
        if self.config.sky is not None:  # rendered over black: rgb is alpha-premultiplied
            color = color + (1.0 - opacity[..., None]) * self.config.sky.image(
                pose, k, width, height
            )
        image = (np.clip(color, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
        return image, opacity


def _check_pose(pose: np.ndarray) -> None:
    if pose.shape != (4, 4) or not np.isfinite(pose).all():
        raise RendererError(f"T_world_camera_optical must be a finite [4, 4] matrix, got {pose}")
    rot = pose[:3, :3]
    rigid = np.allclose(rot.T @ rot, np.eye(3), atol=1e-5) and np.linalg.det(rot) > 0
    if not rigid or not np.allclose(pose[3], [0.0, 0.0, 0.0, 1.0]):
        raise RendererError(
            "T_world_camera_optical is not a rigid transform (need R^T R = I, det R = 1, "
            "last row 0 0 0 1)"
        )
