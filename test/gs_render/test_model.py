"""The Gaussian model and its construction from surface samples."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from gs_render.model import (
    GaussianModel,
    ModelError,
    SurfaceGaussianConfig,
    from_surface_samples,
    normals_to_quats,
)
from gs_render.projection import quat_to_rotmat


@settings(max_examples=200, deadline=None)
@given(
    arrays(np.float64, (8, 3), elements=st.floats(-10, 10)).filter(
        lambda a: bool((np.linalg.norm(a, axis=1) > 1e-3).all())
    )
)
def test_quaternions_turn_the_local_z_axis_onto_the_normal(normals: np.ndarray) -> None:
    unit = normals / np.linalg.norm(normals, axis=1, keepdims=True)
    rot = quat_to_rotmat(torch.from_numpy(normals_to_quats(unit))).numpy()
    # float64 construction without trigonometry or cancellation: rounding ~1e-15.
    np.testing.assert_allclose(rot[:, :, 2], unit, atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(rot), 1.0, atol=1e-9)


@pytest.mark.parametrize(
    "normal", [(0, 0, 1), (0, 0, -1), (1e-9, 0, -1), (3e-5, -2e-8, -1), (0, 3, 0), (0, 0, 1e-12)]
)
def test_quaternions_are_exact_near_and_at_the_poles(normal: tuple) -> None:
    unit = np.array([normal], dtype=np.float64) / np.linalg.norm(normal)
    rot = quat_to_rotmat(torch.from_numpy(normals_to_quats(unit))).numpy()
    np.testing.assert_allclose(rot[0, :, 2], unit[0], atol=1e-12)  # float64 rounding


@pytest.mark.parametrize("normal", [(0.0, 0.0, 1.0), (0.0, 0.0, -1.0), (0.0, 3.0, 0.0)])
def test_discs_are_flat_along_the_normal_and_sized_by_spacing(normal: tuple) -> None:
    config = SurfaceGaussianConfig(sigma_per_spacing=0.5, thickness_ratio=0.1, opacity=0.8)
    model = from_surface_samples(
        np.zeros((2, 3)), np.array([normal, normal]), np.full((2, 3), 0.25), 0.2, config
    )
    rot = quat_to_rotmat(model.quats.double())
    cov = rot @ torch.diag_embed(model.scales.double() ** 2) @ rot.transpose(1, 2)
    n = torch.tensor(normal, dtype=torch.float64) / np.linalg.norm(normal)
    # Variance along the normal is (0.1 * 0.5 * 0.2)^2, across it (0.5 * 0.2)^2 (float32 inputs).
    assert float(n @ cov[0] @ n) == pytest.approx(0.01**2, rel=1e-5)
    assert float(torch.trace(cov[0])) == pytest.approx(2 * 0.1**2 + 0.01**2, rel=1e-5)
    np.testing.assert_allclose(model.opacities, 0.8)
    np.testing.assert_allclose(model.colors, 0.25)
    assert model.sh_degree is None and len(model) == 2


@pytest.mark.parametrize(
    ("points", "normals", "colors", "spacing", "message"),
    [
        (np.zeros((3, 3)), np.ones((2, 3)), np.zeros((3, 3)), 0.1, "normals has shape"),
        (np.zeros((3, 2)), np.ones((3, 3)), np.zeros((3, 3)), 0.1, "points has shape"),
        (np.full((3, 3), np.nan), np.ones((3, 3)), np.zeros((3, 3)), 0.1, "points contains NaN"),
        (np.zeros((3, 3)), np.zeros((3, 3)), np.zeros((3, 3)), 0.1, "zero-length"),
        (np.zeros((3, 3)), np.ones((3, 3)), np.full((3, 3), 1.5), 0.1, r"colors must lie"),
        (np.zeros((3, 3)), np.ones((3, 3)), np.zeros((3, 3)), 0.0, "spacing_m=0.0"),
    ],
)
def test_bad_surface_samples_raise(points, normals, colors, spacing, message: str) -> None:
    with pytest.raises(ModelError, match=message):
        from_surface_samples(points, normals, colors, spacing)


@pytest.mark.parametrize(
    ("field", "value"),
    [("sigma_per_spacing", 0.0), ("thickness_ratio", 2.0), ("opacity", 1.0)],
)
def test_surface_config_rejects_out_of_range(field: str, value: float) -> None:
    with pytest.raises(ModelError, match=field):
        SurfaceGaussianConfig(**{field: value})


def _valid(n: int = 4) -> dict[str, torch.Tensor]:
    return {
        "means": torch.zeros(n, 3),
        "quats": torch.tensor([[1.0, 0.0, 0.0, 0.0]] * n),
        "scales": torch.ones(n, 3),
        "opacities": torch.full((n,), 0.5),
        "colors": torch.zeros(n, 3),
    }


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"quats": torch.ones(4, 4)}, "unit quaternions"),
        ({"scales": torch.zeros(4, 3)}, "scales must be > 0"),
        ({"opacities": torch.full((4,), 1.2)}, "opacities"),
        ({"means": torch.zeros(3, 3)}, "has shape"),
        ({"colors": torch.zeros(4, 5, 3)}, "SH coefficients"),
        ({"colors": torch.full((4, 3), float("inf"))}, "colors contains NaN"),
    ],
)
def test_model_validates_its_tensors(override: dict, message: str) -> None:
    with pytest.raises(ModelError, match=message):
        GaussianModel(**{**_valid(), **override})


@pytest.mark.parametrize(("k", "degree"), [(1, 0), (4, 1), (9, 2), (16, 3)])
def test_sh_degree_follows_the_coefficient_count(k: int, degree: int) -> None:
    assert GaussianModel(**{**_valid(), "colors": torch.zeros(4, k, 3)}).sh_degree == degree
