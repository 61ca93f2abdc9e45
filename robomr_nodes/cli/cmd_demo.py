"""``robomr demo``: the whole robot graph on a built-in scenario, then a summary.

Simulator -> lidar detector -> CROA motion-assisted detection of the occluded target (the robot
drives the planned paths and detects again) -> camera + Gaussian-splatting render -> GSCLO
upload/power decisions. Writes DIR/bag (rosbag2, MCAP), DIR/summary.json, DIR/summary.png.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from robomr_nodes.cli.cmd_launch import default_run_dir
from robomr_nodes.cli.main import CliError
from robomr_nodes.cli.progress import sim_time_bar


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="run the whole robot graph on a built-in scenario",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out", type=Path, help="run folder (default runs/<time>-demo)")
    p.add_argument(
        "--scenario", default="urban-clutter", help="scenario name or file (robomr sim list)"
    )
    p.add_argument("--seed", type=int, default=-1, help="scenario seed (-1: its default)")
    p.add_argument("--duration", type=float, default=20.0, help="sim time to run (s)")
    p.add_argument(
        "--quick",
        action="store_true",
        help="small sensors and a coarse map: a first look in seconds",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="write into a non-empty --out folder, replacing its bag/, summary.json, "
        "summary.png (and service/)",
    )
    p.add_argument(
        "--offload",
        action="store_true",
        help="detection and the operator view on local inference-service replicas "
        "through the edge bridge",
    )
    p.add_argument(
        "--offload-render",
        action="store_true",
        help="with --offload, the operator view too (rendered by the service from the "
        "scenario's fixed map instead of gs_render's learned one)",
    )
    p.add_argument("--replicas", type=int, default=1, help="service replicas with --offload")
    p.add_argument(
        "--kill-service-at",
        type=float,
        metavar="S",
        help="with --offload: kill every replica S seconds of sim time into the run",
    )
    p.add_argument("args", nargs="*", metavar="name:=value", help="more launch arguments")
    p.set_defaults(func=_run)


def _fmt(value: Any, unit: str = "", digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}{unit}"
    return f"{value}{unit}"


def print_summary(s: dict[str, Any]) -> None:
    """The demo's summary table on stdout."""
    t, comm, robot = s["target"], s["communication"], s["robot"]
    before, after = t["before"], t["after"]
    last = t["last_detection"] or {}
    rows = [
        ("target found (MAD)", f"{t['found']} ({t['mad_action']}, {t['plan_cycles']} plans)"),
        ("target occlusion", f"{_fmt(before.get('occlusion'))} -> {_fmt(after.get('occlusion'))}"),
        (
            "lidar points on target",
            f"{_fmt(before.get('points_on_target'))} -> {_fmt(after.get('points_on_target'))}",
        ),
        (
            "target detected, first/last 10 scans",
            f"{_fmt(t['detection_rate_first_10_scans'])} / "
            f"{_fmt(t['detection_rate_last_10_scans'])}",
        ),
        (
            "detection error (centre, yaw)",
            f"{_fmt(last.get('centre_error_m'), ' m')}, "
            f"{_fmt(last.get('yaw_error_rad'), ' rad', 3)}",
        ),
        (
            "robot: driven, collisions",
            f"{_fmt(robot.get('odometer_m'), ' m', 1)}, {_fmt(robot.get('collisions'), '', 0)}",
        ),
        (
            "uplink energy GSCLO vs always-upload",
            f"{_fmt(comm.get('energy_j', 0) * 1e3, ' mJ', 3)} vs "
            f"{_fmt(comm.get('robomr_energy_j', 0) * 1e3, ' mJ', 3)} "
            f"(x{_fmt(comm.get('energy_ratio_robomr_over_gsclo'), '', 1)})",
        ),
        ("frames uploaded", f"{comm.get('uploads')} of {comm.get('frames')}"),
        ("operator view SSIM (mean)", _fmt(comm.get("operator_view_ssim_mean"), "", 3)),
        (
            "GS render PSNR / SSIM (mean)",
            f"{_fmt(comm.get('render_psnr_db_mean'), ' dB', 1)} / "
            f"{_fmt(comm.get('render_ssim_mean'), '', 3)}",
        ),
    ]
    rows += [
        (f"latency {k} (p50/p90)", f"{v['p50']:.0f} / {v['p90']:.0f} ms")
        for k, v in s["latency_ms"].items()
    ]
    rows += [
        (
            f"node {k}",
            f"{v['callbacks']} callbacks, {v['mean_ms']:.1f} ms mean, {v['p90_ms']:.1f} ms p90",
        )
        for k, v in s["nodes"].items()
    ]
    rows.append(
        (
            "wall time, peak memory",
            f"{s['wall_time_s']:.0f} s for {s['sim_time_s']:.0f} s sim, "
            f"{s['peak_memory_mb']:.0f} MB",
        )
    )
    width = max(len(k) for k, _ in rows)
    print(f"robomr demo: {s['scenario']} (seed {s['seed']})")
    for key, value in rows:
        print(f"  {key.ljust(width)}  {value}")
    for key, value in offload_rows(s.get("offload")):
        print(f"  {key.ljust(width)}  {value}")
    for err in s["errors"][:5]:
        print(f"  callback error in {err['node']} ({err['where']}): {err['error']}")


