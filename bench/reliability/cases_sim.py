"""Cases of ``robomr sim``, ``robomr demo`` and ``robomr bench``: scenarios, scene files,
seeds, image and output paths, run folders that hold earlier results."""

from __future__ import annotations

import json
from pathlib import Path

from bench.reliability.harness import Case, Outcome
from bench.reliability.setups import write

GOOD_SCENARIO = "name: mine\ndefault_seed: 1\nconfig:\n  num_moving_vehicles: 2\n"
EARLIER_DATASET = {"ds/meta.json": '{"format": "robomr-sim-dataset", "mine": true}\n'}
EARLIER_RUN = {"run/summary.json": '{"earlier": true}\n', "run/notes.txt": "keep me\n"}


def _scenario(name: str, text: str | bytes, *names: str) -> Case:
    return Case(
        f"sim/scenario-{name}",
        ("sim", "show", "s.yaml", "--no-scan", "--out", "o.png"),
        names=("s.yaml", *names),
        setup=write({"s.yaml": text}),
        creates_nothing=True,
    )


def _config(name: str, body: str, *names: str) -> Case:
    return _scenario(name, f"name: mine\nconfig:\n  {body}\n", *names)


SCENARIOS = [
    Case("sim/unknown-name", ("sim", "show", "nowhere"), names=("nowhere",), creates_nothing=True),
    Case("sim/scenario-file-missing", ("sim", "show", "gone.yaml"), names=("gone.yaml",)),
    _scenario("yaml-syntax", "name: [1\n", "not valid YAML", "line"),
    _scenario("binary", b"\xff\xfe\x00\x01", "not a text file"),
    _scenario("no-config", "name: mine\n", "'config'"),
    _scenario("list", "- 1\n", "'config'"),
    _config("unknown-field", "wheels: 3", "wheels"),
    _config("out-of-range", "street_length_m: 5", "street_length_m"),
    _config("nan", "lane_width_m: .nan", "lane_width_m"),
    _config("weights-scalar", "class_weights: 5", "class_weights"),
    _config("weights-text", "class_weights: [a, b, c, d]", "class_weights"),
    _config("lanes-float", "lanes_per_direction: 1.5", "lanes_per_direction"),
    _config("target-class", "target_class: tank", "tank"),
    _config("range-reversed", "target_distance_range_m: [30, 20]", "target_distance_range_m"),
    _config("range-short", "target_distance_range_m: [20]", "target_distance_range_m"),
    _scenario("seed-text", "name: mine\ndefault_seed: many\nconfig: {}\n", "default_seed"),
    _scenario("seed-negative", "name: mine\ndefault_seed: -3\nconfig: {}\n", "seed"),
    _scenario("config-not-mapping", "name: mine\nconfig: [1, 2]\n", "config"),
    Case(
        "sim/seed-negative",
        ("sim", "show", "urban-clutter", "--seed", "-7", "--no-scan", "--out", "o.png"),
        names=("-7",),
        creates_nothing=True,
    ),
    Case(
        "sim/scene-file-with-seed",
        ("sim", "show", "scene.yaml", "--seed", "3"),
        names=("scene.yaml", "drop the seed"),
        setup=write({"scene.yaml": "format: robomr-sim-scene\nversion: 1\n"}),
    ),
    Case(
        "sim/scene-version",
        ("sim", "show", "scene.yaml", "--no-scan", "--out", "o.png"),
        names=("version",),
        setup=write({"scene.yaml": "format: robomr-sim-scene\nversion: 7\n"}),
    ),
    Case(
        "sim/scene-missing-field",
        ("sim", "show", "scene.yaml", "--no-scan", "--out", "o.png"),
        names=("missing field",),
        setup=write({"scene.yaml": "format: robomr-sim-scene\nversion: 1\nname: x\n"}),
    ),
]


