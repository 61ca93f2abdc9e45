"""Photometric refinement of a Gaussian model against posed camera images.

Formulation (3D Gaussian splatting, Kerbl et al. 2023; GSRMR, arXiv 2504.13697, keeps the GS
model of the environment consistent with the robot's camera): minimize over the Gaussian
parameters theta = (mu, q, log s, logit o, c)

    L(theta) = (1 - lambda) |I_hat - I|_1 + lambda (1 - SSIM(I_hat, I)),   lambda = 0.2,

where I_hat = rasterize(theta; K, viewmat) is differentiable (torch autograd through the CPU
rasterizer, or gsplat on CUDA). Adam with one learning rate per parameter group; one view per
iteration, views taken in turn. No densification or pruning (the model keeps N Gaussians):
the simulator's surface samples already place them, the fit only corrects colour, opacity,
size, orientation and small position errors.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from gs_render.metrics import SSIM_WINDOW_PX, ssim_torch
from gs_render.model import GaussianModel
from gs_render.rasterize import BACKENDS, Backend, rasterize, resolve_backend

log = logging.getLogger(__name__)

#: Views are (image uint8 [H, W, 3], K [3, 3] (px), viewmat [4, 4] world -> camera optical).
View = tuple[np.ndarray, np.ndarray, np.ndarray]


class FitError(ValueError):
    """A fitting setting or view is invalid."""


@dataclass(frozen=True)
class FitConfig:
    """Optimizer settings (Adam learning rates are per step, in the parameter's own units)."""

    iterations: int = 100  # optimizer steps, [1, 1_000_000]
    lr_means_m: float = 1e-3  # mean position (m), [0, 1]
    lr_colors: float = 1e-2  # RGB in [0, 1] or SH coefficients, [0, 1]
    lr_opacity_logits: float = 5e-2  # logit(o), [0, 1]
    lr_log_scales: float = 5e-3  # log(s / 1 m), [0, 1]
    lr_quats: float = 1e-3  # raw quaternion components, [0, 1]
    ssim_weight: float = 0.2  # lambda in the loss, [0, 1]
    background_rgb: tuple[float, float, float] = (0.0, 0.0, 0.0)  # each in [0, 1]
    near_m: float = 0.01  # near plane (m), > 0
    backend: Backend = "auto"  # rasterizer backend

    def __post_init__(self) -> None:
        if not 1 <= self.iterations <= 1_000_000:
            raise FitError(f"iterations={self.iterations} outside [1, 1000000]")
        for name in ("lr_means_m", "lr_colors", "lr_opacity_logits", "lr_log_scales", "lr_quats"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise FitError(f"{name}={getattr(self, name)} outside [0, 1]")
        if not 0.0 <= self.ssim_weight <= 1.0:
            raise FitError(f"ssim_weight={self.ssim_weight} outside [0, 1]")
        if len(self.background_rgb) != 3 or not all(0 <= v <= 1 for v in self.background_rgb):
            raise FitError(f"background_rgb={self.background_rgb} must be 3 values in [0, 1]")
        if not self.near_m > 0.0:
            raise FitError(f"near_m={self.near_m} must be > 0")
        if self.backend not in BACKENDS:
            raise FitError(f"backend={self.backend!r} is not one of {BACKENDS}")


@dataclass(frozen=True)
class FitResult:
    """The refined model and the loss of every iteration (on that iteration's view)."""

    model: GaussianModel
    losses: list[float]


def photometric_loss(rendered: Tensor, target: Tensor, ssim_weight: float) -> Tensor:
    """(1 - lambda) L1 + lambda (1 - SSIM) of images [H, W, 3] in [0, 1] (scalar tensor)."""
    l1 = (rendered - target).abs().mean()
    return (1.0 - ssim_weight) * l1 + ssim_weight * (1.0 - ssim_torch(rendered, target))


def _check_views(views: list[View]) -> list[tuple[Tensor, Tensor, Tensor]]:
    """Views as float32 tensors (image [H, W, 3] in [0, 1], K [3, 3], viewmat [4, 4])."""
    if not views:
        raise FitError("views is empty; fitting needs at least one posed image")
    out = []
    for i, (image, k, viewmat) in enumerate(views):
        image, k, viewmat = np.asarray(image), np.asarray(k), np.asarray(viewmat)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise FitError(
                f"views[{i}] image must be uint8 [H, W, 3], got {image.dtype} {image.shape}"
            )
        if min(image.shape[:2]) < SSIM_WINDOW_PX:
            raise FitError(f"views[{i}] image {image.shape[:2]} is below {SSIM_WINDOW_PX} px")
        if k.shape != (3, 3) or viewmat.shape != (4, 4):
            raise FitError(
                f"views[{i}] needs K [3, 3] and viewmat [4, 4], got {k.shape} and {viewmat.shape}"
            )
        if not (np.isfinite(k).all() and np.isfinite(viewmat).all()):
            raise FitError(f"views[{i}] K or viewmat contains NaN or infinite values")
        out.append(
            (
                torch.from_numpy(image.astype(np.float32) / 255.0),
                torch.as_tensor(k, dtype=torch.float32),
                torch.as_tensor(viewmat, dtype=torch.float32),
            )
        )
    return out


def fit(
    model: GaussianModel,
    views: list[View],
    config: FitConfig | None = None,
    *,
    progress: bool = False,
) -> FitResult:
    """Refines ``model`` to reproduce ``views``; returns a new model (the input is unchanged).

    Raises:
        FitError: a view is malformed, or the model is empty.
    """
    cfg = config or FitConfig()
    data = _check_views(views)
    if len(model) == 0:
        raise FitError("model has no Gaussians to fit")
    backend = resolve_backend(cfg.backend)
    device = torch.device("cuda") if backend == "gsplat" else model.means.device
    start = model.detach().to(device)
    params = {
        "means": start.means,
        "quats": start.quats,
        "log_scales": torch.log(start.scales),
        "logits": torch.logit(start.opacities.clamp(1e-4, 1 - 1e-4)),
        "colors": start.colors,
    }
    rates = [cfg.lr_means_m, cfg.lr_quats, cfg.lr_log_scales, cfg.lr_opacity_logits, cfg.lr_colors]
    groups = []
    for (name, value), lr in zip(params.items(), rates, strict=True):
        value.requires_grad_(True)
        groups.append({"params": [value], "lr": lr, "name": name})
    optimizer = torch.optim.Adam(groups, eps=1e-15)
    background = torch.tensor([cfg.background_rgb], dtype=torch.float32, device=device)
    losses: list[float] = []
    for step in tqdm(range(cfg.iterations), desc="fit", disable=not progress):
        target, k, viewmat = data[step % len(data)]
        height, width = target.shape[:2]
        rendered, _ = rasterize(
            params["means"],
            params["quats"],
            torch.exp(params["log_scales"]),
            torch.sigmoid(params["logits"]),
            params["colors"],
            viewmat[None].to(device),
            k[None].to(device),
            width,
            height,
            near_m=cfg.near_m,
            backgrounds=background,
            sh_degree=model.sh_degree,
            backend=backend,
        )
        loss = photometric_loss(rendered[0], target.to(rendered.device), cfg.ssim_weight)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if model.sh_degree is None:
            with torch.no_grad():
                params["colors"].clamp_(0.0, 1.0)
        losses.append(float(loss.detach()))
    log.info("fit: %d iterations, loss %.4f -> %.4f", cfg.iterations, losses[0], losses[-1])
    with torch.no_grad():
        refined = GaussianModel(
            means=params["means"].detach(),
            quats=torch.nn.functional.normalize(params["quats"].detach(), dim=-1),
            scales=torch.exp(params["log_scales"].detach()),
            opacities=torch.sigmoid(params["logits"].detach()),
            colors=params["colors"].detach(),
        )
    return FitResult(model=refined.to(model.means.device), losses=losses)