def offload_rows(o: dict[str, Any] | None) -> list[tuple[str, str]]:
    """Summary rows of ``robomr demo --offload``."""
    if not o:
        return []
    killed = o["service_killed_at_s"]
    rows = [
        (
            "offload: replicas, service killed",
            f"{o['replicas']} ({o['policy']}), "
            + ("no" if killed is None else f"at {killed:.1f} s sim time"),
        ),
        ("offload: frames lost", f"{o['frames_lost']} of {o['clouds']} clouds"),
    ]
    for task in ("detect", "render"):
        t = o.get(task)
        if t:
            reasons = ", ".join(f"{k} {v}" for k, v in t["fallback_reasons"].items()) or "none"
            rows.append(
                (
                    f"offload {task}: ratio, RTT p50/p90",
                    f"{t['offload_ratio']:.2f} ({t['offloaded']} of {t['frames']}), "
                    f"{t['rtt_ms_p50']:.0f} / {t['rtt_ms_p90']:.0f} ms",
                )
            )
            rows.append((f"offload {task}: fallbacks", f"{t['fallbacks']} ({reasons})"))
    return rows


def _run(args: argparse.Namespace) -> int:
    from robomr_nodes.bag import BagError
    from robomr_nodes.demo.offload import OffloadDemoError, OffloadOptions
    from robomr_nodes.demo.run import DemoError, DemoOptions, run_demo
    from robomr_nodes.launch_yaml import LaunchError, parse_launch_args
    from robomr_nodes.outputs import OutputError
    from robomr_nodes.params import ParameterError
    from robomr_nodes.runner import NodeStartError
    from robomr_nodes.runtime.executor import GraphError

    try:
        options = DemoOptions(
            out=args.out or default_run_dir("demo"),
            scenario=args.scenario,
            seed=args.seed,
            duration_s=args.duration,
            quick=args.quick,
            launch_args=tuple(parse_launch_args(args.args).items()),
            force=args.force,
            offload=OffloadOptions(args.replicas, args.kill_service_at, render=args.offload_render)
            if args.offload
            else None,
        )
        if (args.kill_service_at is not None or args.offload_render) and not args.offload:
            raise DemoError("--kill-service-at and --offload-render need --offload")
        from robomr_nodes.runtime.executor import SIM_START_NS

        on_advance, close = sim_time_bar(SIM_START_NS, options.duration_s, "demo")
        try:
            result = run_demo(options, on_advance)
        finally:
            close()
    except (
        DemoError,
        LaunchError,
        ParameterError,
        NodeStartError,
        GraphError,
        BagError,
        OutputError,
        OffloadDemoError,
    ) as err:
        raise CliError(str(err)) from None
    print_summary(result.summary)
    print(f"run folder: {result.out}  (bag/, summary.json, summary.png)")
    return 1 if result.summary["errors"] else 0