def _dataset_replaced(ws: Path, _out: Outcome) -> str | None:
    meta = json.loads((ws / "ds" / "meta.json").read_text())
    frames = sorted(p.name for p in (ws / "ds" / "frames").iterdir())
    if "mine" in meta or frames != ["000000.npz"] or not (ws / "ds" / "notes.txt").exists():
        return f"dataset not replaced cleanly: {frames}"
    return None


OUTPUTS = [
    Case(
        "sim/render-suffix",
        ("sim", "render", "urban-clutter", "--out", "x.xyz"),
        names=("'.xyz'",),
        creates_nothing=True,
    ),
    Case(
        "sim/render-no-suffix",
        ("sim", "render", "urban-clutter", "--out", "picture"),
        names=("picture",),
        creates_nothing=True,
    ),
    Case(
        "sim/render-missing-dir",
        ("sim", "render", "urban-clutter", "--out", "no/x.png"),
        names=("no/x.png",),
        creates_nothing=True,
    ),
    Case(
        "sim/render-width-0",
        ("sim", "render", "urban-clutter", "--out", "x.png", "--width", "0"),
        names=("width",),
        creates_nothing=True,
    ),
    Case(
        "sim/render-height-negative",
        ("sim", "render", "urban-clutter", "--out", "x.png", "--height", "-4"),
        names=("height",),
        creates_nothing=True,
    ),
    Case(
        "sim/show-suffix",
        ("sim", "show", "urban-clutter", "--out", "x.docx"),
        names=("'.docx'",),
        creates_nothing=True,
    ),
    Case(
        "sim/show-out-folder",
        ("sim", "show", "urban-clutter", "--out", "d.png"),
        names=("d.png",),
        setup=lambda ws: (ws / "d.png").mkdir(),
    ),
    Case(
        "sim/save-suffix",
        ("sim", "save", "urban-clutter", "--out", "s.txt"),
        names=("s.txt",),
        creates_nothing=True,
    ),
    Case(
        "sim/save-missing-dir",
        ("sim", "save", "urban-clutter", "--out", "no/s.yaml"),
        names=("no/s.yaml",),
        creates_nothing=True,
    ),
    Case(
        "sim/sdf-missing-dir",
        ("sim", "export-sdf", "urban-clutter", "--out", "no/w.sdf"),
        names=("no/w.sdf",),
        creates_nothing=True,
    ),
    Case(
        "sim/sdf-beams",
        ("sim", "export-sdf", "urban-clutter", "--out", "w.sdf", "--beams", "7"),
        names=("7",),
        creates_nothing=True,
    ),
    Case(
        "sim/dataset-into-earlier",
        ("sim", "dataset", "--frames", "1", "--out", "ds"),
        names=("ds", "not empty", "--force"),
        setup=write(EARLIER_DATASET),
    ),
    Case(
        "sim/dataset-force-bad-frames",
        ("sim", "dataset", "--frames", "0", "--out", "ds", "--force"),
        names=("--frames",),
        setup=write(EARLIER_DATASET),
    ),
    Case(
        "sim/dataset-frames-0",
        ("sim", "dataset", "--frames", "0", "--out", "ds"),
        names=("--frames",),
        creates_nothing=True,
    ),
    Case(
        "sim/dataset-seed-negative",
        ("sim", "dataset", "--frames", "1", "--out", "ds", "--seed", "-1"),
        names=("--seed",),
        creates_nothing=True,
    ),
    Case(
        "sim/dataset-bad-scenario",
        ("sim", "dataset", "--frames", "1", "--out", "ds", "--scenario", "gone.yaml"),
        names=("gone.yaml",),
        creates_nothing=True,
    ),
    Case(
        "sim/dataset-out-is-file",
        ("sim", "dataset", "--frames", "1", "--out", "f"),
        names=("f", "is a file"),
        setup=write({"f": "x"}),
    ),
    Case(
        "sim/ok-dataset-force",
        (
            "sim",
            "dataset",
            "--frames",
            "1",
            "--beams",
            "16",
            "--out",
            "ds",
            "--force",
            "--no-progress",
        ),
        expect="ok",
        setup=write({**EARLIER_DATASET, "ds/frames/000007.npz": "old", "ds/notes.txt": "keep"}),
        replaced=("ds/meta.json", "ds/frames"),
        check=_dataset_replaced,
    ),
    Case(
        "sim/ok-show",
        ("sim", "show", "urban-clutter", "--no-scan", "--out", "ok.png"),
        expect="ok",
        check=lambda ws, out: None if (ws / "ok.png").stat().st_size else "empty",
    ),
]


