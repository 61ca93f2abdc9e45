"""R40 AP, matching and the evaluation tables on hand-made detections."""

from __future__ import annotations

import math

import numpy as np
import pytest

from perception.ap import (
    FALSE_POSITIVE,
    IGNORED,
    TRUE_POSITIVE,
    average_precision_r40,
    match_frame,
    occlusion_levels,
)
from perception.evaluate import EvalConfig, EvaluateError, GroundTruth, evaluate
from perception.postprocess import Detections

# AP here is an average of 40 exact fractions; float sums are exact to ~1e-15.
TOL = 1e-12

CAR = 0


def cars(n: int, spacing_m: float = 10.0) -> np.ndarray:
    """n car boxes [n, 7] in a row along x."""
    b = np.zeros((n, 7))
    b[:, 0] = np.arange(n) * spacing_m
    b[:, 3:6] = (4.5, 1.8, 1.5)
    return b


def truth(boxes: np.ndarray, occlusion=None, num_points=None) -> GroundTruth:
    n = len(boxes)
    return GroundTruth(
        boxes,
        np.full(n, CAR),
        np.zeros(n) if occlusion is None else np.asarray(occlusion),
        np.full(n, 100) if num_points is None else np.asarray(num_points),
    )


def found(boxes: np.ndarray, scores=None) -> Detections:
    n = len(boxes)
    s = np.linspace(0.9, 0.5, n) if scores is None else np.asarray(scores)
    return Detections(boxes, np.full(n, CAR, dtype=np.int64), s.astype(np.float32))


def car_ap(
    dets: list[Detections], gts: list[GroundTruth], metric="bev", iou=0.7, level="all"
) -> float:
    return evaluate(dets, gts, EvalConfig()).ap[(metric, iou, "car", level)]


@pytest.mark.parametrize(
    ("is_true", "num_gt", "expected"),
    [
        ([True] * 4, 4, 1.0),
        ([False] * 4, 4, 0.0),
        ([True, True], 4, 0.5),  # recall capped at 0.5: 20 of 40 recall points reached
        ([True, False, True], 2, (20 * 1.0 + 20 * 2 / 3) / 40),  # FP ranked between the TPs
        ([False, True], 1, 0.5),  # precision 1/2 at full recall
        ([], 3, 0.0),
    ],
)
def test_average_precision_r40_hand_computed(is_true, num_gt, expected):
    scores = np.linspace(1.0, 0.1, len(is_true))
    assert average_precision_r40(scores, np.array(is_true, bool), num_gt) == pytest.approx(
        expected, abs=TOL
    )


def test_average_precision_is_nan_without_ground_truth():
    assert math.isnan(average_precision_r40(np.array([0.5]), np.array([False]), 0))


def test_match_frame_marks_duplicates_false_and_ignored_boxes_neutral():
    iou = np.array([[0.9, 0.0], [0.8, 0.0], [0.0, 0.9], [0.1, 0.0]])
    m = match_frame(iou, np.array([0.9, 0.8, 0.7, 0.6]), np.array([False, True]), 0.5)
    assert m.state.tolist() == [TRUE_POSITIVE, FALSE_POSITIVE, IGNORED, FALSE_POSITIVE]
    assert m.matched_gt.tolist() == [0, -1, -1, -1]


def test_perfect_detections_give_ap_one():
    gt = cars(5)
    for metric in ("bev", "3d"):
        assert car_ap([found(gt)], [truth(gt)], metric) == pytest.approx(1.0, abs=TOL)


def test_detections_shifted_beyond_the_threshold_give_ap_zero():
    gt = cars(5)
    shifted = gt.copy()
    shifted[:, 0] += 2.0  # BEV IoU (4.5-2)/(4.5+2) = 0.38 < 0.5
    assert car_ap([found(shifted)], [truth(gt)], iou=0.5) == pytest.approx(0.0, abs=TOL)


def test_shift_between_thresholds_counts_only_at_the_lower_one():
    gt = cars(4)
    shifted = gt.copy()
    shifted[:, 0] += 1.0  # BEV IoU 3.5 / 5.5 = 0.64: a hit at 0.5, a miss at 0.7
    assert car_ap([found(shifted)], [truth(gt)], iou=0.5) == pytest.approx(1.0, abs=TOL)
    assert car_ap([found(shifted)], [truth(gt)], iou=0.7) == pytest.approx(0.0, abs=TOL)


def test_missing_boxes_cap_recall_and_ap():
    gt = cars(4)
    assert car_ap([found(gt[:1])], [truth(gt)]) == pytest.approx(10 / 40, abs=TOL)


def test_duplicate_detections_are_false_positives_that_lower_ap():
    gt = cars(2)
    dets = found(np.concatenate([gt[:1], gt[:1], gt[1:]]), scores=[0.9, 0.8, 0.7])
    # Ranking TP, FP, TP: precision 1 up to recall 1/2, then 2/3.
    assert car_ap([dets], [truth(gt)]) == pytest.approx((20 + 20 * 2 / 3) / 40, abs=TOL)


