"""``robomr replay BAG [--nodes a,b] [--out DIR]``: re-run nodes on a recorded bag."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from robomr_nodes.bag import BagError
from robomr_nodes.cli.main import CliError
from robomr_nodes.params import ParameterError
from robomr_nodes.replay import ReplayError, replay
from robomr_nodes.runner import NodeStartError
from robomr_nodes.runtime.executor import GraphError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "replay",
        help="feed a bag's inputs to nodes on sim time and record their outputs",
        description="Replays the input topics of a bag recorded by robomr into the chosen nodes "
        "of the recorded graph (same parameters), on sim time, and records the nodes' outputs. "
        "The same bag and nodes give byte-identical outputs; the digest printed proves it.",
    )
    p.add_argument("bag", type=Path, help="rosbag2 folder recorded by robomr")
    p.add_argument("--nodes", default="", help="comma-separated node names (default: all)")
    p.add_argument("--out", type=Path, help="output bag folder (default BAG-replay[-N])")
    p.set_defaults(func=_run)


def _free_path(base: Path) -> Path:
    path, i = base, 1
    while path.exists():
        i += 1
        path = base.with_name(f"{base.name}-{i}")
    return path


def _run(args: argparse.Namespace) -> int:
    nodes = [n for n in args.nodes.split(",") if n] or None
    out = args.out or _free_path(args.bag.with_name(args.bag.name + "-replay"))
    try:
        result = replay(args.bag, nodes, out)
    except (BagError, ReplayError, ParameterError, NodeStartError, GraphError) as err:
        raise CliError(str(err)) from None
    for note in result.notes:
        print(f"robomr replay: note: {note}", file=sys.stderr)
    print(f"inputs:  {', '.join(result.inputs)} ({result.messages_in} messages)")
    print(f"outputs: {', '.join(result.outputs)} ({result.messages_out} messages) -> {result.out}")
    print(f"callback errors: {result.errors}")
    print(f"output digest (sha256): {result.digest}")
    return 1 if result.errors else 0
