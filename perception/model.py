"""The detector network: 3D backbone -> BEV neck -> CenterPoint centre head.

Formulation (CenterPoint, Yin, Zhou and Krähenbühl, CVPR 2021, one task for all classes): on the
BEV grid (cell = 4 voxels, ``perception.config.BEV_STRIDE``) the head predicts, per cell,
- a heat map of K class logits whose peaks are object centres (trained with a Gaussian target and
  a focal loss, ``perception.targets`` and ``perception.losses``), and
- 8 regression channels ``REGRESSION_CHANNELS`` read at the peaks: the centre's offset inside its
  cell (in cells), the centre height z (m), log(length, width, height / 1 m), sin and cos of
  2 * yaw (the box axis), and
- 2 direction channels ``DIRECTION_CHANNELS``: sin and cos of yaw (the heading).
Decoding takes the axis a = atan2(sin 2yaw, cos 2yaw) / 2 and turns it by pi when the direction
vector d points backwards along it: yaw = a if d . (cos a, sin a) >= 0, else a + pi.
Departure from CenterPoint (sin/cos of yaw alone) and from SECOND (a direction classifier):
where the front and back of a vehicle look alike to a lidar (far, few points), sin/cos of yaw
regresses towards (0, 0) and CenterPoint loses the axis, while sin/cos of 2 yaw (pi-periodic)
keeps it; and a direction classifier has to put a bin boundary somewhere (SECOND: the yaw's
half-plane), where an axis a hair off flips the heading by pi. The direction vector has no
boundary: it only has to point within 90 degrees of the truth (docs/perception.md).

Tensor shapes for the default config (80 m x 80 m x 6 m, voxels 0.2 m, B clouds):
voxels [V, 3] -> backbone [B, 32, 3, 100, 100] -> z folded [B, 96, 100, 100]
-> neck [B, 64, 100, 100] -> heat map [B, 4, 100, 100], regression [B, 8, 100, 100] and
direction [B, 2, 100, 100].
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from perception.backbone import DenseBackbone, SparseBackbone, output_shape
from perception.config import DetectorConfig

REGRESSION_CHANNELS: tuple[str, ...] = (
    "dx", "dy", "z", "log_l", "log_w", "log_h", "sin_2yaw", "cos_2yaw",
)  # fmt: skip
DIRECTION_CHANNELS: tuple[str, ...] = ("sin_yaw", "cos_yaw")
# Initial heat-map bias: sigmoid(-2.19) = 0.1, the focal-loss prior of CenterNet/CenterPoint.
_HEATMAP_PRIOR_BIAS = -2.19


@dataclass(frozen=True)
class HeadOutput:
    """Raw network output for a batch."""

    heatmap: torch.Tensor  # [B, K, H, W] class logits (sigmoid gives the centre score)
    regression: torch.Tensor  # [B, 8, H, W] channels REGRESSION_CHANNELS
    direction: torch.Tensor  # [B, 2, H, W] channels DIRECTION_CHANNELS


def _conv_bn_relu(in_ch: int, out_ch: int, kernel: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(out_ch, eps=1e-3, momentum=0.01),
        nn.ReLU(),
    )


class BEVNeck(nn.Module):
    """Dense 2D convolutions on the BEV map at strides 4 and 8, fused at stride 4."""

    def __init__(self, in_channels: int, channels: int) -> None:
        super().__init__()
        wide = 2 * channels
        self.reduce = _conv_bn_relu(in_channels, channels, 1)
        self.block = nn.Sequential(
            _conv_bn_relu(channels, channels, 3), _conv_bn_relu(channels, channels, 3)
        )
        self.down = nn.Sequential(
            _conv_bn_relu(channels, wide, 3, stride=2),
            _conv_bn_relu(wide, wide, 3),
            _conv_bn_relu(wide, wide, 3),
        )
        self.up = nn.Sequential(
            nn.ConvTranspose2d(wide, channels, 2, stride=2, bias=False),
            nn.BatchNorm2d(channels, eps=1e-3, momentum=0.01),
            nn.ReLU(),
        )
        self.out_channels = 2 * channels

    def forward(self, bev: torch.Tensor) -> torch.Tensor:  # [B, Cin, H, W] -> [B, 2C, H, W]
        x = self.block(self.reduce(bev))  # [B, C, H, W]
        return torch.cat([x, self.up(self.down(x))], dim=1)


class CenterHead(nn.Module):
    """Shared 3x3 convolution, then a heat-map branch and a regression (+ direction) branch."""

    def __init__(self, in_channels: int, channels: int, num_classes: int) -> None:
        super().__init__()
        self.shared = _conv_bn_relu(in_channels, channels, 3)
        self.heatmap = nn.Sequential(
            _conv_bn_relu(channels, channels, 3), nn.Conv2d(channels, num_classes, 1)
        )
        self.regression = nn.Sequential(
            _conv_bn_relu(channels, channels, 3),
            nn.Conv2d(channels, len(REGRESSION_CHANNELS) + len(DIRECTION_CHANNELS), 1),
        )
        nn.init.constant_(self.heatmap[-1].bias, _HEATMAP_PRIOR_BIAS)

    def forward(self, x: torch.Tensor) -> HeadOutput:  # x: [B, C, H, W]
        shared = self.shared(x)
        reg = self.regression(shared)  # [B, 10, H, W]
        n = len(REGRESSION_CHANNELS)
        return HeadOutput(heatmap=self.heatmap(shared), regression=reg[:, :n], direction=reg[:, n:])


class Detector(nn.Module):
    """Voxels of a batch of clouds -> :class:`HeadOutput`.

    Call :func:`perception.detect.detect` for boxes; this module is the trainable network.
    """

    def __init__(self, config: DetectorConfig, down_kernel: int = 2) -> None:
        """``down_kernel`` 3: SECOND's downsampling, the earlier default (speed comparisons
        only; model files always use 2)."""
        super().__init__()
        self.config = config
        backbone_cls = SparseBackbone if config.model.backbone == "sparse" else DenseBackbone
        self.backbone = backbone_cls(config, down_kernel)
        c, d, _, _ = output_shape(config, down_kernel)
        self.neck = BEVNeck(c * d, config.model.bev_channels)
        self.head = CenterHead(
            self.neck.out_channels, config.model.head_channels, len(config.classes)
        )

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def forward(
        self,
        features: torch.Tensor,  # [V, F] float32 voxel features
        coords: torch.Tensor,  # [V, 4] int32 (batch, z, y, x)
        batch_size: int,
    ) -> HeadOutput:
        bev = self.backbone(features, coords, batch_size)  # [B, C*D, H, W]
        return self.head(self.neck(bev))
