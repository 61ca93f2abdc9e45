"""Training-time data augmentation: ground-truth sampling and domain randomisation.

Formulation:
- ground-truth sampling (SECOND, Yan et al. 2018, section 2.4, as OpenPCDet's
  ``DataBaseSampler`` does it): objects with at least ``min_points`` lidar points (their box and
  the points that hit them) are collected from all training frames into an :class:`ObjectBank`.
  A frame is filled up to ``paste_targets`` boxes per class: ``max(0, target - present)``
  objects of the class are drawn uniformly from the bank and put at their original place in
  the (ground-referenced) model frame; a drawn object is dropped when its BEV footprint
  overlaps a box already there or drawn before it (OpenPCDet's collision test), raised or
  lowered onto the local ground of the new frame (the 10th percentile height of the frame's
  points around its footprint, like OpenPCDet's road planes; at most +-1 m), and the frame's
  points inside a pasted box are removed;
- domain randomisation (sensor and mounting), on every frame: with probability
  ``beam_drop_probability`` every second ring is removed (a 64-beam scan becomes a 32-beam
  one), a random ``point_keep_range`` fraction of the points is kept, the cloud is shifted in z
  by N(0, ``height_noise_m``) and tilted by N(0, ``tilt_noise_rad``) about x and y (mounting
  height and angle errors of a user's sensor setup);
- global transforms of points and boxes together: a rotation about z by U(-rotation_rad,
  rotation_rad), a mirror y -> -y with probability ``flip_probability`` (yaw -> -yaw), and a
  scale by U(scale_range) of coordinates and sizes.
All randomness comes from the caller's ``numpy.random.Generator``, so a seed fixes the result.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from scipy.spatial import cKDTree

from geometry.boxes import points_in_box_mask
from perception.config import CLASSES
from perception.errors import PerceptionError
from perception.iou import bev_iou


class AugmentError(PerceptionError):
    """An augmentation setting is out of its bounds."""


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation applied to every training frame."""

    rotation_rad: float = math.pi  # half-width of the global yaw range, in [0, pi]
    flip_probability: float = 0.5  # chance of mirroring y -> -y, in [0, 1]
    scale_range: tuple[float, float] = (0.95, 1.05)  # global scale bounds, 0 < min <= max
    # Boxes per class (CLASSES order) a frame is filled up to by pasting, each >= 0 (0: off).
    paste_targets: tuple[int, ...] = (12, 5, 5, 4)
    beam_drop_probability: float = 0.25  # chance of dropping every second ring, in [0, 1]
    point_keep_range: tuple[float, float] = (0.8, 1.0)  # fraction of points kept, in (0, 1]
    height_noise_m: float = 0.08  # std of the z shift (m), in [0, 1]
    tilt_noise_rad: float = 0.01  # std of the tilt about x and y (rad), in [0, 0.2]

    def __post_init__(self) -> None:
        if not 0.0 <= self.rotation_rad <= math.pi:
            raise AugmentError(f"rotation_rad={self.rotation_rad} must be in [0, pi]")
        if not 0.0 <= self.flip_probability <= 1.0:
            raise AugmentError(f"flip_probability={self.flip_probability} must be in [0, 1]")
        lo, hi = self.scale_range
        if not 0.0 < lo <= hi:
            raise AugmentError(f"scale_range={self.scale_range} must satisfy 0 < min <= max")
        if len(self.paste_targets) != len(CLASSES) or min(self.paste_targets) < 0:
            raise AugmentError(f"paste_targets={self.paste_targets}: {len(CLASSES)} counts >= 0")
        if not 0.0 <= self.beam_drop_probability <= 1.0:
            raise AugmentError(f"beam_drop_probability={self.beam_drop_probability}: in [0, 1]")
        lo, hi = self.point_keep_range
        if not 0.0 < lo <= hi <= 1.0:
            raise AugmentError(f"point_keep_range={self.point_keep_range}: 0 < min <= max <= 1")
        if not 0.0 <= self.height_noise_m <= 1.0:
            raise AugmentError(f"height_noise_m={self.height_noise_m} must be in [0, 1]")
        if not 0.0 <= self.tilt_noise_rad <= 0.2:
            raise AugmentError(f"tilt_noise_rad={self.tilt_noise_rad} must be in [0, 0.2]")

    @classmethod
    def none(cls) -> AugmentConfig:
        """No augmentation at all (identity)."""
        return cls(0.0, 0.0, (1.0, 1.0), (0,) * len(CLASSES), 0.0, (1.0, 1.0), 0.0, 0.0)


@dataclass(frozen=True)
class Sample:
    """The part of a frame that training uses."""

    points: np.ndarray  # [N, C] float32, x, y, z first (ring in column 4 when present)
    boxes: np.ndarray  # [M, 7] float64
    labels: np.ndarray  # [M] int64
    num_points: np.ndarray  # [M] int64 points inside each box
    owner: np.ndarray | None = None  # [N] int64 box each point hit (-1 none), when known

    @classmethod
    def from_frame(cls, frame: Any) -> Sample:
        """From a dataset or cache frame (``points``, ``boxes``, ``labels``, ``num_points``,
        ``point_object``)."""
        owner = getattr(frame, "point_object", None)
        return cls(
            frame.points,
            np.asarray(frame.boxes, dtype=np.float64),
            np.asarray(frame.labels, dtype=np.int64),
            np.asarray(frame.num_points, dtype=np.int64),
            None if owner is None else np.asarray(owner, dtype=np.int64),
        )


