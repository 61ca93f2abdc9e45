"""Detector evaluation: R40 AP for BEV and 3D IoU per class and occlusion level, box errors.

Definitions (docs/perception.md, "Evaluation"):
- AP: ``perception.ap`` (R40, greedy matching), with exact rotated IoU from ``perception.iou``,
  for ``metrics`` ("bev", "3d") x ``iou_thresholds`` (0.5, 0.7) x class x level.
- Ignored ground truth (detections on them count neither way): boxes with fewer than
  ``min_points_per_box`` lidar points (5; nothing to detect them from), boxes whose centre is
  outside the detector's x/y range, and, for a per-level AP, boxes of the other levels.
- Occlusion levels from the simulator's ``occlusion`` (blocked fraction of rays toward the box):
  0 ("low") < 0.3 <= 1 ("partial") <= 0.7 < 2 ("heavy"); level "all" keeps every box.
- Box errors over true positives at BEV IoU >= 0.5, level "all": centre distance (m, 3D), absolute
  wrapped heading difference (rad, in [0, pi]), the same modulo pi (axis error, in [0, pi/2]:
  a box turned by pi is the same box), absolute length/width/height differences (m); means, and
  for the heading also the median and the share within ``HEADING_OK_RAD``. Also signed, in the
  true box's frame (where a box is off, not only how much): the centre offset along and across
  the true heading, detected minus true length and width, the signed axis error.
- Detections down to ``score_threshold`` (0.05, below a model's own threshold) trace the
  precision-recall curve; each frame's cloud goes in with its dataset's sensor setup.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from tqdm import tqdm

from geometry.transforms import wrap_angle
from perception.ap import (
    IGNORED,
    TRUE_POSITIVE,
    average_precision_r40,
    match_frame,
    occlusion_levels,
)
from perception.config import CLASSES, DetectorConfig
from perception.dataset import Frame, SimDataset
from perception.detect import detect
from perception.errors import PerceptionError
from perception.iou import bev_iou, iou_3d
from perception.model import Detector
from perception.postprocess import Detections

LEVELS: tuple[str, ...] = ("all", "0", "1", "2")
ERROR_KEYS: tuple[str, ...] = (
    "center_m",
    "yaw_rad",
    "yaw_axis_rad",
    "length_m",
    "width_m",
    "height_m",
    # signed, in the true box's frame: where a box is off, not only how much
    "along_m",  # centre offset along the true heading
    "across_m",  # centre offset across it
    "length_signed_m",  # detected minus true
    "width_signed_m",
    "yaw_axis_signed_rad",  # axis error with its sign, in (-pi/2, pi/2]
)  # means over matched boxes, see the module docstring
_IOU_FUNCS = {"bev": bev_iou, "3d": iou_3d}
HEADING_OK_RAD = 0.3  # a heading error below this counts as right (docs/perception.md)


class EvaluateError(PerceptionError):
    """Evaluation inputs are inconsistent or a setting is out of bounds."""


@dataclass(frozen=True)
class EvalConfig:
    """What the evaluation counts."""

    iou_thresholds: tuple[float, ...] = (0.5, 0.7)  # each in (0, 1]
    metrics: tuple[str, ...] = ("bev", "3d")  # subset of ("bev", "3d")
    min_points_per_box: int = 5  # boxes with fewer lidar points are ignored, >= 0
    occlusion_bins: tuple[float, float] = (0.3, 0.7)  # level edges, 0 <= low <= high <= 1
    # Ground truth centred outside (x_min, y_min, x_max, y_max) m is ignored; None keeps all.
    xy_range_m: tuple[float, float, float, float] | None = None
    score_threshold: float = 0.05  # lowest detection score evaluated, in [0, 1)

    def __post_init__(self) -> None:
        if not self.iou_thresholds or not all(0 < t <= 1 for t in self.iou_thresholds):
            raise EvaluateError(f"iou_thresholds={self.iou_thresholds} must be in (0, 1]")
        if not self.metrics or not set(self.metrics) <= set(_IOU_FUNCS):
            raise EvaluateError(f"metrics={self.metrics} must be a subset of {tuple(_IOU_FUNCS)}")
        if self.min_points_per_box < 0:
            raise EvaluateError(f"min_points_per_box={self.min_points_per_box} must be >= 0")
        lo, hi = self.occlusion_bins
        if not 0.0 <= lo <= hi <= 1.0:
            raise EvaluateError(f"occlusion_bins={self.occlusion_bins} must be 0<=low<=high<=1")


@dataclass(frozen=True)
class GroundTruth:
    """Labelled boxes of one frame."""

    boxes: np.ndarray  # [M, 7]
    labels: np.ndarray  # [M] class indices
    occlusion: np.ndarray  # [M] in [0, 1]
    num_points: np.ndarray  # [M] lidar points in each box

    @classmethod
    def from_frame(cls, frame: Frame) -> GroundTruth:
        return cls(frame.boxes, frame.labels, frame.occlusion, frame.num_points)


@dataclass
class EvalResult:
    """AP per (metric, IoU threshold, class, level) and box errors per class."""

    ap: dict[tuple[str, float, str, str], float] = field(default_factory=dict)
    num_gt: dict[tuple[str, str], int] = field(default_factory=dict)  # (class, level) -> boxes
    errors: dict[str, dict[str, float]] = field(default_factory=dict)  # class -> "matched" + means
    pairs: dict[str, np.ndarray] = field(default_factory=dict)  # class -> [P, K] ERROR_KEYS

    def to_json(self) -> dict[str, Any]:
        def num(v: float) -> float | None:
            return None if not np.isfinite(v) else round(float(v), 4)

        return {
            "ap": [
                {
                    "metric": m,
                    "iou": t,
                    "class": c,
                    "level": lv,
                    "ap": num(v),
                    "num_gt": self.num_gt[(c, lv)],
                }
                for (m, t, c, lv), v in self.ap.items()
            ],
            "errors": {c: {k: num(v) for k, v in e.items()} for c, e in self.errors.items()},
        }


@dataclass(frozen=True)
class _ClassFrame:
    """One frame's detections and ground truth of one class."""

    ious: dict[str, np.ndarray]  # metric -> [D, G]
    scores: np.ndarray  # [D]
    det_boxes: np.ndarray  # [D, 7]
    gt_boxes: np.ndarray  # [G, 7]
    levels: np.ndarray  # [G] occlusion level
    ignored: np.ndarray  # [G] bool, ignored at every level

    def skip(self, level: str) -> np.ndarray:  # [G] bool: ignored when evaluating ``level``
        return self.ignored if level == "all" else self.ignored | (self.levels != int(level))


