"""Average precision with 40 recall points (KITTI R40) and the matching it rests on.

Formulation (KITTI 3D object benchmark since 2019; Simonelli et al., ICCV 2019, "R40"):
- Matching, per frame and class: detections in descending score order each take the unmatched
  non-ignored ground-truth box of highest IoU >= threshold (true positive). A detection whose
  only candidates are ignored boxes (or that overlaps an ignored box by >= threshold after its
  non-ignored candidates are taken) is ignored: neither true nor false positive. Any other
  detection, a duplicate on an already matched box included, is a false positive.
  (Greedy score-ordered matching as in PASCAL VOC/COCO; KITTI's own code matches per box.)
- Over all frames, detections sorted by score give precision P_i and recall R_i = TP_i / N_gt
  (N_gt: non-ignored boxes). Interpolated precision p(r) = max{P_i : R_i >= r} (0 if none);
  AP = (1/40) * sum_{r in {1/40, 2/40, ..., 1}} p(r). AP is NaN when N_gt = 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from perception.errors import PerceptionError

RECALL_POINTS = np.arange(1, 41) / 40.0  # [40]

TRUE_POSITIVE, FALSE_POSITIVE, IGNORED = 1, 0, -1


class APError(PerceptionError):
    """Inconsistent inputs to the matching or AP computation."""


@dataclass(frozen=True)
class FrameMatch:
    """Outcome of matching one frame's detections of one class."""

    state: np.ndarray  # [D] int8: TRUE_POSITIVE, FALSE_POSITIVE or IGNORED, per detection
    matched_gt: np.ndarray  # [D] int64: index of the matched box for true positives, else -1


def match_frame(
    iou: np.ndarray,  # [D, G] IoU of detections (rows) with ground-truth boxes (columns)
    scores: np.ndarray,  # [D]
    gt_ignored: np.ndarray,  # [G] bool
    threshold: float,
) -> FrameMatch:
    """Greedy score-ordered matching (see the module docstring)."""
    d, g = iou.shape
    if len(scores) != d or len(gt_ignored) != g:
        raise APError(
            f"iou is {list(iou.shape)} but there are {len(scores)} scores and "
            f"{len(gt_ignored)} ground-truth flags"
        )
    state = np.full(d, FALSE_POSITIVE, dtype=np.int8)
    matched = np.full(d, -1, dtype=np.int64)
    taken = np.zeros(g, dtype=bool)
    for i in np.argsort(-np.asarray(scores), kind="stable"):
        over = iou[i] >= threshold  # [G]
        free = over & ~taken & ~gt_ignored
        if np.any(free):
            j = int(np.argmax(np.where(free, iou[i], -1.0)))
            taken[j] = True
            state[i], matched[i] = TRUE_POSITIVE, j
        elif np.any(over & gt_ignored):
            state[i] = IGNORED
    return FrameMatch(state, matched)


def average_precision_r40(
    scores: np.ndarray,  # [D] scores of all non-ignored detections of all frames
    is_true: np.ndarray,  # [D] bool, True for true positives
    num_gt: int,
) -> float:
    """R40 AP (see the module docstring); NaN when ``num_gt`` is 0."""
    if len(scores) != len(is_true):
        raise APError(f"{len(scores)} scores but {len(is_true)} true-positive flags")
    if num_gt == 0:
        return float("nan")
    if len(scores) == 0:
        return 0.0
    order = np.argsort(-np.asarray(scores), kind="stable")
    tp = np.cumsum(np.asarray(is_true, dtype=bool)[order])  # [D]
    precision = tp / np.arange(1, len(order) + 1)
    recall = tp / num_gt
    # Interpolated precision: best precision at this recall or beyond (suffix maximum).
    best_after = np.maximum.accumulate(precision[::-1])[::-1]  # [D]
    # For each recall point, the first detection reaching it; past the end -> precision 0.
    first = np.searchsorted(recall, RECALL_POINTS - 1e-12, side="left")  # [40]
    padded = np.append(best_after, 0.0)
    return float(padded[np.minimum(first, len(order))].mean())


def occlusion_levels(occlusion: np.ndarray, bins: tuple[float, float]) -> np.ndarray:
    """Level [M] int64 of each box: 0 if occlusion < bins[0], 2 if > bins[1], else 1."""
    occ = np.asarray(occlusion, dtype=np.float64)
    return np.where(occ < bins[0], 0, np.where(occ > bins[1], 2, 1)).astype(np.int64)
