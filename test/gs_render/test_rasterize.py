"""The CPU rasterizers against the per-pixel reference, analytic cases and input validation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gs_render.raster_reference import rasterize_reference
from gs_render.raster_torch import RasterTorchError, TorchRasterConfig, auto_tile_size
from gs_render.rasterize import RasterizeError, gsplat_available, rasterize, resolve_backend
from gs_render.sh import rgb_to_sh_dc
from gs_render.synthetic import RandomScene, random_scene

# float64 end to end: the fast paths reorder sums (tile polynomial, batched products), so they
# differ from the reference by ~1e-14 (measured); a threshold (1/255, 1e-4) would have to fall
# within that of a value to flip a decision. 1e-9 leaves five orders of margin.
F64_ATOL = 1e-9


def _reference(scene: RandomScene, background: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    return rasterize_reference(
        scene.means,
        scene.quats,
        scene.scales,
        scene.opacities,
        scene.colors,
        scene.viewmat,
        scene.k,
        scene.width,
        scene.height,
        background=background,
    )


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize(
    ("backend", "config"),
    [
        ("torch", TorchRasterConfig(kernel="numba")),  # compiled per-pixel loop (inference)
        ("torch", TorchRasterConfig(kernel="torch")),
        ("torch", TorchRasterConfig(4, 1, 4096, kernel="torch")),
        ("torch", TorchRasterConfig(tile_size_px=16, depth_chunk=5, kernel="torch")),
        ("dense", TorchRasterConfig(depth_chunk=7, max_chunk_elements=4096)),
    ],
)
def test_cpu_rasterizers_match_the_per_pixel_reference(
    seed: int, backend: str, config: TorchRasterConfig
) -> None:
    scene = random_scene(seed)
    background = np.array([0.2, 0.5, 0.9]) if seed % 2 else None
    want_rgb, want_alpha = _reference(scene, background)
    assert 0.05 < want_alpha.mean() < 0.95  # the scene covers part of the image
    bgs = None if background is None else torch.tensor(background)[None]
    rgb, alpha = rasterize(
        *scene.tensors(),
        scene.width,
        scene.height,
        backgrounds=bgs,
        backend=backend,
        torch_config=config,
    )
    np.testing.assert_allclose(rgb[0].numpy(), want_rgb, atol=F64_ATOL)
    np.testing.assert_allclose(alpha[0].numpy(), want_alpha, atol=F64_ATOL)


def test_float32_render_stays_close_to_float64() -> None:
    scene = random_scene(5)
    rgb64, _ = rasterize(*scene.tensors(torch.float64), scene.width, scene.height, backend="torch")
    rgb32, _ = rasterize(*scene.tensors(torch.float32), scene.width, scene.height, backend="torch")
    assert rgb32.dtype == torch.float32
    diff = (rgb32.double() - rgb64).abs()
    # float32 rounding is ~1e-6 relative; a pixel whose alpha sits within that of 1/255 may
    # drop one Gaussian (<= 1/255 of a colour in [0, 1]). Typical pixels stay far below it.
    assert float(diff.max()) < 1.0 / 255.0 + 1e-4
    assert float(diff.mean()) < 1e-5


def _one_gaussian(opacity: float, sigma_m: float, depth_m: float) -> tuple[torch.Tensor, ...]:
    means = torch.tensor([[0.0, 0.0, depth_m]])
    quats = torch.tensor([[1.0, 0.0, 0.0, 0.0]])
    scales = torch.full((1, 3), sigma_m)
    return means, quats, scales, torch.tensor([opacity]), torch.tensor([[0.9, 0.4, 0.1]])


# A 16x16 image whose principal point (8.5, 8.5) is the centre of pixel (8, 8).
_K = torch.tensor([[[20.0, 0.0, 8.5], [0.0, 20.0, 8.5], [0.0, 0.0, 1.0]]])
_EYE = torch.eye(4)[None]


@pytest.mark.parametrize("backend", ["torch", "dense"])
@pytest.mark.parametrize(
    ("offset_px", "opacity"), [(0, 0.7), (2, 0.7), (3, 0.35), (0, 1.0), (6, 0.35)]
)
def test_single_gaussian_matches_the_closed_form(
    backend: str, offset_px: int, opacity: float
) -> None:
    sigma_m, depth_m = 0.15, 2.0
    background = torch.tensor([[0.1, 0.2, 0.3]])
    rgb, alpha = rasterize(
        *_one_gaussian(opacity, sigma_m, depth_m),
        _EYE,
        _K,
        16,
        16,
        backgrounds=background,
        backend=backend,
    )
    # On the optical axis J = diag(f/z), so Sigma_2d = (f s / z)^2 I + 0.3 I (px^2).
    var_px2 = (20.0 * sigma_m / depth_m) ** 2 + 0.3
    want_alpha = min(0.999, opacity * math.exp(-0.5 * offset_px**2 / var_px2))
    if want_alpha < 1.0 / 255.0:  # skipped (the last case: 3e-4)
        want_alpha = 0.0
    want_rgb = want_alpha * torch.tensor([0.9, 0.4, 0.1]) + (1 - want_alpha) * background[0]
    # float32 arithmetic on O(1) values: a few ulps.
    assert float(alpha[0, 8, 8 + offset_px, 0]) == pytest.approx(want_alpha, abs=1e-6)
    np.testing.assert_allclose(rgb[0, 8, 8 + offset_px].numpy(), want_rgb.numpy(), atol=1e-6)


@pytest.mark.parametrize("backend", ["torch", "dense"])
@pytest.mark.parametrize("near_first_in_input", [True, False])
def test_near_opaque_gaussian_hides_a_far_one(backend: str, near_first_in_input: bool) -> None:
    means = torch.tensor([[0.0, 0.0, 2.0], [0.0, 0.0, 4.0]])
    colors = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    order = [0, 1] if near_first_in_input else [1, 0]
    rgb, alpha = rasterize(
        means[order],
        torch.tensor([[1.0, 0, 0, 0]] * 2),
        torch.full((2, 3), 0.3),
        torch.tensor([1.0, 0.5])[order],
        colors[order],
        _EYE,
        _K,
        16,
        16,
        backend=backend,
    )
    centre = rgb[0, 8, 8]
    # The near one has alpha 0.999 (the clamp), leaving T = 1e-3; the far one (alpha 0.5)
    # takes it to 5e-4 > 1e-4, so it still adds 0.5 * 1e-3 of blue. Tolerance: float32 ulps.
    assert float(centre[0]) == pytest.approx(0.999, abs=1e-6)
    assert float(centre[2]) == pytest.approx(0.5e-3, abs=1e-6)
    assert float(alpha[0, 8, 8, 0]) == pytest.approx(1 - 0.5e-3, abs=1e-6)


@pytest.mark.parametrize("backend", ["torch", "dense"])
def test_pixel_stops_before_the_gaussian_that_would_drop_transmittance_below_1e4(
    backend: str,
) -> None:
    # Three opaque layers: T goes 1 -> 1e-3, the second would take it to 1e-6 <= 1e-4, so it
    # and everything behind are excluded (gsplat's "exclusive" stop); alpha stays 0.999.
    means = torch.tensor([[0.0, 0.0, 2.0], [0.0, 0.0, 3.0], [0.0, 0.0, 4.0]])
    rgb, alpha = rasterize(
        means,
        torch.tensor([[1.0, 0, 0, 0]] * 3),
        torch.full((3, 3), 0.3),
        torch.ones(3),
        torch.eye(3),
        _EYE,
        _K,
        16,
        16,
        backend=backend,
    )
    assert float(alpha[0, 8, 8, 0]) == pytest.approx(0.999, abs=1e-6)
    np.testing.assert_allclose(rgb[0, 8, 8].numpy(), [0.999, 0.0, 0.0], atol=1e-6)


@pytest.mark.parametrize("backend", ["torch", "dense"])
def test_sh_degree_zero_renders_like_the_rgb_it_encodes(backend: str) -> None:
    scene = random_scene(7)
    tensors = scene.tensors()
    rgb, _ = rasterize(*tensors, scene.width, scene.height, backend=backend)
    sh = rgb_to_sh_dc(tensors[4])[:, None, :]
    rgb_sh, _ = rasterize(
        *tensors[:4], sh, *tensors[5:], scene.width, scene.height, sh_degree=0, backend=backend
    )
    np.testing.assert_allclose(rgb_sh.numpy(), rgb.numpy(), atol=F64_ATOL)


def test_cameras_render_independently_in_one_call() -> None:
    a, b = random_scene(1), random_scene(2)
    ta, tb = a.tensors(), b.tensors()
    both_rgb, _ = rasterize(
        *ta[:5], torch.cat([ta[5], tb[5]]), torch.cat([ta[6], tb[6]]), a.width, a.height
    )
    rgb_b, _ = rasterize(*ta[:5], tb[5], tb[6], a.width, a.height)
    np.testing.assert_allclose(both_rgb[1].numpy(), rgb_b[0].numpy(), atol=F64_ATOL)


def test_gradients_reach_every_gaussian_parameter() -> None:
    scene = random_scene(3)
    params = [t.clone().requires_grad_(True) for t in scene.tensors()[:5]]
    rgb, alpha = rasterize(*params, *scene.tensors()[5:], scene.width, scene.height)
    (rgb.sum() + alpha.sum()).backward()
    for name, p in zip(["means", "quats", "scales", "opacities", "colors"], params, strict=True):
        assert p.grad is not None and bool(torch.isfinite(p.grad).all()), name
        assert float(p.grad.abs().sum()) > 0.0, name


def _args(scene: RandomScene, **override: object) -> dict[str, object]:
    names = ["means", "quats", "scales", "opacities", "colors", "viewmats", "Ks"]
    args: dict[str, object] = dict(zip(names, scene.tensors(), strict=True))
    args.update(width=scene.width, height=scene.height)
    args.update(override)
    return args


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"means": torch.tensor([[float("nan"), 0.0, 1.0]] * 40)}, "means contains NaN"),
        ({"means": torch.zeros(40, 2)}, r"means has shape \(40, 2\)"),
        ({"quats": torch.ones(39, 4)}, "quats has shape"),
        ({"opacities": torch.full((40,), 1.5)}, r"opacities must lie in \[0, 1\]"),
        ({"scales": -torch.ones(40, 3)}, "scales must be > 0"),
        ({"colors": torch.zeros(40, 4)}, "colors has shape"),
        ({"viewmats": torch.eye(3)[None]}, "viewmats has shape"),
        ({"Ks": torch.eye(3)[None].repeat(2, 1, 1)}, "Ks has shape"),
        ({"width": 0}, "width=0"),
        ({"height": -5}, "height=-5"),
        ({"width": 12.5}, "width=12.5"),
        ({"means": torch.zeros(40, 3, dtype=torch.int64)}, "floating-point"),
    ],
)
def test_bad_inputs_raise_an_error_naming_the_field(override: dict, message: str) -> None:
    with pytest.raises(RasterizeError, match=message):
        rasterize(**_args(random_scene(0), **override))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"near_m": 0.0}, "near_m"),
        ({"near_m": 5.0, "far_m": 1.0}, "near_m"),
        ({"sh_degree": 4}, "sh_degree=4"),
        ({"backend": "vulkan"}, "backend='vulkan'"),
    ],
)
def test_bad_options_raise(kwargs: dict, message: str) -> None:
    with pytest.raises(RasterizeError, match=message):
        rasterize(**_args(random_scene(0)), **kwargs)


@pytest.mark.parametrize("field", ["tile_size_px", "depth_chunk", "max_chunk_elements"])
def test_torch_config_rejects_out_of_range_values(field: str) -> None:
    with pytest.raises(RasterTorchError, match=field):
        TorchRasterConfig(**{field: 0})


def test_auto_backend_picks_gsplat_exactly_when_cuda_is_available() -> None:
    assert resolve_backend("auto") == ("gsplat" if gsplat_available() else "torch")
    if not torch.cuda.is_available():
        with pytest.raises(RasterizeError, match="needs CUDA"):
            resolve_backend("gsplat")


def test_empty_scene_renders_the_background() -> None:
    rgb, alpha = rasterize(
        torch.zeros(0, 3),
        torch.zeros(0, 4),
        torch.zeros(0, 3),
        torch.zeros(0),
        torch.zeros(0, 3),
        _EYE,
        _K,
        16,
        16,
        backgrounds=torch.tensor([[0.5, 0.25, 1.0]]),
    )
    assert float(alpha.abs().max()) == 0.0
    np.testing.assert_allclose(rgb[0].reshape(-1, 3).numpy(), [[0.5, 0.25, 1.0]] * 256)


@pytest.mark.parametrize(("radius_px", "tile_px"), [(1, 4), (3, 4), (12, 8), (100, 16)])
def test_auto_tile_size_follows_the_splat_size(radius_px: int, tile_px: int) -> None:
    assert auto_tile_size(torch.full((100, 2), radius_px)) == tile_px


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_compiled_float32_render_matches_the_torch_compositor(seed: int) -> None:
    # The compiled kernel's float32 path uses a polynomial exp (relative error 2.6e-9) and
    # walks pixels one by one; against the torch compositor the difference is float32
    # rounding, plus at most one Gaussian flipping across the 1/255 or 1e-4 thresholds.
    scene = random_scene(seed, n=200, width=40, height=30)
    out = [
        rasterize(*scene.tensors(torch.float32), scene.width, scene.height,
                  torch_config=TorchRasterConfig(kernel=kernel))[0]
        for kernel in ("numba", "torch")
    ]  # fmt: skip
    diff = (out[0] - out[1]).abs()
    assert float(diff.max()) < 1.0 / 255.0 + 1e-4
    assert float(diff.mean()) < 1e-5


def test_gradients_use_the_differentiable_compositor() -> None:
    scene = random_scene(0)
    tensors = list(scene.tensors())
    tensors[4].requires_grad_(True)  # colours
    rgb, _ = rasterize(*tensors, scene.width, scene.height)  # kernel "auto"
    rgb.sum().backward()
    assert tensors[4].grad is not None and float(tensors[4].grad.abs().sum()) > 0.0
    with pytest.raises(RasterizeError, match="kernel='numba'"):
        rasterize(
            *tensors, scene.width, scene.height, torch_config=TorchRasterConfig(kernel="numba")
        )
