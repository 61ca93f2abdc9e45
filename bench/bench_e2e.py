"""``robomr bench e2e``: end-to-end latency per stage of the whole robot graph, the demo's wall
time and peak memory, with and without bag recording (side by side in one process)."""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil

from bench.report import BenchReport, Table
from robomr_nodes.bag import BagRecorder
from robomr_nodes.demo.latency import STAGES, LatencyMonitor
from robomr_nodes.demo.run import NAMESPACE, DemoOptions, demo_plan
from robomr_nodes.runner import RunOptions, build_executor

DESCRIPTION = (
    "end-to-end latency per stage (scan -> detections -> path, image -> upload decision), "
    "wall time and peak memory of the demo graph, recording on vs off"
)
# sensor periods of config/robomr.yaml, for the real-time margins
PERIOD_MS = {"scan_to_detections": 100.0, "scan_to_path": 100.0, "image_to_upload_decision": 200.0}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--duration", type=float, default=10.0, help="sim time per run (s)")
    parser.add_argument("--scenario", default="urban-clutter", help="scenario")
    parser.add_argument("--quick", action="store_true", help="the demo's --quick settings")


def _run_graph(args: argparse.Namespace, record: bool, tmp: Path, duration_s: float) -> dict:
    """One run of the graph: startup and spin wall times, peak RSS, stage latencies."""
    plan = demo_plan(DemoOptions(out=tmp, scenario=args.scenario, quick=args.quick))
    latency = LatencyMonitor(NAMESPACE)
    recorder = BagRecorder(tmp / f"bag-{time.monotonic_ns()}") if record else None
    taps = (latency.tap,) + ((recorder.tap,) if recorder else ())
    process = psutil.Process()
    rss = [process.memory_info().rss]
    start = time.perf_counter()
    try:
        executor = build_executor(plan.nodes, RunOptions(), taps)
        started = time.perf_counter()
        executor.spin(duration_s, on_advance=lambda _t: rss.append(process.memory_info().rss))
        executor.shutdown()
        stopped = time.perf_counter()
    finally:
        if recorder is not None:
            recorder.close()
    return {
        "startup_s": started - start,
        "wall_s": stopped - started,
        "peak_rss_mb": max(rss) / 2**20,
        "latency": latency.latencies_ms(),
        "errors": len(executor.errors),
    }


def run(args: argparse.Namespace) -> BenchReport:
    if args.duration <= 0:
        raise ValueError("--duration must be > 0 s")
    with tempfile.TemporaryDirectory() as tmp:
        # warm-up (discarded): first calls of spconv, cvxpy and the rasterizer are slower
        _run_graph(args, False, Path(tmp), min(1.0, args.duration))
        runs = {
            "recording off": _run_graph(args, False, Path(tmp), args.duration),
            "recording on (MCAP)": _run_graph(args, True, Path(tmp), args.duration),
        }
    stages = Table(
        "end-to-end latency per frame (wall ms, single-threaded executor)",
        ["stage", "run", "frames", "p50_ms", "p90_ms", "max_ms"],
    )
    for name in STAGES:
        for label, r in runs.items():
            lat = r["latency"][name]
            if len(lat):
                stages.add(
                    name,
                    label,
                    len(lat),
                    float(np.percentile(lat, 50)),
                    float(np.percentile(lat, 90)),
                    float(lat.max()),
                )
    totals = Table(
        f"{args.duration:g} s of sim time",
        ["run", "startup_s", "wall_s", "real_time_factor", "peak_rss_mb", "callback_errors"],
    )
    for label, r in runs.items():
        totals.add(
            label,
            r["startup_s"],
            r["wall_s"],
            args.duration / r["wall_s"],
            r["peak_rss_mb"],
            r["errors"],
        )
    off, on = runs["recording off"], runs["recording on (MCAP)"]
    ratios = {"wall time, recording on / off": on["wall_s"] / off["wall_s"]}
    for name, period in PERIOD_MS.items():
        if len(off["latency"][name]):
            p90 = float(np.percentile(off["latency"][name], 90))
            ratios[f"{name} p90 / sensor period ({period:g} ms)"] = p90 / period
    return BenchReport(
        "e2e",
        {"scenario": args.scenario, "duration_s": args.duration, "quick": args.quick},
        [stages, totals],
        ratios,
        notes=[
            "latency: wall time from the sensor message's publish to the first output with "
            "the same stamp, in one process on one thread: it includes waiting behind the "
            "other callbacks due at the same sim instant (as on a single-core robot), not "
            "transport",
            "peak_rss_mb: the process's resident memory sampled at every sim-time step",
            "startup_s: building the graph (scene, detector, planner compile, Gaussian map); "
            "wall_s: running it; a warm-up run before them is discarded",
        ],
    )
