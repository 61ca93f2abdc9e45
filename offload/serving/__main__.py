"""``python -m offload.serving``: one service replica (what ``robomr serve`` runs; used by
``offload.replicas`` to start replica processes without the robot-side CLI)."""

from __future__ import annotations

import argparse
import logging
import sys

from offload.serving.cli import add_arguments, serve_from_args
from offload.serving.server import ServeError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m offload.serving", description=__doc__)
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(levelname)s] [%(name)s] %(message)s")
    try:
        return serve_from_args(args)
    except ServeError as err:
        print(f"offload.serving: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
