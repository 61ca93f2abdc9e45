"""The sky dome: analytic colours and compositing behind the Gaussians."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gs_render import GaussianModel, GaussianRenderer, RendererConfig, SkyError, SkyGradient

K = np.array([[50.0, 0.0, 32.0], [0.0, 50.0, 24.0], [0.0, 0.0, 1.0]])
# camera_optical looking along world +x: optical z -> world x, optical x -> -y, optical y -> -z
LEVEL = np.array(
    [[0.0, 0.0, 1.0, 0.0], [-1.0, 0.0, 0.0, 0.0], [0.0, -1.0, 0.0, 1.5], [0.0, 0.0, 0.0, 1.0]]
)
# looking straight up: optical z -> world z
UP = np.array(
    [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.5], [0.0, 0.0, 0.0, 1.0]]
)


def test_centre_pixel_colours_match_the_formula() -> None:
    sky = SkyGradient()
    up = sky.image(UP, K, 64, 48)
    level = sky.image(LEVEL, K, 64, 48)
    # pixel centres are offset half a pixel from the principal point: direction within 1e-2 rad
    np.testing.assert_allclose(up[24, 32], sky.zenith_rgb, atol=2e-2)
    np.testing.assert_allclose(level[24, 32], sky.horizon_rgb, atol=0.12)  # u = sqrt(~0.01)
    assert np.all(level[47, :] == np.float32(sky.horizon_rgb))  # below the horizon: horizon


def test_empty_map_renders_the_sky_and_gaussians_cover_it() -> None:
    def model(n: int, opacity: float) -> GaussianModel:
        return GaussianModel(
            means=torch.tensor([[10.0, 0.0, 1.5]] * n),
            quats=torch.tensor([[1.0, 0, 0, 0]] * n),
            scales=torch.full((n, 3), 3.0),
            opacities=torch.full((n,), opacity),
            colors=torch.tensor([[1.0, 0.0, 0.0]] * n),
        )

    sky = SkyGradient()
    empty, alpha = GaussianRenderer(model(1, 0.0), RendererConfig(backend="torch", sky=sky)).render(
        LEVEL, K, 64, 48
    )
    expected = (np.clip(sky.image(LEVEL, K, 64, 48), 0, 1) * 255 + 0.5).astype(np.uint8)
    np.testing.assert_array_equal(empty, expected)
    assert alpha.max() == 0.0
    red, alpha = GaussianRenderer(model(1, 0.99), RendererConfig(backend="torch", sky=sky)).render(
        LEVEL, K, 64, 48
    )
    # centre: opacity 0.99 red over the sky, to 8-bit rounding
    expected_centre = (
        0.99 * np.array([1.0, 0, 0]) + (1 - alpha[24, 32]) * sky.image(LEVEL, K, 64, 48)[24, 32]
    )
    np.testing.assert_allclose(red[24, 32] / 255.0, expected_centre, atol=1 / 255)


@pytest.mark.parametrize("bad", [(1.2, 0.0, 0.0), (0.5, 0.5)])
def test_bad_colours_are_rejected(bad: tuple) -> None:
    with pytest.raises(SkyError):
        SkyGradient(zenith_rgb=bad)
