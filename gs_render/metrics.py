"""Image fidelity metrics: PSNR and SSIM (the quality measures GSRMR reports, arXiv 2504.13697).

Formulation:

    PSNR = 10 log10(L^2 / MSE),  L = 255 for uint8 images, 1 for float images in [0, 1]
    SSIM (Wang, Bovik, Sheikh, Simoncelli 2004) with an 11x11 Gaussian window (sigma 1.5):
        mu, sigma^2 and sigma_ab are window-weighted local moments ('valid' positions only,
        as in the authors' reference code), C1 = (0.01 L)^2, C2 = (0.03 L)^2,
        SSIM = mean over positions of (2 mu_a mu_b + C1)(2 sigma_ab + C2)
                                       / ((mu_a^2 + mu_b^2 + C1)(sigma_a^2 + sigma_b^2 + C2)),
        computed per channel and averaged over channels.

``psnr``/``ssim`` take numpy arrays or tensors [H, W, C] and return floats (float64 maths);
``ssim_torch`` is the differentiable form used by the photometric fit.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

SSIM_WINDOW_PX = 11
SSIM_SIGMA_PX = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03


class MetricsError(ValueError):
    """Images given to a metric are malformed or do not match."""


def _as_unit_float(name: str, image: np.ndarray | Tensor) -> Tensor:
    """[H, W, C] float64 tensor in [0, 1] units (uint8 is divided by 255)."""
    t = image.detach() if isinstance(image, Tensor) else torch.from_numpy(np.asarray(image))
    if t.ndim != 3:
        raise MetricsError(f"{name} has shape {tuple(t.shape)}, expected [H, W, C]")
    if t.dtype == torch.uint8:
        return t.to(torch.float64) / 255.0
    if not t.is_floating_point():
        raise MetricsError(f"{name} has dtype {t.dtype}; use uint8 or float in [0, 1]")
    if not bool(torch.isfinite(t).all()):
        raise MetricsError(f"{name} contains NaN or infinite values")
    return t.to(torch.float64)


def _pair(image_a: np.ndarray | Tensor, image_b: np.ndarray | Tensor) -> tuple[Tensor, Tensor]:
    a, b = _as_unit_float("image_a", image_a), _as_unit_float("image_b", image_b)
    if a.shape != b.shape:
        raise MetricsError(f"image shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}")
    return a.cpu(), b.cpu()


def psnr(image_a: np.ndarray | Tensor, image_b: np.ndarray | Tensor) -> float:
    """PSNR (dB) of two images [H, W, C] (uint8, or float in [0, 1]); inf when identical.

    Raises:
        MetricsError: shapes differ, wrong rank, non-finite values, or an integer dtype
            other than uint8.
    """
    a, b = _pair(image_a, image_b)
    mse = float(torch.mean((a - b) ** 2))
    return math.inf if mse == 0.0 else 10.0 * math.log10(1.0 / mse)


def gaussian_window(dtype: torch.dtype = torch.float64) -> Tensor:
    """The normalized 1D SSIM window [11] (sigma 1.5 px); the 2D window is its outer product."""
    offsets = torch.arange(SSIM_WINDOW_PX, dtype=dtype) - (SSIM_WINDOW_PX - 1) / 2
    window = torch.exp(-0.5 * (offsets / SSIM_SIGMA_PX) ** 2)
    return window / window.sum()


def _filter(planes: Tensor, window: Tensor) -> Tensor:
    """Separable 'valid' filtering of planes [B, 1, H, W] -> [B, 1, H-10, W-10]."""
    size = window.numel()
    out = torch.nn.functional.conv2d(planes, window.reshape(1, 1, 1, size))
    return torch.nn.functional.conv2d(out, window.reshape(1, 1, size, 1))


def ssim_torch(image_a: Tensor, image_b: Tensor, data_range: float = 1.0) -> Tensor:
    """Differentiable mean SSIM (scalar tensor) of float images [H, W, C] of equal shape.

    Raises:
        MetricsError: shapes differ or an image is smaller than the 11x11 window.
    """
    if image_a.shape != image_b.shape or image_a.ndim != 3:
        raise MetricsError(
            f"need two [H, W, C] images of one shape, got {tuple(image_a.shape)} and "
            f"{tuple(image_b.shape)}"
        )
    height, width = image_a.shape[:2]
    if min(height, width) < SSIM_WINDOW_PX:
        raise MetricsError(
            f"images of {height}x{width} px are smaller than the "
            f"{SSIM_WINDOW_PX}x{SSIM_WINDOW_PX} SSIM window"
        )
    a = image_a.permute(2, 0, 1)[:, None]  # [C, 1, H, W]
    b = image_b.permute(2, 0, 1)[:, None]
    window = gaussian_window(image_a.dtype).to(image_a.device)
    mu_a, mu_b = _filter(a, window), _filter(b, window)
    var_a = _filter(a * a, window) - mu_a * mu_a
    var_b = _filter(b * b, window) - mu_b * mu_b
    cov_ab = _filter(a * b, window) - mu_a * mu_b
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    numerator = (2 * mu_a * mu_b + c1) * (2 * cov_ab + c2)
    denominator = (mu_a * mu_a + mu_b * mu_b + c1) * (var_a + var_b + c2)
    return (numerator / denominator).mean()


def ssim(image_a: np.ndarray | Tensor, image_b: np.ndarray | Tensor) -> float:
    """Mean SSIM in [-1, 1] of two images [H, W, C] (uint8, or float in [0, 1]); 1 when equal.

    Raises:
        MetricsError: as ``psnr``, or an image smaller than 11x11 px.
    """
    a, b = _pair(image_a, image_b)
    return float(ssim_torch(a, b, data_range=1.0))
