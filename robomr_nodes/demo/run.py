"""Runs the robot graph of ``launch/robomr.launch.yaml`` on a scenario and writes a run folder.

The folder holds ``bag/`` (rosbag2, MCAP: every topic), ``summary.json`` (figures of merit, see
:mod:`robomr_nodes.demo.summary`) and ``summary.png`` (:mod:`robomr_nodes.demo.figure`).
"""

from __future__ import annotations

import json
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from robomr_nodes.bag import BagRecorder
from robomr_nodes.demo.figure import draw_summary
from robomr_nodes.demo.latency import LatencyMonitor
from robomr_nodes.demo.offload import OffloadOptions, OffloadSession
from robomr_nodes.demo.record import RunRecord
from robomr_nodes.demo.summary import summarize
from robomr_nodes.launch_yaml import LaunchPlan, load_launch, package_share
from robomr_nodes.outputs import OutputError, check_output_dir, clear_outputs, write_file
from robomr_nodes.params import ParamOverride
from robomr_nodes.runner import (
    GRAPH_KEY,
    START_KEY,
    RunOptions,
    TapBuffer,
    build_executor,
    finish_recording,
    graph_to_yaml,
    spin_recorded,
)

NAMESPACE = "/robomr"
# --quick: small sensors and a coarse map, for tests and a first look (seconds, not minutes)
QUICK_PARAMS: dict[str, dict[str, Any]] = {
    "sim": {
        "lidar_beams": 16,
        "lidar_azimuth_resolution_deg": 0.4,
        "camera_width_px": 96,
        "camera_height_px": 72,
    },
    "gs_render": {"spacing_m": 1.0},
    "edge_bridge": {"spacing_m": 1.0},
}


# what the demo writes into its folder (service/: the replicas' logs of --offload)
OUTPUTS = ("bag", "summary.json", "summary.png", "service")


class DemoError(ValueError):
    """Bad demo options (the message says which and why)."""


@dataclass(frozen=True)
class DemoOptions:
    """What to run.

    Attributes:
        out: run folder, new or empty (``force``: replace the demo's outputs in it).
        scenario: built-in scenario name or scenario/scene file.
        seed: scenario seed, -1 for the scenario's default.
        duration_s: sim time to run (s), > 0.
        quick: small sensors and a coarse map (see QUICK_PARAMS).
        launch_args: further name:=value launch arguments.
        offload: run detection and the operator view on local service replicas through the
            edge bridge (None: on the robot, as usual).
    """

    out: Path
    scenario: str = "urban-clutter"
    seed: int = -1
    duration_s: float = 20.0
    quick: bool = False
    launch_args: tuple[tuple[str, str], ...] = ()
    force: bool = False
    offload: OffloadOptions | None = None

    def __post_init__(self) -> None:
        if not 0.0 < self.duration_s <= 3600.0:  # also false for nan
            raise DemoError(f"duration_s={self.duration_s} must be in (0, 3600] s")


@dataclass
class DemoResult:
    out: Path
    summary: dict[str, Any]


def demo_plan(options: DemoOptions) -> LaunchPlan:
    """The launch plan of the demo: the shipped launch file with the options applied."""
    args = {"scenario": options.scenario, "seed": str(options.seed), **dict(options.launch_args)}
    if options.offload is not None:
        args["use_offload"] = "true"
        args["offload_render"] = "true" if options.offload.render else "false"
    plan = load_launch(package_share("robomr") / "launch" / "robomr.launch.yaml", args)
    if options.quick:
        for spec in plan.nodes:
            for name, value in QUICK_PARAMS.get(spec.name, {}).items():
                spec.params[name] = ParamOverride(value, "robomr demo --quick")
    return plan


def run_demo(options: DemoOptions, on_advance: Callable[[int], None] | None = None) -> DemoResult:
    """Runs the graph for ``options.duration_s`` of sim time and writes the run folder.

    Nothing is written until every node has started (scenario, seed and parameters are valid).

    Raises:
        DemoError: the run folder holds earlier results (and ``force`` is off) or is unusable.
        LaunchError, ParameterError, NodeStartError: bad launch arguments, parameters, scenario.
        BagWriteError: the bag could not be written (the run stopped; the bag keeps the rest).
        shutdown.Interrupted: a signal stopped the run (the bag was closed, no summary).
    """
    try:
        check_output_dir(options.out, options.force, OUTPUTS)
    except OutputError as err:
        raise DemoError(str(err)) from None
    plan = demo_plan(options)
    offload = OffloadSession(options.offload, NAMESPACE) if options.offload else None
    try:
        if offload is not None:
            offload.prepare(plan)  # replicas start; their files stay in a temporary folder
        result = _run(options, plan, offload, on_advance)
        if offload is not None:
            offload.keep_logs(options.out / "service")
        return result
    finally:
        if offload is not None:
            offload.close()


def _run(
    options: DemoOptions,
    plan: LaunchPlan,
    offload: OffloadSession | None,
    on_advance: Callable[[int], None] | None,
) -> DemoResult:
    run = RunOptions(duration_s=options.duration_s, record=options.out / "bag")
    record, latency, buffer = RunRecord(NAMESPACE), LatencyMonitor(NAMESPACE), TapBuffer()
    wall = time.perf_counter()
    executor = build_executor(plan.nodes, run, (buffer.tap, record.tap, latency.tap))
    recorder = None
    try:
        if options.force:
            clear_outputs(options.out, OUTPUTS)
        recorder = BagRecorder(
            run.record,
            custom_data={
                GRAPH_KEY: graph_to_yaml(plan.nodes),
                START_KEY: str(run.start_ns),
                "robomr.demo": json.dumps(
                    {
                        "scenario": options.scenario,
                        "seed": options.seed,
                        "quick": options.quick,
                        "offload": options.offload is not None,
                    }
                ),
            },
        )
        buffer.forward(recorder.tap)
        latency.attach_publisher(executor)
        if offload is not None:
            offload.attach(executor, run.start_ns)
        spin_recorded(executor, options.duration_s, recorder, on_advance)
    finally:
        executor.shutdown()
        if recorder is not None:
            recorder.close()
    finish_recording(recorder)
    wall_s = time.perf_counter() - wall
    sim_node = executor.nodes[f"{NAMESPACE}/sim"]
    target = sim_node.scene.target_name
    detector = executor.nodes.get(f"{NAMESPACE}/lidar_detector") or executor.nodes.get(
        f"{NAMESPACE}/edge_bridge"
    )
    min_score = detector.params.score_threshold if detector is not None else 0.3
    summary = {
        "scenario": options.scenario,
        "seed": options.seed,
        "quick": options.quick,
        "sim_time_s": options.duration_s,
        "wall_time_s": wall_s,
        "peak_memory_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "messages_recorded": recorder.count,
        **summarize(record, executor, target, latency.latencies_ms(), min_score),
    }
    if offload is not None:
        summary["offload"] = offload.summary(executor, run.start_ns)
    write_file(options.out / "summary.json", json.dumps(summary, indent=2) + "\n")
    robot = sim_node.robot.config
    png = options.out / "summary.png"
    try:
        draw_summary(record, target, (robot.lidar_x_m, robot.lidar_z_m), run.start_ns, png)
    except OSError as err:
        raise OutputError(f"cannot write {png}: {err.strerror or err}") from None
    return DemoResult(options.out, summary)
