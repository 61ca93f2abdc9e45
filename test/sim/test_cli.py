"""``robomr sim ...`` end to end through ``robomr_nodes.cli.main.main`` with tiny settings."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from robomr_nodes.cli.main import main
from sim.dataset import iter_dataset
from sim.scene import Scene

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_list_prints_every_shipped_scenario(capsys) -> None:
    assert main(["sim", "list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ("urban-clutter", "occluded-target", "open-road"))


def test_show_writes_a_png(tmp_path, capsys) -> None:
    out = tmp_path / "bev.png"
    assert (
        main(["sim", "show", "open-road", "--seed", "1", "--beams", "16", "--out", str(out)]) == 0
    )
    assert out.read_bytes()[:8] == PNG_MAGIC
    assert "target occlusion from the start" in capsys.readouterr().out


def test_save_then_show_and_export_the_scene_file(tmp_path) -> None:
    scene_file = tmp_path / "scene.json"
    assert main(["sim", "save", "occluded-target", "--seed", "2", "--out", str(scene_file)]) == 0
    scene = Scene.load(scene_file)
    assert scene.name == "occluded-target" and scene.seed == 2
    assert (
        main(["sim", "show", str(scene_file), "--no-scan", "--out", str(tmp_path / "s.png")]) == 0
    )
    sdf = tmp_path / "world.sdf"
    assert main(["sim", "export-sdf", str(scene_file), "--out", str(sdf), "--no-robot"]) == 0
    assert len(ET.parse(sdf).getroot().findall("world/model")) == len(scene.objects) + 1


def test_render_writes_a_camera_png(tmp_path) -> None:
    out = tmp_path / "cam.png"
    assert (
        main(["sim", "render", "open-road", "--width", "64", "--height", "48", "--out", str(out)])
        == 0
    )
    assert out.read_bytes()[:8] == PNG_MAGIC


def test_dataset_command_writes_a_readable_dataset(tmp_path) -> None:
    out = tmp_path / "ds"
    args = [
        "sim",
        "dataset",
        "--frames",
        "2",
        "--out",
        str(out),
        "--scenario",
        "open-road",
        "--seed",
        "3",
        "--beams",
        "16",
        "--no-progress",
    ]
    assert main(args) == 0
    assert json.loads((out / "meta.json").read_text())["num_frames"] == 2
    assert len(list(iter_dataset(out))) == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["sim", "show", "no-such-scenario"], "unknown scenario"),
        (["sim", "export-sdf", "open-road", "--out", "/nonexistent-dir/w.sdf"], "cannot write"),
        (["sim", "dataset", "--frames", "0", "--out", "unused"], "frames"),
        (["sim", "dataset", "--frames", "1", "--out", "u", "--roadside", "1,2"], "need --vary"),
        (["sim", "dataset", "--frames", "1", "--out", "u", "--vary", "--roadside", "2"], "LO,HI"),
        (
            ["sim", "dataset", "--frames", "1", "--out", "u", "--vary", "--roadside", "9,3"],
            "roadside_range_per_100m",
        ),
    ],
)
def test_user_errors_exit_2_with_a_message(capsys, args, message) -> None:
    assert main(args) == 2
    assert message in capsys.readouterr().err


def test_seed_with_a_scene_file_is_a_user_error(tmp_path, capsys) -> None:
    scene_file = tmp_path / "scene.yaml"
    assert main(["sim", "save", "open-road", "--out", str(scene_file)]) == 0
    assert main(["sim", "show", str(scene_file), "--seed", "4"]) == 2
    assert "drop the seed" in capsys.readouterr().err
