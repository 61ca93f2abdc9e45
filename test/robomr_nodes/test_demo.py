"""`robomr demo` end to end at a tiny setting, and the graph surviving a failing node."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from robomr_nodes.api import NodeHandle, RobomrNode
from robomr_nodes.bag import bag_info
from robomr_nodes.cli.main import main
from robomr_nodes.demo.run import DemoOptions, demo_plan
from robomr_nodes.runner import RunOptions, build_executor


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo") / "run"
    assert main(["demo", "--quick", "--duration", "1.5", "--out", str(out)]) == 0
    return out


def test_demo_writes_bag_summary_and_picture(run_folder: Path) -> None:
    summary = json.loads((run_folder / "summary.json").read_text())
    info = bag_info(run_folder / "bag")
    assert summary["messages_recorded"] == info.message_count > 0
    for topic in (
        "/robomr/points",
        "/robomr/detections",
        "/robomr/croa/path",
        "/robomr/gs/image",
        "/robomr/gsclo/operator_view",
        "/robomr/latency",
    ):
        assert info.topics[topic][1] > 0, topic
    assert (run_folder / "summary.png").stat().st_size > 10_000
    assert summary["errors"] == []


def test_demo_summary_holds_every_figure_the_readme_lists(run_folder: Path) -> None:
    s = json.loads((run_folder / "summary.json").read_text())
    target = s["target"]
    # the urban-clutter target starts mostly hidden (docs/sim.md: occlusion 0.876)
    assert target["before"]["occlusion"] > 0.5 and target["before"]["points_on_target"] >= 0
    assert target["plan_cycles"] >= 1  # the planner drove toward a better view
    comm = s["communication"]
    assert comm["frames"] == 7 and 0 <= comm["uploads"] <= comm["frames"]
    assert comm["energy_j"] <= comm["robomr_energy_j"]  # never worse than always uploading
    assert set(s["latency_ms"]) == {
        "scan_to_detections",
        "scan_to_path",
        "image_to_upload_decision",
    }
    assert all(v["p50"] > 0 for v in s["latency_ms"].values())
    assert {
        "/robomr/sim",
        "/robomr/lidar_detector",
        "/robomr/croa_planner",
        "/robomr/gs_render",
        "/robomr/gsclo_scheduler",
    } <= set(s["nodes"])
    assert s["robot"]["collisions"] == 0.0


def test_demo_refuses_to_overwrite_a_run(
    run_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = {p: p.stat().st_mtime_ns for p in run_folder.rglob("*")}
    assert main(["demo", "--quick", "--duration", "1", "--out", str(run_folder)]) == 2
    err = capsys.readouterr().err
    assert "is not empty" in err and "--force" in err
    assert {p: p.stat().st_mtime_ns for p in run_folder.rglob("*")} == before


class Faulty(RobomrNode):
    """Raises on every cloud: the rest of the graph must not notice."""

    NAME = "faulty"

    def __init__(self, handle: NodeHandle) -> None:
        super().__init__(handle)
        handle.create_subscription(
            "sensor_msgs/msg/PointCloud2", "/robomr/points", self._boom, "sensor_data"
        )

    def _boom(self, msg: Any) -> None:
        raise RuntimeError("faulty node")


def test_a_node_that_raises_is_reported_and_the_graph_keeps_running(tmp_path: Path) -> None:
    plan = demo_plan(DemoOptions(out=tmp_path, quick=True))
    executor = build_executor(plan.nodes, RunOptions())
    executor.add_node(Faulty)
    seen: dict[str, int] = {}
    executor.add_tap(lambda t, *_: seen.__setitem__(t, seen.get(t, 0) + 1))
    executor.spin(1.0)
    assert {e.node for e in executor.errors} == {"/faulty"}
    assert len(executor.errors) == seen["/robomr/points"] == 10
    assert seen["/robomr/detections"] == 10 and seen["/robomr/croa/path"] >= 1
