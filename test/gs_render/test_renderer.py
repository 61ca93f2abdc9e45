"""GaussianRenderer: poses in the OpenCV optical frame, uint8 output, input checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gs_render.model import GaussianModel
from gs_render.renderer import GaussianRenderer, RendererConfig, RendererError

_K = np.array([[40.0, 0.0, 16.5], [0.0, 40.0, 12.5], [0.0, 0.0, 1.0]])  # pixel (16, 12) centre


def _pose(x_m: float = 0.0) -> np.ndarray:
    """T_world_camera_optical: camera at (x_m, 0, 1.5) looking along world +x."""
    pose = np.eye(4)
    pose[:3, :3] = [[0, 0, 1], [-1, 0, 0], [0, -1, 0]]  # optical z = +x, x = -y, y = -z
    pose[:3, 3] = [x_m, 0.0, 1.5]
    return pose


def _model(
    points: list[tuple[float, float, float]], color: tuple[float, float, float]
) -> GaussianModel:
    n = len(points)
    return GaussianModel(
        means=torch.tensor(points, dtype=torch.float32),
        quats=torch.tensor([[1.0, 0.0, 0.0, 0.0]] * n),
        scales=torch.full((n, 3), 0.05),
        opacities=torch.full((n,), 0.8),
        colors=torch.tensor([color] * n),
    )


def test_gaussian_straight_ahead_lands_on_the_principal_point() -> None:
    renderer = GaussianRenderer(_model([(5.0, 0.0, 1.5)], (1.0, 0.5, 0.0)))
    rgb, alpha = renderer.render(_pose(), _K, 32, 24)
    assert rgb.shape == (24, 32, 3) and rgb.dtype == np.uint8
    assert alpha.shape == (24, 32) and alpha.dtype == np.float32
    assert np.unravel_index(np.argmax(alpha), alpha.shape) == (12, 16)
    # Centre alpha is the opacity (0.8); colour over black, rounded to uint8.
    assert float(alpha[12, 16]) == pytest.approx(0.8, abs=1e-6)
    np.testing.assert_array_equal(rgb[12, 16], [204, 102, 0])


@pytest.mark.parametrize(
    ("point", "where"),
    [((5.0, 1.0, 1.5), "left"), ((5.0, -1.0, 1.5), "right"), ((5.0, 0.0, 2.5), "up")],
)
def test_world_left_and_up_appear_left_and_up_in_the_image(point: tuple, where: str) -> None:
    _, alpha = GaussianRenderer(_model([point], (1.0, 1.0, 1.0))).render(_pose(), _K, 32, 24)
    row, col = np.unravel_index(np.argmax(alpha), alpha.shape)
    # 1 m at 5 m depth with f = 40 px is 8 px off the centre.
    expected = {"left": (12, 8), "right": (12, 24), "up": (4, 16)}[where]
    assert (row, col) == expected


def test_moving_the_camera_past_a_gaussian_hides_it() -> None:
    renderer = GaussianRenderer(_model([(5.0, 0.0, 1.5)], (1.0, 1.0, 1.0)))
    _, alpha = renderer.render(_pose(x_m=6.0), _K, 32, 24)
    assert float(alpha.max()) == 0.0


def test_background_fills_empty_pixels() -> None:
    config = RendererConfig(backend="torch", background_rgb=(0.0, 0.5, 1.0))
    rgb, _ = GaussianRenderer(_model([(5.0, 0.0, 1.5)], (1.0, 1.0, 1.0)), config).render(
        _pose(), _K, 32, 24
    )
    np.testing.assert_array_equal(rgb[0, 0], [0, 128, 255])


def _bad_rotation() -> np.ndarray:
    pose = _pose()
    pose[:3, :3] *= 2.0
    return pose


def _reflection() -> np.ndarray:
    pose = _pose()
    pose[:3, 0] *= -1.0
    return pose


@pytest.mark.parametrize(
    ("pose", "k", "size", "message"),
    [
        (np.eye(3), _K, (32, 24), "finite"),
        (np.full((4, 4), np.nan), _K, (32, 24), "finite"),
        (_bad_rotation(), _K, (32, 24), "rigid"),
        (_reflection(), _K, (32, 24), "rigid"),
        (_pose(), np.eye(4), (32, 24), "K must be"),
        (_pose(), np.diag([-1.0, 1.0, 1.0]), (32, 24), "fx, fy > 0"),
        (_pose(), _K, (0, 24), "width=0"),
        (_pose(), _K, (32, -1), "height=-1"),
    ],
)
def test_bad_render_arguments_raise(
    pose: np.ndarray, k: np.ndarray, size: tuple, message: str
) -> None:
    renderer = GaussianRenderer(_model([(5.0, 0.0, 1.5)], (1.0, 1.0, 1.0)))
    with pytest.raises(RendererError, match=message):
        renderer.render(pose, k, *size)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"backend": "metal"}, "backend"),
        ({"near_m": 0.0}, "near_m"),
        ({"background_rgb": (1.0, 1.0)}, "background_rgb"),
    ],
)
def test_renderer_config_rejects_bad_values(kwargs: dict, message: str) -> None:
    with pytest.raises(RendererError, match=message):
        RendererConfig(**kwargs)
