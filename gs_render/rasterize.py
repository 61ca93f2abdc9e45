"""One rasterization entry point with gsplat's calling convention and two backends.

``rasterize`` renders N 3D Gaussians into C pinhole cameras. Backends:

* ``"gsplat"``: ``gsplat.rasterization`` (CUDA only; imported lazily, with TORCH_EXTENSIONS_DIR
  pointed at a cache folder first because importing may JIT-build its extension);
* ``"torch"``: this project's CPU rasterizer: EWA projection (``projection``), tile binning and
  front-to-back compositing with early termination (``raster_torch``);
* ``"dense"``: the straightforward un-binned torch compositor, kept as a benchmark baseline;
* ``"auto"``: gsplat when CUDA is available, otherwise torch.

All backends implement the semantics of 3D Gaussian splatting (Kerbl et al. 2023) as gsplat
1.5.3 does in "classic" mode: alpha = min(0.999, o exp(-0.5 d^T Sigma_2d^-1 d)), alpha < 1/255
skipped, a pixel stops before its transmittance falls to 1e-4, 0.3 px^2 low-pass dilation.
Colours are RGB [N, 3] or SH coefficients [N, K, 3] with ``sh_degree`` (c = max(0, SH + 0.5)).
Conventions: viewmats are world -> camera (OpenCV optical frame), K in pixels (docs/conventions.md).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from gs_render.projection import Projected, camera_center, project
from gs_render.raster_numba import composite_numba, numba_available
from gs_render.raster_torch import TorchRasterConfig, composite_dense, composite_tiled
from gs_render.sh import MAX_SH_DEGREE, eval_sh_colors, num_sh_bases

Backend = Literal["auto", "gsplat", "torch", "dense"]
BACKENDS: tuple[str, ...] = ("auto", "gsplat", "torch", "dense")


class RasterizeError(ValueError):
    """An argument of ``rasterize`` is malformed, or the requested backend is unavailable."""


def gsplat_available() -> bool:
    """True when CUDA is present and gsplat imports (the ``auto`` backend then uses it)."""
    if not torch.cuda.is_available():
        return False
    try:
        _import_gsplat()
    except ImportError:
        return False
    return True


def _import_gsplat() -> ModuleType:
    """gsplat, imported with TORCH_EXTENSIONS_DIR set (its CUDA extension may JIT-build)."""
    cache = Path(tempfile.gettempdir()) / f"robomr-torch-extensions-{os.getuid()}"
    os.environ.setdefault("TORCH_EXTENSIONS_DIR", str(cache))
    import gsplat

    return gsplat


def resolve_backend(backend: str) -> str:
    """The concrete backend ("gsplat", "torch" or "dense") that ``backend`` selects here.

    Raises:
        RasterizeError: unknown name, or "gsplat" asked for without CUDA.
    """
    if backend not in BACKENDS:
        raise RasterizeError(f"backend={backend!r} is not one of {BACKENDS}")
    if backend == "auto":
        return "gsplat" if gsplat_available() else "torch"
    if backend == "gsplat" and not gsplat_available():
        raise RasterizeError("backend='gsplat' needs CUDA and the gsplat package; use 'torch'")
    return backend


def _check_finite(name: str, value: Tensor, shape: tuple[int | None, ...]) -> None:
    if value.ndim != len(shape) or any(
        want is not None and got != want for got, want in zip(value.shape, shape, strict=True)
    ):
        dims = ", ".join("*" if s is None else str(s) for s in shape)
        raise RasterizeError(f"{name} has shape {tuple(value.shape)}, expected [{dims}]")
    if not value.is_floating_point():
        raise RasterizeError(f"{name} must be a floating-point tensor, got {value.dtype}")
    if not bool(torch.isfinite(value).all()):
        raise RasterizeError(f"{name} contains NaN or infinite values")


def _validate(
    gaussians: tuple[Tensor, Tensor, Tensor, Tensor, Tensor],
    viewmats: Tensor,
    ks: Tensor,
    width: int,
    height: int,
    near_m: float,
    far_m: float,
    sh_degree: int | None,
    backgrounds: Tensor | None,
) -> None:
    means, quats, scales, opacities, colors = gaussians
    for name, size in (("width", width), ("height", height)):
        if not isinstance(size, int) or isinstance(size, bool) or not 1 <= size <= 16384:
            raise RasterizeError(f"{name}={size!r} must be an int in [1, 16384] px")
    if not 0.0 < near_m < far_m:
        raise RasterizeError(f"need 0 < near_m < far_m, got near_m={near_m}, far_m={far_m}")
    n = means.shape[0] if means.ndim == 2 else -1
    _check_finite("means", means, (None, 3))
    _check_finite("quats", quats, (n, 4))
    _check_finite("scales", scales, (n, 3))
    _check_finite("opacities", opacities, (n,))
    cams = viewmats.shape[0] if viewmats.ndim == 3 else -1
    _check_finite("viewmats", viewmats, (None, 4, 4))
    _check_finite("Ks", ks, (cams, 3, 3))
    if sh_degree is None:
        _check_finite("colors", colors, (n, 3))
    else:
        if not 0 <= sh_degree <= MAX_SH_DEGREE:
            raise RasterizeError(f"sh_degree={sh_degree} outside [0, {MAX_SH_DEGREE}]")
        _check_finite("colors", colors, (n, None, 3))
        if colors.shape[1] < num_sh_bases(sh_degree):
            raise RasterizeError(
                f"colors has {colors.shape[1]} SH coefficients, sh_degree={sh_degree} needs "
                f"{num_sh_bases(sh_degree)}"
            )
    if backgrounds is not None:
        _check_finite("backgrounds", backgrounds, (cams, 3))
    if bool(((opacities < 0) | (opacities > 1)).any()):
        raise RasterizeError("opacities must lie in [0, 1]")
    if bool((scales <= 0).any()):
        raise RasterizeError("scales must be > 0 (standard deviations in metres)")
    if bool((quats.norm(dim=-1) < 1e-12).any()):
        raise RasterizeError("quats contains a zero quaternion")


def rasterize(
    means: Tensor,  # [N, 3] world (m)
    quats: Tensor,  # [N, 4] (w, x, y, z), need not be unit
    scales: Tensor,  # [N, 3] standard deviations (m), > 0
    opacities: Tensor,  # [N] in [0, 1]
    colors: Tensor,  # [N, 3] RGB, or [N, K, 3] SH coefficients with sh_degree
    viewmats: Tensor,  # [C, 4, 4] world -> camera optical
    Ks: Tensor,  # [C, 3, 3] intrinsics (px)
    width: int,
    height: int,
    *,
    near_m: float = 0.01,
    far_m: float = 1e10,
    backgrounds: Tensor | None = None,  # [C, 3]
    sh_degree: int | None = None,
    backend: Backend = "auto",
    torch_config: TorchRasterConfig | None = None,
) -> tuple[Tensor, Tensor]:
    """Renders the Gaussians; returns (colors [C, H, W, 3], alphas [C, H, W, 1]).

    Outputs are on the device of ``means``; the torch backends compute in the dtype of
    ``means`` (float64 inputs render in float64), gsplat in float32. Differentiable with every
    backend. ``torch_config`` tunes the torch backends' speed, not their results.

    Raises:
        RasterizeError: a shape, value or backend is invalid (the message names it).
    """
    gaussians = (means, quats, scales, opacities, colors)
    _validate(gaussians, viewmats, Ks, width, height, near_m, far_m, sh_degree, backgrounds)
    chosen = resolve_backend(backend)
    if chosen == "gsplat":
        gsplat = _import_gsplat()
        image, alpha, _meta = gsplat.rasterization(
            *(t.to("cuda", torch.float32) for t in (*gaussians, viewmats, Ks)),
            width,
            height,
            near_plane=near_m,
            far_plane=far_m,
            sh_degree=sh_degree,
            packed=False,
            backgrounds=None if backgrounds is None else backgrounds.to("cuda", torch.float32),
        )
        return image.to(means.device), alpha.to(means.device)
    config = torch_config or TorchRasterConfig()
    composite = composite_tiled if chosen == "torch" else composite_dense
    if chosen == "torch" and _use_compiled(config, gaussians, means.device):
        composite = _composite_compiled
    means, quats, scales, opacities, colors = (t.to(means.dtype) for t in gaussians)
    images, alphas = [], []
    for cam in range(viewmats.shape[0]):
        viewmat, k = viewmats[cam].to(means), Ks[cam].to(means)
        proj = project(means, quats, scales, opacities, viewmat, k, width, height, near_m, far_m)
        if sh_degree is None:
            rgb = colors[proj.ids]
        else:
            dirs = means[proj.ids] - camera_center(viewmat)
            rgb = eval_sh_colors(sh_degree, dirs, colors[proj.ids])
        background = None if backgrounds is None else backgrounds[cam].to(means)
        image, alpha = composite(proj, rgb, width, height, background, config)
        images.append(image)
        alphas.append(alpha)
    return torch.stack(images), torch.stack(alphas)


def _use_compiled(config: TorchRasterConfig, gaussians: tuple, device: torch.device) -> bool:
    """Whether the compiled forward-only compositor applies (see TorchRasterConfig.kernel)."""
    if config.kernel == "torch":
        return False
    needs_grad = torch.is_grad_enabled() and any(t.requires_grad for t in gaussians)
    usable = numba_available() and device.type == "cpu" and not needs_grad
    if config.kernel == "numba" and not usable:
        raise RasterizeError(
            "kernel='numba' needs numba, CPU tensors and no input that requires a gradient"
        )
    return usable


def _composite_compiled(
    proj: Projected,
    colors: Tensor,  # [M, 3]
    width: int,
    height: int,
    background: Tensor | None,  # [3] or None
    config: TorchRasterConfig,
) -> tuple[Tensor, Tensor]:
    """``raster_numba.composite_numba`` on the projected Gaussians, as tensors."""
    del config  # the compiled kernel has no tuning knobs

    def arr(t: Tensor) -> np.ndarray:
        return np.ascontiguousarray(t.detach().numpy())

    rgba = composite_numba(
        arr(proj.means2d),
        arr(proj.conics),
        arr(proj.opacities),
        arr(proj.radii),
        arr(colors.to(proj.means2d.dtype)),
        width,
        height,
        None if background is None else arr(background),
        threads=torch.get_num_threads(),
    )
    out = torch.from_numpy(rgba)
    return out[..., :3], out[..., 3:]
