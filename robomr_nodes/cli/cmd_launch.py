"""``robomr launch FILE [name:=value ...]``: run a YAML launch file on the embedded backend."""

from __future__ import annotations

import argparse
import math
from datetime import datetime
from pathlib import Path

from robomr_nodes.bag import BagError, check_new_bag_path
from robomr_nodes.cli.main import CliError
from robomr_nodes.cli.progress import sim_time_bar
from robomr_nodes.launch_yaml import LaunchError, load_launch, parse_launch_args
from robomr_nodes.params import ParameterError
from robomr_nodes.runner import NodeStartError, RunOptions, RunResult, run_plan
from robomr_nodes.runtime.executor import GraphError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "launch",
        help="run a ROS 2 YAML launch file on the embedded backend",
        description="Runs every robomr node of a ROS 2 YAML launch file in this process "
        "(the same file `ros2 launch` uses) and records all topics to a rosbag2 (MCAP).",
    )
    p.add_argument("file", type=Path, help="launch file, e.g. launch/robomr.launch.yaml")
    p.add_argument("args", nargs="*", metavar="name:=value", help="launch arguments")
    p.add_argument("--duration", type=float, default=10.0, help="node time to run (s)")
    p.add_argument(
        "--clock",
        choices=["sim", "wall"],
        default="sim",
        help="sim: deterministic, as fast as possible; wall: real time",
    )
    p.add_argument("--record", type=Path, help="bag folder (default runs/<time>-launch/bag)")
    p.add_argument("--no-record", action="store_true", help="record nothing")
    p.set_defaults(func=_run)


def default_run_dir(kind: str) -> Path:
    """``runs/<time>-<kind>``, with ``-2``, ``-3``, ... when runs start within one second."""
    base = Path("runs") / f"{datetime.now():%Y%m%d-%H%M%S}-{kind}"
    path, i = base, 1
    while path.exists():
        i += 1
        path = base.with_name(f"{base.name}-{i}")
    return path


def print_run_report(result: RunResult) -> None:
    """Topics with their publishers/subscribers, per-node callback times, callback errors."""
    print("topics:")
    for name, info in sorted(result.executor.topics().items()):
        print(
            f"  {name}  [{info.typename}]  pub={info.publishers or '-'}  "
            f"sub={info.subscribers or '-'}"
        )
    print("nodes:")
    for node, st in sorted(result.executor.stats.items()):
        mean_ms = 1e3 * st.wall_s / st.callbacks if st.callbacks else 0.0
        print(f"  {node}: {st.callbacks} callbacks, {mean_ms:.2f} ms mean, {st.errors} errors")
    for err in result.executor.errors[:10]:
        print(f"  error in {err.node} ({err.where}) at t={err.time_ns / 1e9:.3f} s: {err.error}")
    if result.bag:
        print(f"recorded {result.messages_recorded} messages to {result.bag}")


def check_duration(duration_s: float) -> None:
    """``--duration``: a finite number of seconds > 0 (nan and inf are refused)."""
    if not (math.isfinite(duration_s) and duration_s > 0):
        raise CliError(f"--duration must be a finite number of seconds > 0, got {duration_s}")


def _run(args: argparse.Namespace) -> int:
    check_duration(args.duration)
    if args.record is not None and args.no_record:
        raise CliError("--record and --no-record contradict each other")
    record = None if args.no_record else (args.record or default_run_dir("launch") / "bag")
    try:
        if record is not None:
            check_new_bag_path(record)  # before anything runs
        plan = load_launch(args.file, parse_launch_args(args.args))
        options = RunOptions(clock=args.clock, duration_s=args.duration, record=record)
        on_advance, close = sim_time_bar(options.start_ns, args.duration, "launch")
        try:
            result = run_plan(plan, options, on_advance if args.clock == "sim" else None)
        finally:
            close()
    except (LaunchError, ParameterError, GraphError, BagError, NodeStartError) as err:
        raise CliError(str(err)) from None
    print_run_report(result)
    return 1 if result.executor.errors else 0