class ObjectBank:
    """Objects of the training frames that have at least ``min_points`` lidar points (frames:
    anything with ``points``, ``point_object``, ``boxes``, ``labels``, ``num_points``)."""

    def __init__(self, frames: Iterable[Any], min_points: int) -> None:
        self.points: list[np.ndarray] = []  # each [n, C] float32
        boxes, labels = [], []
        for frame in frames:
            owner = np.asarray(frame.point_object)
            for i in np.flatnonzero(np.asarray(frame.num_points) >= min_points):
                pts = np.asarray(frame.points[owner == i], dtype=np.float32)
                if len(pts) >= min_points:
                    self.points.append(pts)
                    boxes.append(frame.boxes[i])
                    labels.append(frame.labels[i])
        self.boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 7)  # [E, 7]
        self.labels = np.asarray(labels, dtype=np.int64)  # [E]

    def __len__(self) -> int:
        return len(self.labels)

    def draw(self, sample: Sample, rng: np.random.Generator, targets: tuple[int, ...]) -> list[int]:
        """Bank entries to paste into ``sample``: per class, enough to reach its target."""
        picks: list[int] = []
        for c, target in enumerate(targets):
            need = target - int(np.sum(sample.labels == c))
            pool = np.flatnonzero(self.labels == c)
            if need > 0 and len(pool):
                picks += rng.choice(pool, size=min(need, len(pool)), replace=False).tolist()
        return picks

    def paste(self, sample: Sample, rng: np.random.Generator, targets: tuple[int, ...]) -> Sample:
        """``sample`` with bank objects added (module docstring); ``sample`` itself when nothing
        is drawn."""
        picks = self.draw(sample, rng, targets) if len(self) else []
        if not picks:
            return sample
        boxes = sample.boxes
        kept: list[int] = []
        for e in picks:  # OpenPCDet's collision test: against present and earlier drawn boxes
            if len(boxes) and np.any(bev_iou(self.boxes[e][None], boxes) > 0.0):
                continue
            kept.append(e)
            boxes = np.concatenate([boxes, self.boxes[e][None]], axis=0)
        if not kept:
            return sample
        points = sample.points
        owner = sample.owner if sample.owner is not None else np.full(len(points), -1)
        tree = cKDTree(points[:, :2])  # scene points near each pasted box, found once
        remove = np.zeros(len(points), dtype=bool)
        added, added_owner = [], []
        new_boxes = boxes[len(sample.boxes) :].copy()
        for k, e in enumerate(kept):
            box = new_boxes[k]
            near = np.asarray(tree.query_ball_point(box[:2], _reach(box)), dtype=np.int64)
            lift = _ground_lift(points[near, 2], box)
            box[2] += lift
            remove[near[points_in_box_mask(points[near], box)]] = True
            obj = self.points[e].astype(points.dtype)
            obj[:, 2] += lift
            added.append(obj[:, : points.shape[1]])
            added_owner.append(np.full(len(obj), len(sample.boxes) + k))
        return Sample(
            np.concatenate([points[~remove], *added], axis=0),
            np.concatenate([sample.boxes, new_boxes], axis=0),
            np.concatenate([sample.labels, self.labels[kept]]).astype(np.int64),
            np.concatenate([sample.num_points, [len(a) for a in added]]).astype(np.int64),
            np.concatenate([owner[~remove], *added_owner]).astype(np.int64),
        )


def _reach(box: np.ndarray) -> float:
    """Radius (m) around a box centre holding its footprint and the ground around it."""
    return 0.5 * math.hypot(box[3], box[4]) + 1.5


def _ground_lift(near: np.ndarray, box: np.ndarray) -> float:
    """How far to move ``box`` [7] in z to stand on the ground given the heights ``near`` [K]
    of the points within ``_reach`` of it (module docstring); 0 with fewer than 5."""
    if len(near) < 5:
        return 0.0
    ground = float(np.percentile(near, 10))
    return float(np.clip(ground - (box[2] - 0.5 * box[5]), -1.0, 1.0))


def sensor_randomisation(sample: Sample, rng: np.random.Generator, config: AugmentConfig) -> Sample:
    """Ring and point dropout, height shift and tilt (module docstring)."""
    points = sample.points
    keep = np.ones(len(points), dtype=bool)
    if points.shape[1] > 4 and rng.random() < config.beam_drop_probability:
        rings = points[:, 4].astype(np.int64)
        if rings.max(initial=0) >= 31:  # only scans with at least 32 rings
            keep = rings % 2 == int(rng.integers(2))
    keep &= rng.random(len(points)) < rng.uniform(*config.point_keep_range)
    points = points[keep].copy()
    owner, counts = sample.owner, sample.num_points
    if owner is not None:  # recount what is left of each box
        owner = owner[keep]
        counts = np.bincount(owner[owner >= 0], minlength=len(sample.boxes)).astype(np.int64)
    dz = rng.normal(0.0, config.height_noise_m)
    ax, ay = rng.normal(0.0, config.tilt_noise_rad, 2)
    # Small-angle tilt: z += ay * x - ax * y (rotation about y by ay and about x by ax).
    xyz = points[:, :3].astype(np.float64)
    points[:, 2] = (xyz[:, 2] + ay * xyz[:, 0] - ax * xyz[:, 1] + dz).astype(np.float32)
    boxes = sample.boxes.copy()
    boxes[:, 2] += ay * boxes[:, 0] - ax * boxes[:, 1] + dz
    return replace(sample, points=points, boxes=boxes, num_points=counts, owner=owner)


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
    return replace(sample, points=points, boxes=boxes)


def augment(
    sample: Sample, rng: np.random.Generator, config: AugmentConfig, bank: ObjectBank | None
) -> Sample:
    """Pasting (when a bank is given), sensor randomisation, then the global transforms."""
    if bank is not None:
        sample = bank.paste(sample, rng, config.paste_targets)
    sample = sensor_randomisation(sample, rng, config)
    return global_transform(sample, rng, config)
