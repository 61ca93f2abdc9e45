"""``robomr perception train|eval|detect`` through their argument parsers."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import torch

from perception.checkpoint import save_detector
from perception.dataset import SimDataset
from perception.dense_layers import default_precision
from perception.train import init_model
from robomr_nodes.cli import cmd_perception
from robomr_nodes.cli.main import CliError


def run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="robomr")
    cmd_perception.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["perception", *argv, "--no-progress"])
    return args.func(args)


@pytest.fixture(scope="module")
def model_path(small_config, tmp_path_factory):
    return save_detector(init_model(small_config, seed=0), tmp_path_factory.mktemp("m") / "d.pt")


def test_detect_prints_a_table_and_writes_json(model_path, synthetic_dataset, tmp_path, capsys):
    scan = tmp_path / "scan.bin"
    SimDataset(synthetic_dataset)[0].points[:, :4].astype("<f4").tofile(scan)
    out = tmp_path / "boxes.json"
    assert (
        run_cli(
            "detect",
            str(scan),
            "--model",
            str(model_path),
            "--json",
            str(out),
            "--score-threshold",
            "0.05",
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "class" in printed and "yaw" in printed and "lidar frame" in printed
    data = json.loads(out.read_text())
    assert data["frame"] == "lidar" and data["num_points"] > 0
    assert len(data["detections"]) > 0  # the untrained head's 0.1 prior is above 0.05
    assert set(data["detections"][0]) == {"class", "score", "center_m", "size_m", "yaw_rad"}
    # auto: bfloat16 on a CPU with native bfloat16, float32 elsewhere; said either way
    auto = str(default_precision(torch.device("cpu"))).removeprefix("torch.")
    assert data["dense_precision"] == auto and f"neck and head in {auto} (auto)" in printed
    args = ("detect", str(scan), "--model", str(model_path), "--json", str(out))
    assert run_cli(*args, "--dense-precision", "float32") == 0
    assert json.loads(out.read_text())["dense_precision"] == "float32"


def test_detect_deskews_with_the_motion_options(model_path, synthetic_dataset, tmp_path) -> None:
    scan = tmp_path / "scan.bin"
    SimDataset(synthetic_dataset)[0].points[:, :4].astype("<f4").tofile(scan)
    out = tmp_path / "boxes.json"
    common = ("detect", str(scan), "--model", str(model_path), "--json", str(out))
    assert (
        run_cli(*common, "--ego-speed", "9", "--ego-yaw-rate", "0.2", "--sensor-yaw", "1.5708") == 0
    )
    motion = json.loads(out.read_text())["deskew"]
    # x to the right (nuScenes-like mounting): forward is -y in the lidar frame
    np.testing.assert_allclose(motion["velocity_mps"], [0.0, -9.0, 0.0], atol=1e-3)
    assert motion["yaw_rate_radps"] == pytest.approx(0.2) and motion["scan_period_s"] == 0.1
    assert run_cli(*common) == 0 and json.loads(out.read_text())["deskew"] is None
    with pytest.raises(CliError, match="scan_period_s"):
        run_cli(*common, "--ego-speed", "5", "--scan-period", "0")


@pytest.mark.parametrize(
    ("content", "message"), [(b"\0" * 7, "truncated"), (b"FIELDS a\n", "(?i)no .data. line")]
)
def test_detect_reports_bad_files_as_cli_errors(model_path, tmp_path, content, message):
    path = tmp_path / ("bad.bin" if content.startswith(b"\0") else "bad.pcd")
    path.write_bytes(content)
    with pytest.raises(CliError, match=message):
        run_cli("detect", str(path), "--model", str(model_path))


def test_detect_without_a_model_explains_how_to_train(tmp_path):
    scan = tmp_path / "s.npy"
    np.save(scan, np.zeros((3, 4), np.float32))
    with pytest.raises(CliError, match="robomr perception train"):
        run_cli("detect", str(scan), "--model", str(tmp_path / "none.pt"))


def test_eval_prints_ap_per_class_and_level_and_writes_json(
    model_path, synthetic_dataset, tmp_path, capsys
):
    out = tmp_path / "eval.json"
    assert (
        run_cli(
            "eval", "--model", str(model_path), "--data", str(synthetic_dataset), "--json", str(out)
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "BEV@0.7" in printed and "3D@0.5" in printed and "yaw_axis_rad" in printed
    data = json.loads(out.read_text())
    assert len(data["ap"]) == 2 * 2 * 4 * 4  # metrics x thresholds x classes x levels


def test_eval_on_a_non_dataset_is_a_cli_error(model_path, tmp_path):
    with pytest.raises(CliError, match=r"meta\.json"):
        run_cli("eval", "--model", str(model_path), "--data", str(tmp_path))


def test_train_writes_the_model_and_provenance(synthetic_dataset, tmp_path, capsys):
    out = tmp_path / "models" / "det.pt"
    assert (
        run_cli(
            "train",
            "--data",
            str(synthetic_dataset),
            "--out",
            str(out),
            "--epochs",
            "1",
            "--batch-size",
            "4",
            "--seed",
            "3",
        )
        == 0
    )
    assert out.is_file() and out.with_suffix(".json").is_file()
    prov = json.loads(out.with_suffix(".json").read_text())
    assert prov["seed"] == 3 and prov["command"].startswith("robomr")
    assert "heatmap" in capsys.readouterr().out


def test_bad_training_settings_are_cli_errors(synthetic_dataset, tmp_path):
    with pytest.raises(CliError, match="epochs"):
        run_cli(
            "train",
            "--data",
            str(synthetic_dataset),
            "--out",
            str(tmp_path / "m.pt"),
            "--epochs",
            "0",
        )
