"""``robomr demo``: the robot graph on the built-in scenario, with a run folder at the end.

Writes DIR/bag (rosbag2, MCAP), DIR/summary.json and DIR/summary.png and prints a summary.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from geometry.boxes import bev_corners
from robomr_nodes.bag import read_bag
from robomr_nodes.cli.cmd_launch import default_run_dir, print_run_report
from robomr_nodes.cli.main import CliError
from robomr_nodes.cli.progress import sim_time_bar
from robomr_nodes.convert.detections import detections_to_boxes
from robomr_nodes.convert.pointcloud import cloud_to_xyz
from robomr_nodes.launch_yaml import load_launch, package_share
from robomr_nodes.runner import RunOptions, RunResult, run_plan


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo", help="run the robot graph on the built-in scenario", description=__doc__
    )
    p.add_argument("--out", type=Path, help="run folder (default runs/<time>-demo)")
    p.add_argument("--duration", type=float, default=5.0, help="sim time to run (s)")
    p.add_argument("--seed", type=int, default=0, help="scenario seed")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    if args.duration <= 0:
        raise CliError(f"--duration must be > 0 s, got {args.duration}")
    out = args.out or default_run_dir("demo")
    if (out / "bag").exists():
        raise CliError(f"{out / 'bag'} exists; choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    plan = load_launch(
        package_share("robomr") / "launch" / "robomr.launch.yaml", {"seed": str(args.seed)}
    )
    options = RunOptions(duration_s=args.duration, record=out / "bag")
    on_advance, close = sim_time_bar(options.start_ns, args.duration, "demo")
    try:
        result = run_plan(plan, options, on_advance)
    finally:
        close()
    summary = _summary(result)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    _plot(out / "bag", out / "summary.png")
    print_run_report(result)
    print(f"run folder: {out}  (bag/, summary.json, summary.png)")
    return 1 if result.executor.errors else 0


def _summary(result: RunResult) -> dict:
    topics = result.executor.topics()
    counts: dict[str, int] = {}
    for msg in read_bag(result.bag):
        counts[msg.topic] = counts.get(msg.topic, 0) + 1
    return {
        "topics": {
            t: {"type": i.typename, "messages": counts.get(t, 0)} for t, i in sorted(topics.items())
        },
        "nodes": {
            n: {
                "callbacks": s.callbacks,
                "mean_ms": 1e3 * s.wall_s / max(s.callbacks, 1),
                "errors": s.errors,
            }
            for n, s in sorted(result.executor.stats.items())
        },
        "messages_recorded": result.messages_recorded,
        "errors": [
            {"node": e.node, "where": e.where, "error": e.error} for e in result.executor.errors
        ],
    }


def _plot(bag: Path, png: Path) -> None:
    last_cloud, last_boxes = None, None
    for msg in read_bag(bag, ["/robomr/points", "/robomr/clusters"]):
        if msg.topic.endswith("points"):
            last_cloud = msg.decode()
        else:
            last_boxes = msg.decode()
    fig, ax = plt.subplots(figsize=(7, 7))
    if last_cloud is not None:
        pts = cloud_to_xyz(last_cloud)
        ax.scatter(pts[:, 0], pts[:, 1], s=0.3, c=pts[:, 2], cmap="viridis")
    if last_boxes is not None:
        boxes = detections_to_boxes(last_boxes)
        if len(boxes):
            for c in bev_corners(boxes.boxes):
                ax.plot(*np.vstack([c, c[:1]]).T, color="red", lw=1.5)
    ax.set_aspect("equal")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.set_title("last cloud (bird's-eye view) and detected clusters")
    fig.savefig(png, dpi=110, bbox_inches="tight")
    plt.close(fig)
