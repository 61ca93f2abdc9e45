"""CenterPoint losses: penalty-reduced focal loss on the heat map, L1 on the regression.

Formulation (CenterNet, Zhou et al. 2019, eq. 1; CenterPoint, Yin et al. 2021), p = sigmoid(logit),
y the Gaussian target, N the number of objects (at least 1):
  L_heat = -1/N * sum_{y = 1} (1 - p)^2 log p  -  1/N * sum_{y < 1} (1 - y)^4 p^2 log(1 - p)
  L_reg  = 1/N * sum_objects sum_channels w_c |r_c - r*_c|
  L_dir  = 1/N * sum_objects |d - (sin yaw, cos yaw)|_1               (direction vector)
  L      = L_heat + regression_weight * L_reg + direction_weight * L_dir
(CenterPoint: regression_weight = 0.25; the direction weight plays the role of SECOND's 0.2 for
its direction classifier.) log p and log(1 - p) are computed as logsigmoid(+-logit) for
numerical stability.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# Targets equal to 1 up to float rounding mark centre cells.
_POSITIVE = 1.0 - 1e-4


def focal_loss(
    logits: torch.Tensor,  # [B, K, H, W]
    target: torch.Tensor,  # [B, K, H, W] Gaussian heat map in [0, 1]
) -> torch.Tensor:  # [] scalar
    """Penalty-reduced focal loss (alpha = 2, beta = 4), normalized by the number of centres."""
    pos = (target >= _POSITIVE).float()
    prob = torch.sigmoid(logits)
    pos_term = F.logsigmoid(logits) * (1 - prob) ** 2 * pos
    neg_term = F.logsigmoid(-logits) * prob**2 * (1 - target) ** 4 * (1 - pos)
    return -(pos_term.sum() + neg_term.sum()) / pos.sum().clamp(min=1.0)


def gather_cells(
    maps: torch.Tensor,  # [B, R, H, W]
    indices: torch.Tensor,  # [B, M] int64 cells (row * W + column)
) -> torch.Tensor:  # [B, M, R]
    """The R channels of ``maps`` at M cells per batch element."""
    b, r = maps.shape[:2]
    flat = maps.reshape(b, r, -1)  # [B, R, H*W]
    return torch.gather(flat, 2, indices[:, None, :].expand(-1, r, -1)).transpose(1, 2)


def regression_loss(
    regression: torch.Tensor,  # [B, R, H, W] network output
    indices: torch.Tensor,  # [B, M] int64 centre cells (row * W + column)
    mask: torch.Tensor,  # [B, M] bool
    target: torch.Tensor,  # [B, M, R]
    channel_weights: torch.Tensor,  # [R]
) -> torch.Tensor:  # [] scalar
    """Weighted L1 between the regression read at the centre cells and its target."""
    pred = gather_cells(regression, indices)  # [B, M, R]
    weight = mask[..., None].float() * channel_weights  # [B, M, R]
    return (weight * (pred - target).abs()).sum() / mask.float().sum().clamp(min=1.0)


def direction_loss(
    direction: torch.Tensor,  # [B, 2, H, W] network output
    indices: torch.Tensor,  # [B, M] int64 centre cells
    mask: torch.Tensor,  # [B, M] bool
    target: torch.Tensor,  # [B, M, 2] (sin yaw, cos yaw)
) -> torch.Tensor:  # [] scalar
    """L1 of the direction vector at the centre cells."""
    ones = torch.ones(direction.shape[1], device=direction.device)
    return regression_loss(direction, indices, mask, target, ones)
