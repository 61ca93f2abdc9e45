"""CenterPoint training targets: Gaussian centre heat maps and regression at the centre cells.

Formulation (CenterNet, Zhou et al. 2019; CenterPoint, Yin et al. 2021): a box with BEV centre
(x, y) falls in cell (c, r) = floor(((x - x_min) / cell_x, (y - y_min) / cell_y)). Its class
channel of the heat map gets exp(-((c' - c)^2 + (r' - r)^2) / (2 sigma^2)) around that cell
(element-wise max with other boxes), sigma = (2 R + 1) / 6 with R the CenterNet Gaussian radius
for the box's length x width in cells at ``gaussian_overlap``, R >= ``min_radius_cells``.
The regression target at the centre cell is (dx, dy, z, log l, log w, log h, sin 2yaw, cos 2yaw),
with (dx, dy) the centre's offset inside the cell, in cells; the direction target is
(sin yaw, cos yaw) (``perception.model`` explains why yaw is split this way).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from perception.config import DetectorConfig
from perception.errors import PerceptionError
from perception.model import DIRECTION_CHANNELS, REGRESSION_CHANNELS


class TargetError(PerceptionError):
    """A target setting is out of its bounds."""


@dataclass(frozen=True)
class TargetConfig:
    """How ground-truth boxes become heat maps."""

    # Minimum IoU a corner-shifted box keeps with the truth (CenterNet radius), in (0, 1).
    gaussian_overlap: float = 0.1
    # Smallest Gaussian radius, cells (CenterPoint uses 2), >= 0.
    min_radius_cells: int = 2
    # Boxes per frame that get a regression target, >= 1 (the rest only get heat-map peaks).
    max_objects: int = 128

    def __post_init__(self) -> None:
        if not 0.0 < self.gaussian_overlap < 1.0:
            raise TargetError(f"gaussian_overlap={self.gaussian_overlap} must be in (0, 1)")
        if self.min_radius_cells < 0:
            raise TargetError(f"min_radius_cells={self.min_radius_cells} must be >= 0")
        if self.max_objects < 1:
            raise TargetError(f"max_objects={self.max_objects} must be >= 1")


@dataclass(frozen=True)
class Targets:
    """Training targets of one frame (H, W: BEV rows and columns; M: max_objects)."""

    heatmap: np.ndarray  # [K, H, W] float32 in [0, 1], 1 at centre cells
    indices: np.ndarray  # [M] int64: row * W + column of each object's centre cell
    mask: np.ndarray  # [M] bool: slot holds an object
    regression: np.ndarray  # [M, 8] float32, channels REGRESSION_CHANNELS
    direction: np.ndarray  # [M, 2] float32, channels DIRECTION_CHANNELS


def gaussian_radius(length_cells: float, width_cells: float, overlap: float) -> float:
    """CenterNet's radius (as in CenterPoint's code) of the heat-map Gaussian of a box."""
    size_sum, area = length_cells + width_cells, length_cells * width_cells
    r1 = (size_sum + np.sqrt(size_sum**2 - 4 * area * (1 - overlap) / (1 + overlap))) / 2
    r2 = (2 * size_sum + np.sqrt(4 * size_sum**2 - 16 * (1 - overlap) * area)) / 2
    b3 = -2 * overlap * size_sum
    r3 = (b3 + np.sqrt(b3**2 - 16 * overlap * (overlap - 1) * area)) / 2
    return float(min(r1, r2, r3))


def _draw_gaussian(channel: np.ndarray, col: int, row: int, radius: int) -> None:
    """Max-blends a Gaussian of ``radius`` cells centred at (col, row) into channel [H, W]."""
    sigma = (2 * radius + 1) / 6.0
    h, w = channel.shape
    r0, r1 = max(row - radius, 0), min(row + radius + 1, h)
    c0, c1 = max(col - radius, 0), min(col + radius + 1, w)
    dy = np.arange(r0, r1)[:, None] - row
    dx = np.arange(c0, c1)[None, :] - col
    patch = np.exp(-(dx * dx + dy * dy) / (2 * sigma * sigma))
    np.maximum(channel[r0:r1, c0:c1], patch, out=channel[r0:r1, c0:c1])


def build_targets(
    boxes: np.ndarray,  # [M, 7]
    labels: np.ndarray,  # [M] class indices
    config: DetectorConfig,
    target: TargetConfig,
) -> Targets:
    """Targets of one frame; boxes whose centre is outside the BEV grid are skipped."""
    h, w = config.bev_shape
    cell_x, cell_y = config.bev_cell_m
    x0, y0 = config.voxel.point_range_m[:2]
    heatmap = np.zeros((len(config.classes), h, w), dtype=np.float32)
    indices = np.zeros(target.max_objects, dtype=np.int64)
    mask = np.zeros(target.max_objects, dtype=bool)
    regression = np.zeros((target.max_objects, len(REGRESSION_CHANNELS)), dtype=np.float32)
    direction = np.zeros((target.max_objects, len(DIRECTION_CHANNELS)), dtype=np.float32)
    slot = 0
    for box, label in zip(np.asarray(boxes, np.float64), labels, strict=True):
        fx, fy = (box[0] - x0) / cell_x, (box[1] - y0) / cell_y
        col, row = int(np.floor(fx)), int(np.floor(fy))
        if not (0 <= col < w and 0 <= row < h):
            continue
        radius = gaussian_radius(box[3] / cell_x, box[4] / cell_y, target.gaussian_overlap)
        _draw_gaussian(heatmap[label], col, row, max(target.min_radius_cells, int(radius)))
        if slot < target.max_objects:
            indices[slot], mask[slot] = row * w + col, True
            sin2, cos2 = np.sin(2 * box[6]), np.cos(2 * box[6])
            regression[slot] = [fx - col, fy - row, box[2], *np.log(box[3:6]), sin2, cos2]
            direction[slot] = [np.sin(box[6]), np.cos(box[6])]
            slot += 1
    return Targets(heatmap, indices, mask, regression, direction)
