"""Bootstrap intervals of AP over frames, and the real-sweep check's bookkeeping."""

from __future__ import annotations

import json

import numpy as np
import pytest

from perception.bootstrap import FrameRecord, ap_of, bootstrap_ap, bootstrap_median
from perception.postprocess import Detections
from perception.real_check import RealCheckError, check_sweep, load_sweep


def records(rng: np.random.Generator, frames: int, p_true: float) -> list[FrameRecord]:
    out = []
    for _ in range(frames):
        scores = rng.uniform(0, 1, 5)
        true = rng.random(5) < p_true * scores  # higher scores are more often right
        out.append(FrameRecord(scores, true, int(true.sum()) + 1))
    return out


def test_bootstrap_interval_brackets_the_estimate_and_is_reproducible() -> None:
    recs = records(np.random.default_rng(0), 60, 0.9)
    ap, lo, hi = bootstrap_ap(recs, 200, seed=3)
    assert ap == ap_of(recs) and lo <= ap <= hi and hi - lo > 0
    assert bootstrap_ap(recs, 200, seed=3) == (ap, lo, hi)


def test_more_frames_give_a_narrower_interval() -> None:
    few = bootstrap_ap(records(np.random.default_rng(1), 20, 0.8), 300)
    many = bootstrap_ap(records(np.random.default_rng(1), 320, 0.8), 300)
    # The percentile interval shrinks like 1/sqrt(frames): 16x the frames, about 1/4 the width.
    assert many[2] - many[1] < 0.6 * (few[2] - few[1])


def test_no_ground_truth_gives_nan_without_an_interval() -> None:
    ap, lo, hi = bootstrap_ap([FrameRecord(np.array([0.5]), np.array([False]), 0)], 50)
    assert np.isnan(ap) and np.isnan(lo) and np.isnan(hi)


def test_median_interval_contains_the_median() -> None:
    values = np.random.default_rng(2).exponential(0.1, 400)
    med, lo, hi = bootstrap_median(values, 300)
    assert lo <= med <= hi and med == pytest.approx(np.median(values))


@pytest.fixture
def sweep_files(tmp_path):
    points = np.zeros((10, 5), dtype="<f4")
    path = tmp_path / "scan.pcd.bin"
    points.tofile(path)
    boxes = [
        {"label": "car", "x": 10, "y": 0, "z": 0, "l": 4.5, "w": 1.8, "h": 1.5, "yaw": 0.0,
         "num_lidar_pts": 40},
        {"label": "truck", "x": -8, "y": 5, "z": 0, "l": 9, "w": 2.5, "h": 3.4, "yaw": 1.6,
         "num_lidar_pts": 300},
        {"label": "car", "x": 30, "y": 30, "z": 0, "l": 4, "w": 1.8, "h": 1.5, "yaw": 0.0,
         "num_lidar_pts": 3},
        {"label": "pedestrian", "x": 0, "y": -6, "z": 0, "l": 0.7, "w": 0.7, "h": 1.7,
         "yaw": 0.0, "num_lidar_pts": 50},
    ]  # fmt: skip
    (tmp_path / "scan_gt.json").write_text(json.dumps({"boxes": boxes}))
    return path


def test_check_counts_found_vehicles_and_other_detections(sweep_files) -> None:
    sweep = load_sweep(sweep_files)
    det = Detections(
        np.array(
            [
                [10.2, 0.1, 0, 4.4, 1.8, 1.5, 3.1],  # the near car (heading ignored)
                [30, 30, 0, 4, 1.8, 1.5, 0],  # the far car: annotated, not checked
                [0, -6, 0, 4, 1.8, 1.5, 0],  # on the pedestrian: false
                [-8, 5, 0, 9, 2.5, 3.4, 1.6],  # below the threshold
            ]
        ),
        np.array([0, 0, 0, 2]),
        np.array([0.9, 0.8, 0.7, 0.2], dtype=np.float32),
    )
    result = check_sweep(sweep, det, score_threshold=0.5)
    assert [(v["label"], v["found"]) for v in result["vehicles"]] == [
        ("car", True),
        ("truck", False),
    ]
    assert (result["found"], result["checked"], result["other"], result["false"]) == (1, 2, 2, 1)


def test_a_four_value_file_is_refused(tmp_path) -> None:
    path = tmp_path / "bad.pcd.bin"
    np.zeros(7, dtype="<f4").tofile(path)
    (tmp_path / "bad_gt.json").write_text(json.dumps({"boxes": []}))
    with pytest.raises(RealCheckError, match="multiple of 5"):
        load_sweep(path)