def test_boxes_with_few_points_are_ignored_not_missed():
    gt = cars(2)
    gts = [truth(gt, num_points=[100, 4])]
    assert car_ap([found(gt[:1])], gts) == pytest.approx(1.0, abs=TOL)  # no miss
    assert car_ap([found(gt)], gts) == pytest.approx(1.0, abs=TOL)  # no false positive


def test_ap_is_split_by_occlusion_level():
    gt = cars(3)
    gts = [truth(gt, occlusion=[0.1, 0.5, 0.9])]
    dets = [found(gt[[0, 2]])]  # the partially occluded car is missed
    result = evaluate(dets, gts, EvalConfig())
    ap = {lv: result.ap[("bev", 0.7, "car", lv)] for lv in ("all", "0", "1", "2")}
    assert ap["0"] == pytest.approx(1.0, abs=TOL) and ap["2"] == pytest.approx(1.0, abs=TOL)
    assert ap["1"] == pytest.approx(0.0, abs=TOL)
    assert ap["all"] == pytest.approx(2 * 40 // 3 / 40, abs=TOL)  # recall 2/3: 26 points
    assert [result.num_gt[("car", lv)] for lv in ("all", "0", "1", "2")] == [3, 1, 1, 1]


@pytest.mark.parametrize(
    ("occ", "level"), [(0.0, 0), (0.29, 0), (0.3, 1), (0.7, 1), (0.71, 2), (1.0, 2)]
)
def test_occlusion_level_bins(occ, level):
    assert occlusion_levels(np.array([occ]), (0.3, 0.7)).tolist() == [level]


def test_box_errors_of_matched_pairs():
    gt = cars(2)
    det = gt.copy()
    det[:, 0] += 0.3
    det[:, 6] += 0.1
    det[:, 3] += 0.2
    errors = evaluate([found(det)], [truth(gt)], EvalConfig()).errors["car"]
    assert errors["matched"] == 2
    # Exact arithmetic on the shifts above, up to float rounding.
    assert errors["center_m"] == pytest.approx(0.3, abs=1e-9)
    assert errors["yaw_rad"] == pytest.approx(0.1, abs=1e-9)
    assert errors["length_m"] == pytest.approx(0.2, abs=1e-9)
    assert errors["width_m"] == pytest.approx(0.0, abs=1e-9)


def test_signed_box_errors_are_in_the_true_boxs_frame():
    gt = cars(2)
    gt[:, 6] = math.pi / 2  # heading +y: "along" is +y, "across" is -x
    det = gt.copy()
    det[:, 1] += 0.4  # ahead along the heading
    det[:, 0] += 0.1  # to the right of it
    det[:, 6] -= 0.05 + math.pi  # turned round and a little clockwise
    det[:, 3] -= 0.3  # shorter
    errors = evaluate([found(det)], [truth(gt)], EvalConfig()).errors["car"]
    assert errors["along_m"] == pytest.approx(0.4, abs=1e-9)
    assert errors["across_m"] == pytest.approx(-0.1, abs=1e-9)
    assert errors["length_signed_m"] == pytest.approx(-0.3, abs=1e-9)
    assert errors["width_signed_m"] == pytest.approx(0.0, abs=1e-9)
    assert errors["yaw_axis_signed_rad"] == pytest.approx(-0.05, abs=1e-9)
    assert errors["yaw_axis_rad"] == pytest.approx(0.05, abs=1e-9)


def test_a_box_turned_by_pi_is_a_hit_with_heading_but_no_axis_error():
    gt = cars(1)
    turned = gt.copy()
    turned[:, 6] += math.pi
    result = evaluate([found(turned)], [truth(gt)], EvalConfig())
    assert result.ap[("3d", 0.7, "car", "all")] == pytest.approx(1.0, abs=TOL)
    assert result.errors["car"]["yaw_rad"] == pytest.approx(math.pi, abs=1e-9)
    assert result.errors["car"]["yaw_axis_rad"] == pytest.approx(0.0, abs=1e-9)


def test_other_classes_without_boxes_report_nan_ap_and_json_null():
    gt = cars(1)
    result = evaluate([found(gt)], [truth(gt)], EvalConfig())
    assert math.isnan(result.ap[("bev", 0.5, "bus", "all")])
    entry = next(e for e in result.to_json()["ap"] if e["class"] == "bus")
    assert entry["ap"] is None and entry["num_gt"] == 0


def test_evaluate_rejects_mismatched_lengths():
    with pytest.raises(EvaluateError):
        evaluate([Detections.empty()], [], EvalConfig())


@pytest.mark.parametrize(
    "kwargs",
    [
        {"iou_thresholds": (0.0,)},
        {"metrics": ("2d",)},
        {"min_points_per_box": -1},
        {"occlusion_bins": (0.8, 0.2)},
    ],
)
def test_eval_config_rejects_out_of_bounds_values(kwargs):
    with pytest.raises(EvaluateError):
        EvalConfig(**kwargs)
