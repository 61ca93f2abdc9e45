"""Photometric refinement of a learned map's appearance on uploaded keyframes (GSRMR).

Formulation (3D Gaussian splatting, Kerbl et al. 2023): minimise over the colours, opacity
logits and log-scales of the map's Gaussians (the means stay where the lidar put them)

    L = (1 - lambda) |I_hat - I|_1 + lambda (1 - SSIM(I_hat, I)),   lambda = ``ssim_weight``,

with ``I_hat`` the differentiable render (torch on CPU, gsplat on CUDA: the same ``rasterize``
call) composited over the learned sky, on the newest uploaded keyframes in turn (Adam, one
learning rate per group). Also the frame checks and the keyframe downscaling.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from geometry.transforms import invert_transform
from gs_render.colour_solve import colour_step
from gs_render.fit import photometric_loss
from gs_render.projection import project
from gs_render.rasterize import rasterize, resolve_backend

if TYPE_CHECKING:
    from gs_render.sensor_map import Frame, MapAppearance


def refine_appearance(appearance: MapAppearance, iterations: int) -> list[float]:
    """``iterations`` photometric steps on the appearance's keyframes; returns the losses."""
    if iterations <= 0 or not appearance.keyframes:
        return []
    geo, _, rows = appearance._current()
    if len(rows) == 0:
        return []
    cfg, a = appearance.config, appearance.app
    backend = resolve_backend(cfg.backend)
    device = torch.device("cuda" if backend == "gsplat" else "cpu")
    t = lambda v: torch.tensor(v, dtype=torch.float32, device=device)  # noqa: E731
    base_logit = np.log(geo.opacities) - np.log1p(-geo.opacities)
    params = {
        "rgb": t(a["rgb"][rows]).requires_grad_(),
        "logit": t(base_logit + a["logit"][rows, 0]).requires_grad_(),
        "logscale": t(np.log(geo.scales) + a["logscale"][rows]).requires_grad_(),
        "offset": t(a["offset"][rows]).requires_grad_(),
    }
    rates = (cfg.lr_colors, cfg.lr_opacity_logits, cfg.lr_log_scales, cfg.lr_means_m)
    optimizer = torch.optim.Adam(
        [{"params": [p], "lr": lr} for p, lr in zip(params.values(), rates, strict=True)],
        eps=1e-15,
    )
    means, quats = t(geo.means), t(geo.quats)
    sky = appearance.sky()
    losses = []
    for step in range(iterations):
        target, k, pose = appearance.keyframes[-1 - step % len(appearance.keyframes)]
        height, width = target.shape[:2]
        rgb, alpha = rasterize(
            means + params["offset"], quats, torch.exp(params["logscale"]),
            torch.sigmoid(params["logit"]), params["rgb"],
            t(invert_transform(pose))[None], t(k)[None], width, height,
            near_m=0.05, backend=backend,
        )  # fmt: skip
        background = t(sky.image(pose, k, width, height))
        rendered = rgb[0] + (1.0 - alpha[0]) * background
        loss = photometric_loss(rendered, t(target), cfg.ssim_weight)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            params["rgb"].clamp_(0.0, 1.0)
        losses.append(float(loss.detach()))
    with torch.no_grad():
        a["rgb"][rows] = params["rgb"].cpu().numpy()
        a["logit"][rows, 0] = params["logit"].cpu().numpy() - base_logit
        a["logscale"][rows] = params["logscale"].cpu().numpy() - np.log(geo.scales)
        a["offset"][rows] = params["offset"].cpu().numpy()
    appearance._cache = None
    return losses


def solve_colours(appearance: MapAppearance, iterations: int) -> list[float]:
    """``iterations`` majorise-minimise steps of the colour least squares on the keyframes
    (:mod:`gs_render.colour_solve`); returns the mean squared error before each step."""
    if iterations <= 0 or not appearance.keyframes:
        return []
    _, model, rows = appearance._current()
    if len(rows) == 0:
        return []
    sky = appearance.sky()
    frames = []
    for target, k, pose in appearance.keyframes:
        height, width = target.shape[:2]
        with torch.no_grad():
            proj = project(
                model.means, model.quats, model.scales, model.opacities,
                torch.as_tensor(invert_transform(pose), dtype=torch.float32),
                torch.as_tensor(k, dtype=torch.float32), width, height, 0.05, 1000.0,
            )  # fmt: skip
        arrays = [np.ascontiguousarray(v.numpy(), dtype=np.float64) for v in
                  (proj.means2d, proj.conics, proj.opacities, proj.radii)]  # fmt: skip
        frames.append(
            (
                *arrays,
                proj.ids.numpy(),
                sky.image(pose, k, width, height).astype(np.float64),
                np.ascontiguousarray(target, dtype=np.float64),
            )
        )
    colors = model.colors.numpy().astype(np.float64)
    losses = []
    for _ in range(iterations):
        loss, diag = colour_step(frames, colors)
        losses.append(loss)
    solved = rows[diag > 1e-9]
    a = appearance.app
    a["rgb"][solved] = colors[diag > 1e-9]
    # Solved colours are observations: never inpainted over (a tiny weight, so that the next
    # frame's projection still dominates the running mean).
    a["weight"][solved, 0] = np.maximum(a["weight"][solved, 0], 1e-6)
    appearance._cache = None
    return losses


def _check_frame(frame: Frame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    image = np.asarray(frame.image)
    k = np.asarray(frame.K, dtype=np.float64)
    pose = np.asarray(frame.T_world_camera_optical, dtype=np.float64)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise _error()(f"frame image must be uint8 [H, W, 3], got {image.dtype} {image.shape}")
    if min(image.shape[:2]) < 16:
        raise _error()(f"frame image {image.shape[:2]} is below 16 px")
    if k.shape != (3, 3) or pose.shape != (4, 4):
        raise _error()(f"frame needs K [3, 3] and pose [4, 4], got {k.shape}, {pose.shape}")
    if not (np.isfinite(k).all() and np.isfinite(pose).all()) or k[0, 0] <= 0 or k[1, 1] <= 0:
        raise _error()("frame K or pose is not finite, or fx/fy <= 0")
    return image, k, pose


def _keyframe(
    image: np.ndarray, k: np.ndarray, pose: np.ndarray, scale: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image float32 [h, w, 3] in [0, 1], K [3, 3], pose) at ``scale`` (area averaging)."""
    # Never below 16 px a side: the loss's SSIM needs its 11 px window.
    step = max(1, min(round(1.0 / scale), min(image.shape[:2]) // 16))
    height, width = (image.shape[0] // step) * step, (image.shape[1] // step) * step
    small = image[:height, :width].astype(np.float32) / 255.0
    small = small.reshape(height // step, step, width // step, step, 3).mean(axis=(1, 3))
    k_small = k.copy()
    k_small[:2] /= step  # pixel centres: (j + 0.5) step - 0.5 maps to j + 0.5 exactly
    return small, k_small, pose


def _error() -> type[ValueError]:
    from gs_render.sensor_map import SensorMapError

    return SensorMapError