def class_frame(
    det: Detections, gt: GroundTruth, class_index: int, config: EvalConfig
) -> _ClassFrame:
    d, g = det.labels == class_index, np.asarray(gt.labels) == class_index
    boxes_d, boxes_g = det.boxes[d], np.asarray(gt.boxes, np.float64)[g]
    ignored = np.asarray(gt.num_points)[g] < config.min_points_per_box
    if config.xy_range_m is not None:
        x0, y0, x1, y1 = config.xy_range_m
        cx, cy = boxes_g[:, 0], boxes_g[:, 1]
        ignored |= (cx < x0) | (cx >= x1) | (cy < y0) | (cy >= y1)
    return _ClassFrame(
        ious={m: _IOU_FUNCS[m](boxes_d, boxes_g) for m in {*config.metrics, "bev"}},
        scores=det.scores[d],
        det_boxes=boxes_d,
        gt_boxes=boxes_g,
        levels=occlusion_levels(np.asarray(gt.occlusion)[g], config.occlusion_bins),
        ignored=ignored,
    )


def _pooled_ap(
    frames: list[_ClassFrame], metric: str, threshold: float, level: str, num_gt: int
) -> tuple[float, np.ndarray]:
    """AP over all frames and the box errors [P, 5] of its true positives."""
    scores, true, errors = [], [], []
    for f in frames:
        m = match_frame(f.ious[metric], f.scores, f.skip(level), threshold)
        keep = m.state != IGNORED
        tp = m.state == TRUE_POSITIVE
        scores.append(f.scores[keep])
        true.append(tp[keep])
        errors.append(_errors(f.det_boxes[tp], f.gt_boxes[m.matched_gt[tp]]))
    ap = average_precision_r40(np.concatenate(scores), np.concatenate(true), num_gt)
    return ap, np.concatenate(errors)


