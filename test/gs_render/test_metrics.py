"""PSNR and SSIM against closed forms and an independent scipy implementation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

from gs_render.metrics import MetricsError, psnr, ssim, ssim_torch


def _image(seed: int, shape: tuple[int, int, int] = (40, 52, 3)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def _ssim_scipy(a: np.ndarray, b: np.ndarray) -> float:
    """Wang et al. 2004 written independently: scipy Gaussian filter (sigma 1.5, truncated at
    radius 5 = the 11-tap window), then only positions whose window lies inside the image."""
    a, b = a.astype(np.float64) / 255.0, b.astype(np.float64) / 255.0
    c1, c2 = 0.01**2, 0.03**2
    values = []
    for ch in range(a.shape[2]):
        x, y = a[..., ch], b[..., ch]

        def blur(img: np.ndarray) -> np.ndarray:
            return gaussian_filter(img, sigma=1.5, truncate=3.5)[5:-5, 5:-5]

        mx, my = blur(x), blur(y)
        vx, vy, cxy = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
        ssim_map = (2 * mx * my + c1) * (2 * cxy + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
        values.append(ssim_map.mean())
    return float(np.mean(values))


@pytest.mark.parametrize("seed", [0, 1])
def test_identical_images_give_infinite_psnr_and_unit_ssim(seed: int) -> None:
    image = _image(seed)
    assert psnr(image, image.copy()) == math.inf
    assert ssim(image, image.copy()) == pytest.approx(1.0, abs=1e-12)  # float64 rounding


@pytest.mark.parametrize("offset", [1, 5, 40])
def test_constant_offset_gives_the_analytic_psnr(offset: int) -> None:
    image = np.clip(_image(2), 0, 255 - offset).astype(np.uint8)
    shifted = (image + offset).astype(np.uint8)
    # MSE = offset^2 exactly, so PSNR = 20 log10(255 / offset); float64 rounding only.
    assert psnr(image, shifted) == pytest.approx(20 * math.log10(255 / offset), abs=1e-9)


@pytest.mark.parametrize("noise", [5.0, 30.0, 90.0])
def test_ssim_matches_an_independent_scipy_implementation(noise: float) -> None:
    rng = np.random.default_rng(3)
    smooth = gaussian_filter(rng.uniform(0, 255, (48, 64, 3)), sigma=(3, 3, 0))
    a = np.clip(smooth, 0, 255).astype(np.uint8)
    b = np.clip(smooth + rng.normal(0, noise, smooth.shape), 0, 255).astype(np.uint8)
    # Same float64 moments summed in a different order: ~1e-12.
    assert ssim(a, b) == pytest.approx(_ssim_scipy(a, b), abs=1e-9)
    assert -1.0 <= ssim(a, b) < 1.0


def test_uint8_and_float_inputs_agree() -> None:
    a, b = _image(4), _image(5)
    fa, fb = a.astype(np.float32) / 255.0, b.astype(np.float32) / 255.0
    # The float32 copies carry ~3e-8 relative rounding.
    assert psnr(fa, fb) == pytest.approx(psnr(a, b), abs=1e-4)
    assert ssim(fa, fb) == pytest.approx(ssim(a, b), abs=1e-5)
    assert ssim(torch.from_numpy(fa), torch.from_numpy(fb)) == pytest.approx(ssim(fa, fb))


def test_ssim_torch_is_differentiable() -> None:
    target = torch.rand(16, 16, 3, dtype=torch.float64)
    guess = torch.rand(16, 16, 3, dtype=torch.float64, requires_grad=True)
    (1 - ssim_torch(guess, target)).backward()
    assert guess.grad is not None and float(guess.grad.abs().sum()) > 0


@pytest.mark.parametrize(
    ("a", "b", "message"),
    [
        (np.zeros((20, 20, 3), np.uint8), np.zeros((20, 21, 3), np.uint8), "shapes differ"),
        (np.zeros((20, 20), np.uint8), np.zeros((20, 20), np.uint8), "expected"),
        (np.zeros((20, 20, 3), np.int32), np.zeros((20, 20, 3), np.int32), "dtype"),
        (np.full((20, 20, 3), np.nan), np.zeros((20, 20, 3)), "NaN"),
        (np.zeros((8, 20, 3), np.uint8), np.zeros((8, 20, 3), np.uint8), "SSIM window"),
    ],
)
def test_malformed_images_raise(a: np.ndarray, b: np.ndarray, message: str) -> None:
    with pytest.raises(MetricsError, match=message):
        ssim(a, b)
