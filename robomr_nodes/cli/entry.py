"""The ``robomr`` console script.

Until :func:`robomr_nodes.cli.main.main` installs its signal handlers, Ctrl-C ends the process
quietly, as it ends a C program, instead of printing a ``KeyboardInterrupt`` traceback from
the middle of an import.
"""

from __future__ import annotations

import signal


def main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    from robomr_nodes.cli.main import main as cli_main

    return cli_main()
