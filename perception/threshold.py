"""The default score threshold: the one that maximises F1 on validation data.

A user's detector reports boxes at or above ``postprocess.score_threshold``. The threshold is
chosen, not tuned by hand: on a validation set (never the held-out or real check data), all
detections down to 0.05 are matched per frame and class at BEV IoU >= ``iou_threshold`` (0.5,
greedy by score, ``perception.ap.match_frame``; ground truth with fewer than 5 points and its
matches are ignored). For a candidate threshold t, TP(t) and FP(t) count the matched and
unmatched detections scoring >= t, FN(t) = N_gt - TP(t), and
``F1(t) = 2 TP / (2 TP + FP + FN)``. The threshold is the candidate (every distinct score,
rounded to 0.01) with the highest F1, pooled over the vehicle classes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from perception.bootstrap import frame_records
from perception.config import CLASSES
from perception.evaluate import EvalConfig


@dataclass(frozen=True)
class ThresholdChoice:
    """The chosen threshold and what it gives on the data it was chosen on."""

    threshold: float
    f1: float
    precision: float
    recall: float
    num_gt: int


def choose_threshold(
    detections: list, truths: list, config: EvalConfig, iou_threshold: float = 0.5
) -> ThresholdChoice:
    """The F1-optimal score threshold (module docstring)."""
    scores, true, num_gt = [], [], 0
    for name in CLASSES:
        records = frame_records(detections, truths, config, name, "all", "bev", iou_threshold)
        scores += [r.scores for r in records]
        true += [r.true for r in records]
        num_gt += sum(r.num_gt for r in records)
    s = np.concatenate(scores) if scores else np.zeros(0)
    t = np.concatenate(true) if true else np.zeros(0, dtype=bool)
    candidates = np.unique(np.round(s, 2))
    best = ThresholdChoice(0.5, 0.0, 0.0, 0.0, num_gt)
    for c in candidates:
        above = s >= c
        tp, fp = int(np.sum(t & above)), int(np.sum(~t & above))
        fn = num_gt - tp
        f1 = 2 * tp / max(2 * tp + fp + fn, 1)
        if f1 > best.f1:
            best = ThresholdChoice(float(c), f1, tp / max(tp + fp, 1), tp / max(num_gt, 1), num_gt)
    return best
