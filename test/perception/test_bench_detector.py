"""``robomr bench detector`` on tiny data, and its clear failure without a simulator."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import pytest

from bench import BENCHMARKS, bench_detector
from perception.checkpoint import save_detector
from perception.dataset import SimDataset
from perception.synthetic import SyntheticConfig, write_synthetic_dataset
from perception.train import init_model

# 64 rings so that the 32-beam scans (even rings) exist too; few rays keep it fast.
SCENE_64 = SyntheticConfig(
    num_frames=3, beams=64, azimuth_steps=256, vehicles=(2, 3), placement_radius_m=10.0
)


def bench_args(model: Path, data: Path | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    bench_detector.add_arguments(parser)
    argv = ["--model", str(model), "--timing-frames", "2", "--dense-frames", "1", "--frames", "3"]
    return parser.parse_args(argv + (["--data", str(data)] if data else []))


@pytest.fixture(scope="module")
def model_path(small_config, tmp_path_factory) -> Path:
    return save_detector(init_model(small_config, 0), tmp_path_factory.mktemp("b") / "m.pt")


def fake_sim(signature_ok: bool):
    """(write_dataset, LidarConfig) of a stand-in simulator writing synthetic 64-beam frames."""

    def write_dataset(out_dir, frames, *, seed, lidar):
        assert seed == bench_detector.HELDOUT_SEED and lidar == {"beams": 64}
        return write_synthetic_dataset(out_dir, replace(SCENE_64, num_frames=frames))

    def other_signature(out_dir, num_frames, beams):
        raise AssertionError("must not be called")

    return (write_dataset if signature_ok else other_signature), dict


def test_benchmark_is_registered():
    assert BENCHMARKS["detector"] == "bench.bench_detector"


def test_benchmark_reports_car_ap_by_level_and_sparse_vs_dense_speed(model_path, tmp_path):
    data = write_synthetic_dataset(tmp_path / "heldout", SCENE_64)
    report = bench_detector.run(bench_args(model_path, data))
    ap_table, speed = report.tables
    assert [row[0] for row in ap_table.rows] == ["all", "0", "1", "2"]
    assert {(row[0], row[1]) for row in speed.rows} == {
        (b, k) for b in (32, 64) for k in ("sparse", "dense")
    }
    assert all(row[4] > 0 for row in speed.rows)
    assert set(report.ratios) == {f"dense / sparse median ms, {b} beams" for b in (32, 64)}
    points = {row[0]: row[3] for row in speed.rows if row[1] == "sparse"}
    assert points[32] < points[64]  # the 32-beam scans are half the rings


TRAINED_ON_32 = {"dataset": {"meta": {"lidar": {"beams": 32}}}}  # provenance of a 32-beam run


@pytest.mark.parametrize(
    ("metadata", "ap_beams", "expected"),
    [
        ({}, None, 64),  # unknown training lidar: every ring of the held-out set
        (TRAINED_ON_32, None, 32),  # from the model's provenance
        (TRAINED_ON_32, 64, 64),  # --ap-beams wins
    ],
)
def test_ap_is_scored_on_the_beams_the_model_was_trained_on(
    small_config, tmp_path, metadata, ap_beams, expected
):
    model = save_detector(init_model(small_config, 0), tmp_path / "m.pt", metadata)
    data = write_synthetic_dataset(tmp_path / "heldout", replace(SCENE_64, num_frames=1))
    args = bench_args(model, data)
    args.ap_beams = ap_beams
    report = bench_detector.run(args)
    assert report.settings["ap_beams"] == expected
    assert f"on {expected}-beam scans" in report.tables[0].title


def test_default_dataset_comes_from_the_simulator(model_path, monkeypatch):
    monkeypatch.setattr(bench_detector, "_sim_writer", lambda: fake_sim(True))
    report = bench_detector.run(bench_args(model_path, None))
    assert str(bench_detector.HELDOUT_SEED) in report.settings["data"]
    assert report.settings["frames"] == 3


def test_heldout_set_from_the_real_simulator_is_readable(tmp_path):
    data = bench_detector.generate_heldout(tmp_path / "heldout", 2)
    ds = SimDataset(data)
    assert len(ds) == 2 and ds.meta["lidar"]["beams"] == 64
    assert ds.meta["seed"] == bench_detector.HELDOUT_SEED


def test_missing_simulator_fails_with_a_clear_message(model_path, monkeypatch):
    monkeypatch.setattr(bench_detector, "_sim_writer", lambda: None)
    with pytest.raises(bench_detector.BenchDetectorError, match=r"sim\.dataset.*--data"):
        bench_detector.run(bench_args(model_path, None))


def test_simulator_with_another_writer_signature_fails_clearly(model_path, monkeypatch):
    monkeypatch.setattr(bench_detector, "_sim_writer", lambda: fake_sim(False))
    with pytest.raises(bench_detector.BenchDetectorError, match="write_dataset"):
        bench_detector.run(bench_args(model_path, None))


def test_missing_model_fails_with_a_clear_message(tmp_path):
    with pytest.raises(bench_detector.BenchDetectorError, match="robomr perception train"):
        bench_detector.run(bench_args(tmp_path / "none.pt", tmp_path))
