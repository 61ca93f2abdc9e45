"""Photometric fitting through the CPU rasterizer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gs_render.fit import FitConfig, FitError, fit, photometric_loss
from gs_render.model import GaussianModel, SurfaceGaussianConfig, from_surface_samples
from gs_render.rasterize import rasterize

_K = np.array([[30.0, 0.0, 16.0], [0.0, 30.0, 12.0], [0.0, 0.0, 1.0]])


def _viewmat(x_m: float) -> np.ndarray:
    """Camera at (x_m, 0, -2) looking along +z at the plane z = 0."""
    viewmat = np.eye(4)
    viewmat[:3, 3] = [-x_m, 0.0, 2.0]
    return viewmat


def _plane(colors: np.ndarray) -> GaussianModel:
    """An 8x8 grid of discs on z = 0 facing the camera (normal -z)."""
    xs, ys = np.meshgrid(np.linspace(-1.2, 1.2, 8), np.linspace(-0.9, 0.9, 8))
    points = np.c_[xs.ravel(), ys.ravel(), np.zeros(64)]
    normals = np.tile([0.0, 0.0, -1.0], (64, 1))
    config = SurfaceGaussianConfig(sigma_per_spacing=0.6)  # discs just overlap on the grid
    return from_surface_samples(points, normals, colors, spacing_m=0.34, config=config)


def _render(model: GaussianModel, viewmat: np.ndarray) -> torch.Tensor:
    rgb, _ = rasterize(
        model.means,
        model.quats,
        model.scales,
        model.opacities,
        model.colors,
        torch.tensor(viewmat, dtype=torch.float32)[None],
        torch.tensor(_K, dtype=torch.float32)[None],
        32,
        24,
        backend="torch",
    )
    return rgb[0]


def _views() -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    truth = _plane(np.random.default_rng(0).uniform(0.0, 1.0, (64, 3)))
    views = []
    for x_m in (-0.3, 0.3):
        image = (_render(truth, _viewmat(x_m)).clamp(0, 1) * 255 + 0.5).to(torch.uint8).numpy()
        views.append((image, _K, _viewmat(x_m)))
    return views


def _mean_loss(model: GaussianModel, views: list) -> float:
    with torch.no_grad():
        return float(
            np.mean(
                [
                    photometric_loss(_render(model, v), torch.from_numpy(img / 255.0).float(), 0.2)
                    for img, _, v in views
                ]
            )
        )


def test_fit_lowers_the_photometric_loss_on_two_views() -> None:
    views = _views()
    start = _plane(np.full((64, 3), 0.5))
    before = _mean_loss(start, views)
    result = fit(start, views, FitConfig(iterations=16, lr_colors=0.08, backend="torch"))
    after = _mean_loss(result.model, views)
    # Colours start grey and the geometry is right, so the colour gradient alone must remove
    # most of the error; 16 Adam steps of 0.08 move each colour by up to 1.3.
    assert after < 0.5 * before
    assert len(result.losses) == 16 and result.losses[-1] < result.losses[0]
    np.testing.assert_allclose(start.colors, 0.5)  # the input model is left unchanged
    assert float(result.model.colors.min()) >= 0.0 and float(result.model.colors.max()) <= 1.0


def test_fit_keeps_sh_colours_as_sh() -> None:
    views = _views()[:1]
    start = _plane(np.full((64, 3), 0.5))
    sh_start = GaussianModel(
        start.means, start.quats, start.scales, start.opacities, torch.zeros(64, 4, 3)
    )
    result = fit(sh_start, views, FitConfig(iterations=3, backend="torch"))
    assert result.model.sh_degree == 1
    assert float((result.model.colors - sh_start.colors).abs().max()) > 0.0


@pytest.mark.parametrize(
    ("views", "message"),
    [
        ([], "views is empty"),
        ([(np.zeros((24, 32, 3), np.float32), _K, np.eye(4))], "uint8"),
        ([(np.zeros((8, 32, 3), np.uint8), _K, np.eye(4))], "below 11 px"),
        ([(np.zeros((24, 32, 3), np.uint8), np.eye(4), np.eye(4))], r"K \[3, 3\]"),
        ([(np.zeros((24, 32, 3), np.uint8), _K, np.full((4, 4), np.nan))], "NaN"),
    ],
)
def test_bad_views_raise(views: list, message: str) -> None:
    with pytest.raises(FitError, match=message):
        fit(_plane(np.full((64, 3), 0.5)), views, FitConfig(iterations=1))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("iterations", 0),
        ("lr_colors", -1.0),
        ("ssim_weight", 1.5),
        ("near_m", 0.0),
        ("backend", "opengl"),
        ("background_rgb", (0.0, 2.0, 0.0)),
    ],
)
def test_fit_config_rejects_out_of_range(field: str, value: object) -> None:
    with pytest.raises(FitError, match=field):
        FitConfig(**{field: value})
