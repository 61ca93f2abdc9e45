"""``robomr bench detector`` on tiny settings: every table, the issue's JSON keys, errors."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from bench import BENCHMARKS, bench_detector
from bench import detector_speed as speed
from bench.detector_quality import HELDOUT_SEED, HELDOUT_SENSORS, generate
from perception.checkpoint import save_detector
from perception.dataset import SimDataset
from perception.synthetic import SyntheticConfig, write_synthetic_dataset
from perception.train import init_model

TINY = SyntheticConfig(num_frames=3, beams=32, azimuth_steps=256, vehicles=(2, 3),
                       placement_radius_m=10.0)  # fmt: skip
ISSUE_KEYS = {
    "ap_bev07_car_unoccluded",
    "ap_bev07_car_ci95",
    "heading_error_median_rad",
    "fp_per_frame_negatives",
    "ms_per_frame_32beam_median",
    "ms_per_frame_64beam_median",
    "stage_ms",
    "box_errors",  # not the issue's: where matched boxes are off (signed, per class)
}


def bench_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    bench_detector.add_arguments(parser)
    return parser.parse_args(list(argv))


@pytest.fixture(scope="module")
def model_path(small_config, tmp_path_factory) -> Path:
    return save_detector(init_model(small_config, 0), tmp_path_factory.mktemp("b") / "m.pt")


def test_benchmark_is_registered():
    assert BENCHMARKS["detector"] == "bench.bench_detector"


def test_tiny_run_reports_every_part_and_the_issue_json_keys(model_path, tmp_path):
    data = write_synthetic_dataset(tmp_path / "heldout", TINY)
    args = bench_args(
        "--model", str(model_path), "--data", str(data), "--negatives-frames", "1",
        "--bootstrap", "20", "--timing-frames", "1", "--dense-frames", "0", "--threads", "1",
        "--no-progress", "--picture", str(tmp_path / "real.png"), "--dense-precision", "float32",
    )  # fmt: skip
    report = bench_detector.run(args)
    titles = " | ".join(t.title for t in report.tables)
    for part in ("R40 AP by class", "deskewing ablation", "heading vs box-axis",
                 "signed box errors", "false positives", "ms per scan"):  # fmt: skip
        assert part in titles
    ap = report.tables[0]
    assert {row[0] for row in ap.rows} == {"car", "van", "truck", "bus"}
    speed = report.tables[-1]
    assert {(row[0], row[1]) for row in speed.rows} == {
        (b, m) for b in (32, 64) for m in ("trained", "trained, deskewed", "previous default")
    }
    out = report.to_json()
    assert set(out) >= ISSUE_KEYS
    modes = ("odometry", "noisy", "off")
    assert {f"ap_bev07_car_unoccluded_deskew_{m}" for m in modes} <= set(out)
    assert out["ap_bev07_car_unoccluded_deskew_odometry"] == out["ap_bev07_car_unoccluded"]
    assert set(out["stage_ms"]) == {"voxelize", "backbone", "head", "decode"}
    assert len(out["ap_bev07_car_ci95"]) == 2
    json.dumps(out)  # serialisable: NaN written as null
    if bench_detector.REAL_SWEEP.is_file():  # the shared nuScenes sweep, where present
        assert "real sweep" in titles and out["real_sweep"]["checked"] >= 2
        assert (tmp_path / "real.png").stat().st_size > 0


def test_a_bfloat16_run_scores_float32_beside_it_on_the_same_frames(model_path, tmp_path):
    data = write_synthetic_dataset(tmp_path / "heldout", TINY)
    common = ("--model", str(model_path), "--data", str(data), "--negatives-frames", "0",
              "--bootstrap", "20", "--no-speed", "--threads", "1", "--no-progress")  # fmt: skip
    report = bench_detector.run(bench_args(*common, "--dense-precision", "bfloat16"))
    (table,) = [t for t in report.tables if t.title.startswith("neck and head precision")]
    assert [(row[0], row[1]) for row in table.rows] == [
        (name, level) for level in ("unoccluded (<0.3)", "all") for name in ("float32", "bfloat16")
    ]
    assert all(row[3] == 0.0 for row in table.rows if row[0] == "float32")  # the baseline
    out = report.to_json()
    assert {"ap_bev07_car_unoccluded_float32", "ap_bev07_car_all_float32"} <= set(out)
    plain = bench_detector.run(bench_args(*common, "--dense-precision", "float32"))
    assert not any(t.title.startswith("neck and head precision") for t in plain.tables)
    # the float32 rows are what a float32 run of the bench reports
    assert out["ap_bev07_car_all_float32"] == plain.to_json()["ap_bev07_car_all"]


def test_speed_only_runs_just_the_timing(model_path):
    args = bench_args(
        "--model", str(model_path), "--speed-only", "--timing-frames", "1",
        "--dense-frames", "0", "--threads", "1", "--no-progress", "--dense-precision", "bfloat16",
    )  # fmt: skip
    report = bench_detector.run(args)
    assert [t.title.split(":")[0] for t in report.tables] == ["ms per scan"]
    out = report.to_json()
    assert out["ms_per_frame_32beam_median"] > 0 and "ap_bev07_car_unoccluded" not in out
    assert out["settings"]["dense_precision"] == "bfloat16 (bfloat16)"
    # a bfloat16 default is timed beside the same model in float32, in the same process
    rows = {(row[0], row[1]) for row in report.tables[0].rows}
    assert {(b, speed.FLOAT32_ROW) for b in (32, 64)} <= rows
    assert f"{speed.FLOAT32_ROW} / trained median ms, 32 beams" in out["ratios"]


def test_speed_only_and_no_speed_together_are_refused(model_path):
    args = bench_args("--model", str(model_path), "--speed-only", "--no-speed")
    with pytest.raises(bench_detector.BenchDetectorError, match="nothing to run"):
        bench_detector.run(args)


def test_heldout_sets_use_unseen_sensors_and_seeds(tmp_path):
    ds = SimDataset(generate(tmp_path / "h", 2, negatives=False, progress=False))
    assert ds.meta["seed"] == HELDOUT_SEED
    assert tuple(ds.meta["variation"]["sensors"]) == HELDOUT_SENSORS
    neg = SimDataset(generate(tmp_path / "n", 1, negatives=True, progress=False))
    assert all(len(neg[i].boxes) == 0 for i in range(len(neg)))  # no vehicle at all


def test_missing_model_fails_with_a_clear_message(tmp_path):
    with pytest.raises(bench_detector.BenchDetectorError, match="robomr perception train"):
        bench_detector.run(bench_args("--model", str(tmp_path / "none.pt")))
