"""The ``robomr`` command line: one sub-command module per command group."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

# Each module defines ``register(subparsers)`` which adds its parser(s) and sets
# ``func(args) -> int`` as the handler. Add one line per command group.
COMMAND_MODULES = [
    "robomr_nodes.cli.cmd_demo",
    "robomr_nodes.cli.cmd_launch",
    "robomr_nodes.cli.cmd_replay",
    "robomr_nodes.cli.cmd_bench",
    "robomr_nodes.cli.cmd_sim",
    "robomr_nodes.cli.cmd_perception",
    "robomr_nodes.cli.cmd_cluster",
]


class CliError(RuntimeError):
    """A command failed for a reason the user can fix; printed without a traceback."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="robomr",
        description="robomr: motion-assisted lidar detection and robotic mixed reality "
        "on ROS 2, with an embedded runtime and built-in simulator.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="[%(levelname)s] [%(name)s] %(message)s",
        stream=sys.stderr,
    )
    try:
        return int(args.func(args) or 0)
    except CliError as err:
        print(f"robomr {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
