"""From the centre head's maps to boxes: peak finding, box decoding and rotated NMS.

Formulation (CenterPoint, Yin et al. 2021): score = sigmoid(heat map); a cell is a peak when it
equals the max of its ``peak_pool_cells`` x ``peak_pool_cells`` neighbourhood (max-pool NMS).
The top ``max_detections`` peaks over all classes are decoded at their cell (row r, column c):
x = x_min + (c + dx) * cell_x, y = y_min + (r + dy) * cell_y, z = z, (l, w, h) = exp(log sizes),
yaw = a if the direction vector d = (cos, sin) of yaw points along (cos a, sin a) (d . (cos a,
sin a) >= 0) else a + pi, with a = atan2(sin 2yaw, cos 2yaw) / 2.
Peaks below ``score_threshold`` are dropped; optionally a class-agnostic greedy NMS on exact
rotated BEV IoU (``perception.iou``) removes overlapping boxes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from perception.config import CLASSES, DetectorConfig
from perception.iou import bev_iou
from perception.losses import gather_cells
from perception.model import HeadOutput

# exp() of a log size is clamped to [e^-5, e^5] m: a wild untrained output stays a valid box.
_LOG_SIZE_LIMIT = 5.0


@dataclass(frozen=True)
class Detections:
    """Boxes found in one cloud, sorted by descending score, in the cloud's (lidar) frame."""

    boxes: np.ndarray  # [K, 7] float64: x, y, z (centre, m), length, width, height (m), yaw (rad)
    labels: np.ndarray  # [K] int64: index into CLASSES
    scores: np.ndarray  # [K] float32: in [0, 1]

    def __len__(self) -> int:
        return len(self.labels)

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 7)), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32))

    @property
    def class_names(self) -> list[str]:
        return [CLASSES[i] for i in self.labels]

    def to_json(self) -> list[dict[str, Any]]:
        """One dict per box: class, score, center_m, size_m, yaw_rad."""
        return [
            {
                "class": CLASSES[int(label)],
                "score": round(float(score), 4),
                "center_m": [round(float(v), 3) for v in box[:3]],
                "size_m": [round(float(v), 3) for v in box[3:6]],
                "yaw_rad": round(float(box[6]), 4),
            }
            for box, label, score in zip(self.boxes, self.labels, self.scores, strict=True)
        ]


def rotated_nms(
    boxes: np.ndarray,  # [K, 7]
    scores: np.ndarray,  # [K]
    iou_threshold: float,
) -> np.ndarray:  # [K'] int64 kept indices, by descending score
    """Greedy NMS on exact rotated BEV IoU: a box is dropped when it overlaps a kept one by
    more than ``iou_threshold``."""
    order = np.argsort(-scores, kind="stable")
    iou = bev_iou(boxes[order], boxes[order])  # [K, K]
    suppressed = np.zeros(len(order), dtype=bool)
    keep = []
    for i in range(len(order)):
        if suppressed[i]:
            continue
        keep.append(order[i])
        suppressed |= iou[i] > iou_threshold
    return np.asarray(keep, dtype=np.int64)


def decode(output: HeadOutput, config: DetectorConfig) -> list[Detections]:
    """Boxes of every cloud of a batch from the raw head output."""
    post = config.postprocess
    heat = torch.sigmoid(output.heatmap.detach().float())  # [B, K, H, W]
    b, k, h, w = heat.shape
    peak = F.max_pool2d(heat, post.peak_pool_cells, stride=1, padding=post.peak_pool_cells // 2)
    heat = torch.where(heat == peak, heat, -1.0)  # non-peaks fall below any threshold >= 0
    top = min(post.max_detections, k * h * w)
    scores, flat = torch.topk(heat.reshape(b, -1), top)  # [B, T]
    labels, cell = flat // (h * w), flat % (h * w)
    reg = gather_cells(output.regression.detach().float(), cell).transpose(1, 2)  # [B, 8, T]
    direction = gather_cells(output.direction.detach().float(), cell)  # [B, T, 2] sin, cos
    axis = torch.atan2(reg[:, 6], reg[:, 7]) / 2  # [B, T] in [-pi/2, pi/2]
    forward = direction[..., 1] * torch.cos(axis) + direction[..., 0] * torch.sin(axis) >= 0
    yaw = torch.remainder(axis + torch.pi * (~forward) + torch.pi, 2 * torch.pi) - torch.pi
    rows, cols = (cell // w).float(), (cell % w).float()
    cell_x, cell_y = config.bev_cell_m
    x0, y0 = config.voxel.point_range_m[0], config.voxel.point_range_m[1]
    boxes = torch.stack(
        [
            x0 + (cols + reg[:, 0]) * cell_x,
            y0 + (rows + reg[:, 1]) * cell_y,
            reg[:, 2],
            *torch.exp(reg[:, 3:6].clamp(-_LOG_SIZE_LIMIT, _LOG_SIZE_LIMIT)).unbind(1),
            yaw,
        ],
        dim=2,
    )  # [B, T, 7]
    result = []
    for i in range(b):
        keep = scores[i] >= post.score_threshold
        det = Detections(
            boxes=boxes[i][keep].cpu().numpy().astype(np.float64),
            labels=labels[i][keep].cpu().numpy().astype(np.int64),
            scores=scores[i][keep].cpu().numpy().astype(np.float32),
        )
        if post.nms_iou_threshold is not None and len(det) > 1:
            idx = rotated_nms(det.boxes, det.scores, post.nms_iou_threshold)
            det = Detections(det.boxes[idx], det.labels[idx], det.scores[idx])
        result.append(det)
    return result