def _dataset_replaced(ws: Path, _out: Outcome) -> str | None:
    meta = json.loads((ws / "ds" / "meta.json").read_text())
    frames = sorted(p.name for p in (ws / "ds" / "frames").iterdir())
    if "mine" in meta or frames != ["000000.npz"] or not (ws / "ds" / "notes.txt").exists():
        return f"dataset not replaced cleanly: {frames}"
    return None


def _demo(name: str, args: tuple[str, ...], *names: str, **kw) -> Case:
    return Case(f"demo/{name}", ("demo", "--quick", *args), names=names, **kw)


def _earlier_kept(ws: Path, _out: Outcome) -> str | None:
    summary = json.loads((ws / "run" / "summary.json").read_text())
    if "earlier" in summary or (ws / "run" / "notes.txt").read_text() != "keep me\n":
        return "earlier results not replaced, or other files touched"
    return None


DEMO = [
    *[
        _demo(
            f"duration-{v}", ("--duration", v, "--out", "run"), "duration_s", creates_nothing=True
        )
        for v in ("nan", "inf", "0", "4000", "-2")
    ],
    _demo(
        "scenario-missing",
        ("--scenario", "gone.yaml", "--out", "run"),
        "gone.yaml",
        creates_nothing=True,
    ),
    _demo(
        "scenario-unknown",
        ("--scenario", "nowhere", "--out", "run"),
        "nowhere",
        creates_nothing=True,
    ),
    _demo("seed-negative", ("--seed", "-7", "--out", "run"), "-7", creates_nothing=True),
    _demo(
        "out-earlier-results",
        ("--duration", "1", "--out", "run"),
        "run",
        "not empty",
        "--force",
        setup=write(EARLIER_RUN),
    ),
    _demo("out-is-file", ("--out", "f"), "f", "is a file", setup=write({"f": "x"})),
    _demo("out-under-proc", ("--out", "/proc/robomr/run"), "/proc/robomr/run"),
    _demo("bad-launch-arg", ("bogus:=1", "--out", "run"), "bogus", creates_nothing=True),
    _demo("launch-arg-form", ("use_planner", "--out", "run"), "use_planner", creates_nothing=True),
    _demo("launch-arg-bool", ("use_planner:=maybe", "--out", "run"), "maybe", creates_nothing=True),
    _demo(
        "ok-force-replaces-earlier",
        ("--duration", "0.3", "--out", "run", "--force"),
        expect="ok",
        setup=write(EARLIER_RUN),
        replaced=("run/summary.json",),
        bags=("run/bag",),
        check=_earlier_kept,
    ),
]

BENCH = [
    Case("bench/unknown", ("bench", "nosuch"), names=("nosuch",)),
    Case(
        "bench/json-missing-dir",
        ("bench", "runtime", "--messages", "2", "--size-mb", "0.01", "--json", "no/r.json"),
        names=("no/r.json",),
        creates_nothing=True,
    ),
    Case(
        "bench/json-folder",
        ("bench", "runtime", "--messages", "2", "--size-mb", "0.01", "--json", "d"),
        names=("d",),
        setup=lambda ws: (ws / "d").mkdir(),
    ),
    Case("bench/all-with-options", ("bench", "all", "--json", "x.json"), names=("bench all",)),
]

CASES = [*SCENARIOS, *OUTPUTS, *DEMO, *BENCH]