def _errors(det: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Per-pair [P, K] in ERROR_KEYS order."""
    offset = det[:, :3] - gt[:, :3]
    centre = np.linalg.norm(offset, axis=1)
    signed_yaw = wrap_angle(det[:, 6] - gt[:, 6])
    yaw = np.abs(signed_yaw)
    cos, sin = np.cos(gt[:, 6]), np.sin(gt[:, 6])
    along = offset[:, 0] * cos + offset[:, 1] * sin
    across = -offset[:, 0] * sin + offset[:, 1] * cos
    axis_signed = wrap_angle(2.0 * signed_yaw) / 2.0  # the heading modulo pi, signed
    size = det[:, 3:6] - gt[:, 3:6]
    return np.column_stack(
        [centre, yaw, np.minimum(yaw, np.pi - yaw), np.abs(size), along, across, size[:, 0],
         size[:, 1], axis_signed]
    )  # fmt: skip


def evaluate(
    detections: Sequence[Detections], truths: Sequence[GroundTruth], config: EvalConfig
) -> EvalResult:
    """AP and box errors of per-frame detections against per-frame ground truth.

    Raises:
        EvaluateError: the two sequences differ in length.
    """
    if len(detections) != len(truths):
        raise EvaluateError(f"{len(detections)} detection sets for {len(truths)} frames")
    result = EvalResult()
    for ci, name in enumerate(CLASSES):
        frames = [class_frame(d, g, ci, config) for d, g in zip(detections, truths, strict=True)]
        for level in LEVELS:
            num_gt = int(sum(np.sum(~f.skip(level)) for f in frames))
            result.num_gt[(name, level)] = num_gt
            for metric in config.metrics:
                for thr in config.iou_thresholds:
                    ap, _ = _pooled_ap(frames, metric, thr, level, num_gt)
                    result.ap[(metric, thr, name, level)] = ap
        _, pairs = _pooled_ap(frames, "bev", 0.5, "all", result.num_gt[(name, "all")])
        means = pairs.mean(axis=0) if len(pairs) else np.full(len(ERROR_KEYS), np.nan)
        heading = pairs[:, ERROR_KEYS.index("yaw_rad")]
        result.pairs[name] = pairs
        result.errors[name] = {
            "matched": float(len(pairs)),
            **dict(zip(ERROR_KEYS, means.tolist(), strict=True)),
            "yaw_median_rad": float(np.median(heading)) if len(pairs) else float("nan"),
            "yaw_within_0.3rad": float(np.mean(heading < HEADING_OK_RAD))
            if len(pairs)
            else float("nan"),
        }
    return result


def model_eval_config(config: EvalConfig, detector: DetectorConfig) -> EvalConfig:
    """``config`` ignoring ground truth outside the detector's x/y range."""
    r = detector.voxel.point_range_m
    return replace(config, xy_range_m=(r[0], r[1], r[3], r[4]))


def evaluate_model(
    model: Detector,
    dataset: SimDataset,
    config: EvalConfig,
    batch_size: int = 4,
    progress: bool = False,
    deskew: bool = True,
) -> EvalResult:
    """Runs ``model`` on every frame of ``dataset`` and evaluates it (ground truth outside the
    model's x/y range is ignored). With ``deskew`` each frame taken in motion is deskewed with
    the motion it records (``SimDataset.scan_motion``: what the robot's odometry gives)."""
    detections: list[Detections] = []
    truths: list[GroundTruth] = []
    starts = range(0, len(dataset), batch_size)
    with evaluation_threshold(model, config.score_threshold):
        for start in tqdm(starts, desc="evaluate", unit="batch", disable=not progress):
            frames = [dataset[i] for i in range(start, min(start + batch_size, len(dataset)))]
            setups = [dataset.setup(f) for f in frames]
            motions = [dataset.scan_motion(f) if deskew else None for f in frames]
            detections += detect(model, [f.points for f in frames], setups, motions=motions)
            truths += [GroundTruth.from_frame(f) for f in frames]
    return evaluate(detections, truths, model_eval_config(config, model.config))


@contextmanager
def evaluation_threshold(model: Detector, score_threshold: float) -> Iterator[None]:
    """Runs the block with the model's score threshold set to ``score_threshold``."""
    saved = model.config
    post = replace(saved.postprocess, score_threshold=score_threshold)
    model.config = replace(saved, postprocess=post)
    try:
        yield
    finally:
        model.config = saved
