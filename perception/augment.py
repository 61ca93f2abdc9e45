"""Training-time data augmentation: ground-truth object pasting and global transforms.

Formulation (SECOND, Yan et al. 2018, section 2.4):
- ground-truth sampling: objects (their box and the lidar points that hit them) are collected from
  the training frames into an :class:`ObjectBank`; each frame receives up to
  ``paste_per_frame`` of them, classes drawn uniformly (to balance rare buses and trucks), at
  their original place in the lidar frame, skipped when their BEV footprint overlaps a box
  already there; scene points inside a pasted box are removed;
- global transforms of points and boxes together: a rotation about z by U(-rotation_rad,
  rotation_rad), a mirror y -> -y with probability ``flip_probability`` (yaw -> -yaw), and a
  scale by U(scale_range) of coordinates and sizes.
All randomness comes from the caller's ``numpy.random.Generator``, so a seed fixes the result.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from geometry.boxes import points_in_box_mask
from perception.dataset import Frame
from perception.errors import PerceptionError
from perception.iou import bev_iou


class AugmentError(PerceptionError):
    """An augmentation setting is out of its bounds."""


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation applied to every training frame."""

    rotation_rad: float = math.pi / 4  # half-width of the global yaw range, in [0, pi]
    flip_probability: float = 0.5  # chance of mirroring y -> -y, in [0, 1]
    scale_range: tuple[float, float] = (0.95, 1.05)  # global scale bounds, 0 < min <= max
    paste_per_frame: int = 6  # ground-truth objects pasted per frame, >= 0 (0: off)

    def __post_init__(self) -> None:
        if not 0.0 <= self.rotation_rad <= math.pi:
            raise AugmentError(f"rotation_rad={self.rotation_rad} must be in [0, pi]")
        if not 0.0 <= self.flip_probability <= 1.0:
            raise AugmentError(f"flip_probability={self.flip_probability} must be in [0, 1]")
        lo, hi = self.scale_range
        if not 0.0 < lo <= hi:
            raise AugmentError(f"scale_range={self.scale_range} must satisfy 0 < min <= max")
        if self.paste_per_frame < 0:
            raise AugmentError(f"paste_per_frame={self.paste_per_frame} must be >= 0")


@dataclass(frozen=True)
class Sample:
    """The part of a frame that training uses."""

    points: np.ndarray  # [N, C] float32, x, y, z first
    boxes: np.ndarray  # [M, 7] float64
    labels: np.ndarray  # [M] int64
    num_points: np.ndarray  # [M] int64 points inside each box

    @classmethod
    def from_frame(cls, frame: Frame) -> Sample:
        return cls(
            frame.points,
            frame.boxes.astype(np.float64),
            frame.labels.astype(np.int64),
            frame.num_points.astype(np.int64),
        )


class ObjectBank:
    """Objects of the training frames that have at least ``min_points`` lidar points."""

    def __init__(self, frames: Iterable[Frame], min_points: int) -> None:
        self.points: list[np.ndarray] = []  # each [n, C] float32
        boxes, labels = [], []
        for frame in frames:
            for i in np.flatnonzero(frame.num_points >= min_points):
                self.points.append(frame.points[frame.point_object == i])
                boxes.append(frame.boxes[i])
                labels.append(frame.labels[i])
        self.boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 7)  # [E, 7]
        self.labels = np.asarray(labels, dtype=np.int64)  # [E]

    def __len__(self) -> int:
        return len(self.labels)

    def paste(self, sample: Sample, rng: np.random.Generator, count: int) -> Sample:
        """``sample`` with up to ``count`` non-overlapping bank objects added."""
        if count == 0 or len(self) == 0:
            return sample
        classes = np.unique(self.labels)
        picks = [
            rng.choice(np.flatnonzero(self.labels == c)) for c in rng.choice(classes, size=count)
        ]
        points, boxes = sample.points, sample.boxes
        labels, counts = list(sample.labels), list(sample.num_points)
        added: list[np.ndarray] = []
        for e in dict.fromkeys(picks):  # unique, in draw order
            box = self.boxes[e]
            if len(boxes) and np.any(bev_iou(box[None], boxes) > 0.0):
                continue
            points = points[~points_in_box_mask(points, box)]
            added.append(self.points[e].astype(points.dtype))
            boxes = np.concatenate([boxes, box[None]], axis=0)
            labels.append(self.labels[e])
            counts.append(len(self.points[e]))
        return Sample(
            np.concatenate([points, *added], axis=0),
            boxes,
            np.asarray(labels, dtype=np.int64),
            np.asarray(counts, dtype=np.int64),
        )


def global_transform(sample: Sample, rng: np.random.Generator, config: AugmentConfig) -> Sample:
    """Random rotation about z, mirror and scale of points and boxes together."""
    angle = rng.uniform(-config.rotation_rad, config.rotation_rad)
    flip = rng.random() < config.flip_probability
    scale = rng.uniform(*config.scale_range)
    c, s = math.cos(angle), math.sin(angle)
    rot = np.array([[c, -s], [s, c]])
    mirror = np.array([1.0, -1.0 if flip else 1.0])
    points = sample.points.copy()
    points[:, :2] = (points[:, :2] * mirror) @ rot.T.astype(np.float32)
    points[:, :3] *= np.float32(scale)
    boxes = sample.boxes.copy()
    boxes[:, :2] = (boxes[:, :2] * mirror) @ rot.T
    boxes[:, :6] *= scale
    boxes[:, 6] = (-boxes[:, 6] if flip else boxes[:, 6]) + angle
    return Sample(points, boxes, sample.labels, sample.num_points)


def augment(
    sample: Sample, rng: np.random.Generator, config: AugmentConfig, bank: ObjectBank | None
) -> Sample:
    """Pasting (when a bank is given) followed by the global transforms."""
    if bank is not None:
        sample = bank.paste(sample, rng, config.paste_per_frame)
    return global_transform(sample, rng, config)
