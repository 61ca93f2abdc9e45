"""Every benchmark runs end to end at a tiny setting and reports ratios measured in the run.

These check that the benchmark commands keep working (arguments, wiring, report shape); the
figures themselves come from full runs (docs/benchmarks.md) and are never asserted here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import BENCHMARKS
from robomr_nodes.cli.main import main

TINY: dict[str, list[str]] = {
    "runtime": ["--messages", "10", "--size-mb", "0.1"],
    "sim": ["--repeats", "1", "--slab-rays", "200"],
    "detector": ["--frames", "2", "--timing-frames", "1", "--dense-frames", "1", "--threads", "1"],
    "croa": [
        "--scenes",
        "1",
        "--plans",
        "1",
        "--methods",
        "croa,stay",
        "--no-cache",
        "--check-views",
        "3",
        "--ablation-scenes",
        "0",
    ],
    "render": ["--gaussians", "1e3", "--sizes", "64x48", "--frames", "1", "--skip-quality"],
    "gsclo": [
        "--source",
        "synthetic",
        "--frames",
        "40",
        "--window",
        "10",
        "--gap-windows",
        "3",
        "--timing-sizes",
        "12",
        "--repeats",
        "1",
    ],
    "e2e": ["--quick", "--duration", "0.5"],
}


def test_every_registered_benchmark_has_a_tiny_setting() -> None:
    assert set(TINY) == set(BENCHMARKS)


@pytest.mark.parametrize("name", sorted(TINY))
def test_benchmark_runs_and_reports_ratios(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / f"{name}.json"
    assert main(["bench", name, *TINY[name], "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["name"] == name and report["tables"] and report["machine"]["cores"]
    assert report["ratios"], "a benchmark prints ratios against its baselines"
    assert "ratios (measured side by side in this run)" in capsys.readouterr().out
