"""``robomr serve``: one replica of the inference service (detector, Gaussian renderer, LM).

Binary requests (JSON header + raw little-endian arrays) on POST /v1/detect and /v1/render,
bearer-token auth, /healthz, /readyz, Prometheus /metrics, bucket batching (BucketServe) or a
baseline policy, brownout (BrownoutServe). ``--models lm``: the MoE language model on OpenAI's
POST /v1/completions (streaming) and GET /v1/models (docs/lm.md). SIGTERM drains gracefully.
See docs/offload.md.
"""

from __future__ import annotations

import argparse

from robomr_nodes.cli.main import CliError


def register(sub: argparse._SubParsersAction) -> None:
    from offload.serving.cli import add_arguments

    p = sub.add_parser(
        "serve",
        help="run the inference service (one replica)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(p)
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from offload.serving.cli import serve_from_args
    from offload.serving.server import ServeError

    try:
        return serve_from_args(args)
    except ServeError as err:
        raise CliError(str(err)) from None
