"""Gaussian-splatting view rendering for robotic mixed reality (GSRMR, arXiv 2504.13697).

Public API:

* ``GaussianModel``, ``from_surface_samples``: the scene model and its construction from the
  simulator's surface samples; ``save_ply``/``load_ply``: the standard 3DGS PLY layout.
* ``rasterize``: gsplat's calling convention; gsplat on CUDA, the project's tiled torch
  rasterizer on CPU; ``rasterize_reference``: slow per-pixel reference (tests).
* ``fit``: photometric refinement (L1 + SSIM) against posed images.
* ``psnr``, ``ssim``: image fidelity metrics.
* ``GaussianRenderer``: renders uint8 views at a ``T_world_camera_optical`` pose (nodes use it),
  optionally over a ``SkyGradient`` dome.
"""

from gs_render.fit import FitConfig, FitError, FitResult, fit
from gs_render.metrics import MetricsError, psnr, ssim
from gs_render.model import GaussianModel, ModelError, SurfaceGaussianConfig, from_surface_samples
from gs_render.ply import PlyError, load_ply, save_ply
from gs_render.raster_reference import rasterize_reference
from gs_render.raster_torch import TorchRasterConfig
from gs_render.rasterize import RasterizeError, gsplat_available, rasterize, resolve_backend
from gs_render.renderer import GaussianRenderer, RendererConfig, RendererError
from gs_render.sky import SkyError, SkyGradient

__all__ = [
    "FitConfig",
    "FitError",
    "FitResult",
    "GaussianModel",
    "GaussianRenderer",
    "MetricsError",
    "ModelError",
    "PlyError",
    "RasterizeError",
    "RendererConfig",
    "RendererError",
    "SkyError",
    "SkyGradient",
    "SurfaceGaussianConfig",
    "TorchRasterConfig",
    "fit",
    "from_surface_samples",
    "gsplat_available",
    "load_ply",
    "psnr",
    "rasterize",
    "rasterize_reference",
    "resolve_backend",
    "save_ply",
    "ssim",
]
