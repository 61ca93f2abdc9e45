"""The ``robomr`` command line: one sub-command module per command group."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import signal
import sys
import traceback

from robomr_nodes import shutdown

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
    "robomr_nodes.cli.cmd_mapmatch",
    "robomr_nodes.cli.cmd_lm",
    "robomr_nodes.cli.cmd_serve",
    "robomr_nodes.cli.cmd_autoscale",
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


def _say(text: str) -> None:
    """One line on stderr; a closed terminal (SIGHUP) or pipe must not turn it into a crash."""
    with contextlib.suppress(OSError, ValueError):
        print(text, file=sys.stderr, flush=True)


def _silence_stdout() -> None:
    """After EPIPE on stdout (``robomr ... | head``): point stdout at /dev/null so Python's
    final flush does not raise again (the recipe of Python's signal module docs)."""
    with contextlib.suppress(OSError, ValueError, AttributeError):  # not a real file: nothing
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # to flush at exit


def _dispatch(args: argparse.Namespace) -> int:
    name = f"robomr {args.command}"
    try:
        return int(args.func(args) or 0)
    except CliError as err:
        _say(f"{name}: error: {err}")
        return 2
    except shutdown.Interrupted as err:
        _say(f"{name}: stopped by {err.name}" + (f"; {err.detail}" if err.detail else ""))
        return err.exit_code
    except KeyboardInterrupt:
        _say(f"{name}: interrupted")
        return 130
    except BrokenPipeError:
        _silence_stdout()
        return 128 + signal.SIGPIPE  # what a shell reports for a reader that went away
    except OSError as err:
        if err.filename is None:
            raise
        _say(f"{name}: error: {err.filename}: {err.strerror or err}")
        return 2


def main(argv: list[str] | None = None) -> int:
    """Runs one command; returns its exit code: 0 ok, 1 ran with callback errors, 2 error,
    3 internal error (a bug), 128 + N stopped by signal N (SIGINT, SIGTERM, SIGHUP, SIGPIPE)."""
    with shutdown.handling_signals():
        try:
            # a signal during start-up waits until the imports are done: one arriving inside
            # a C extension's initialisation would surface as an ImportError
            with shutdown.critical():
                parser = build_parser()
            args = parser.parse_args(argv)
        except KeyboardInterrupt as err:
            stopped = err.name if isinstance(err, shutdown.Interrupted) else "SIGINT"
            _say(f"robomr: stopped by {stopped} while starting")
            return err.exit_code if isinstance(err, shutdown.Interrupted) else 130
        logging.basicConfig(
            level=logging.DEBUG if args.verbose else logging.INFO,
            format="[%(levelname)s] [%(name)s] %(message)s",
            stream=sys.stderr,
            force=True,
        )
        try:
            return _dispatch(args)
        except Exception as err:  # a bug: one line, the traceback with -v
            if args.verbose:
                traceback.print_exc()
            _say(
                f"robomr {args.command}: internal error (a bug, please report it): "
                f"{type(err).__name__}: {(str(err).strip().splitlines() or [''])[0]}"
                + ("" if args.verbose else " (-v: traceback)")
            )
            return 3


if __name__ == "__main__":
    sys.exit(main())
