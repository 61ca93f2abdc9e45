"""Bootstrap confidence intervals of R40 AP over frames.

Frames are the independent units (objects in one frame share a scene and a sensor), so the
bootstrap resamples frames with replacement (Efron's percentile bootstrap): each frame's
matching is done once (``perception.ap.match_frame``, via ``perception.evaluate``), a resample
concatenates the chosen frames' (score, true positive) lists and ground-truth counts, and the AP
of each of ``resamples`` resamples gives the 2.5th and 97.5th percentiles. The point estimate is
the AP of all frames (``perception.evaluate.evaluate``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from perception.ap import IGNORED, TRUE_POSITIVE, average_precision_r40, match_frame
from perception.config import CLASSES
from perception.evaluate import EvalConfig, GroundTruth, class_frame
from perception.postprocess import Detections


@dataclass(frozen=True)
class FrameRecord:
    """One frame's contribution to an AP: scores and TP flags of its counted detections."""

    scores: np.ndarray  # [D'] float
    true: np.ndarray  # [D'] bool
    num_gt: int


def frame_records(
    detections: Sequence[Detections],
    truths: Sequence[GroundTruth],
    config: EvalConfig,
    class_name: str,
    level: str,
    metric: str = "bev",
    threshold: float = 0.7,
) -> list[FrameRecord]:
    """Per-frame records of one (class, level, metric, IoU threshold) AP."""
    ci = CLASSES.index(class_name)
    out = []
    for det, gt in zip(detections, truths, strict=True):
        f = class_frame(det, gt, ci, config)
        skip = f.skip(level)
        m = match_frame(f.ious[metric], f.scores, skip, threshold)
        keep = m.state != IGNORED
        out.append(FrameRecord(f.scores[keep], m.state[keep] == TRUE_POSITIVE, int(np.sum(~skip))))
    return out


def ap_of(records: Sequence[FrameRecord]) -> float:
    """R40 AP of the concatenated records (NaN without ground truth)."""
    if not records:
        return float("nan")
    return average_precision_r40(
        np.concatenate([r.scores for r in records]),
        np.concatenate([r.true for r in records]),
        sum(r.num_gt for r in records),
    )


def bootstrap_ap(
    records: Sequence[FrameRecord], resamples: int = 1000, seed: int = 0
) -> tuple[float, float, float]:
    """(AP, 2.5th, 97.5th percentile) over ``resamples`` frame resamples."""
    ap = ap_of(records)
    if not np.isfinite(ap) or resamples < 1:
        return ap, float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    n = len(records)
    values = [ap_of([records[i] for i in rng.integers(0, n, n)]) for _ in range(resamples)]
    finite = np.asarray([v for v in values if np.isfinite(v)])
    lo, hi = np.percentile(finite, [2.5, 97.5]) if len(finite) else (np.nan, np.nan)
    return ap, float(lo), float(hi)


def bootstrap_median(
    values: np.ndarray, resamples: int = 1000, seed: int = 0
) -> tuple[float, float, float]:
    """(median, 2.5th, 97.5th percentile of the bootstrapped median) of ``values`` [N]."""
    v = np.asarray(values, dtype=np.float64)
    if len(v) == 0:
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    meds = np.median(v[rng.integers(0, len(v), (resamples, len(v)))], axis=1)
    lo, hi = np.percentile(meds, [2.5, 97.5])
    return float(np.median(v)), float(lo), float(hi)
