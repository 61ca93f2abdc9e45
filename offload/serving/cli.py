"""The command line of a replica (``robomr serve``, ``python -m offload.serving``).

Kept apart from the server so that building the ``robomr`` parser imports no web framework.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from perception.config import PRECISIONS

if TYPE_CHECKING:
    from offload.serving.config import ServeConfig

POLICIES = ("bucket", "static", "fifo", "none")  # offload.serving.config.POLICIES (a test checks)
MODELS = ("detector", "gs_render", "lm")  # offload.serving.model.MODEL_FACTORIES (a test checks)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``robomr serve`` / ``python -m offload.serving``."""
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    p.add_argument("--port", type=int, default=8700, help="TCP port; 0 picks a free one")
    p.add_argument(
        "--token-file", help="file holding the bearer token (else $ROBOMR_SERVICE_TOKEN)"
    )
    p.add_argument(
        "--no-auth", action="store_true", help="run without a token (loopback addresses only)"
    )
    p.add_argument("--models", default="detector", help=f"comma-separated, of: {', '.join(MODELS)}")
    p.add_argument("--policy", default="bucket", choices=POLICIES, help="batching policy")
    p.add_argument(
        "--slo-ms", action="append", default=[], metavar="MODEL=MS", help="latency objective"
    )
    p.add_argument(
        "--static-max-batch", type=int, help="static policy batch (default: from the budget)"
    )
    p.add_argument(
        "--static-delay-ms", type=float, default=10.0, help="static policy queue delay (ms)"
    )
    p.add_argument(
        "--static-timeout-ms",
        type=float,
        default=0.0,
        help="static policy: drop a request queued this long (ms; 0: only past its deadline)",
    )
    p.add_argument("--no-brownout", action="store_true", help="keep every request on the full path")
    p.add_argument("--brownout-period", type=float, default=5.0, help="brownout control period (s)")
    p.add_argument(
        "--brownout-decrease",
        type=float,
        default=0.8,
        help="brownout: tau is multiplied by this on a violated period, in (0, 1)",
    )
    p.add_argument(
        "--brownout-law",
        default="slack",
        choices=("slack", "paper"),
        help="slack: per request from its predicted finish (default); paper: BrownoutServe's dial",
    )
    p.add_argument(
        "--brownout-headroom",
        type=float,
        default=0.8,
        help="slack law: share of a request's budget the full path may use, in (0, 1]",
    )
    p.add_argument(
        "--brownout-rescue",
        action="store_true",
        help="offer the brownout path to a request the full path cannot serve in time",
    )
    p.add_argument(
        "--detector-brownout-range-m",
        type=float,
        help="detector brownout path: half-width of its grid (m; default 60%% of the model's)",
    )
    p.add_argument(
        "--render-brownout-scale",
        type=int,
        default=2,
        help="gs_render brownout path: resolution divisor, in [2, 8] (1 with a decimated map)",
    )
    p.add_argument(
        "--render-brownout-keep",
        type=float,
        default=1.0,
        help="gs_render brownout path: share of the map's Gaussians rendered, in (0, 1]",
    )
    p.add_argument(
        "--memory-budget-mb", type=float, default=512.0, help="activation memory per batch"
    )
    p.add_argument(
        "--max-queued", type=int, default=64, help="queued requests per model before 429"
    )
    p.add_argument("--max-body-mb", type=float, default=64.0, help="largest request body")
    p.add_argument("--detector-model", default="", help="detector weights (default: the shipped)")
    p.add_argument(
        "--detector-precision",
        choices=PRECISIONS,
        default="float32",
        help="detector neck and head arithmetic (auto: bfloat16 where the CPU has it natively; "
        "default float32, as the lidar_detector node)",
    )
    p.add_argument("--render-map", default="", help="3DGS .ply map of gs_render")
    p.add_argument("--lm-model", default="", help="lm weights (default: models/lm/mixsga)")
    p.add_argument("--lm-hf-dir", default="", help="serve a local Hugging Face checkpoint as lm")
    p.add_argument(
        "--lm-tpot-slo-ms", type=float, default=200.0, help="lm time-per-output-token objective"
    )
    p.add_argument(
        "--lm-no-prefill-guard",
        action="store_true",
        help="lm: admit prefills without the decode-protecting guard (offload.models.lm."
        "prefill_guard)",
    )
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (0: torch's default)")
    p.add_argument("--ready-file", type=Path, help="write {url, pid} here once listening")


def config_from_args(args: argparse.Namespace) -> ServeConfig:
    """The ServeConfig of parsed options.

    Raises:
        ServeError: a malformed or out-of-range option.
    """
    from offload.serving.config import ServeConfig, ServeConfigError
    from offload.serving.server import ServeError
    from offload.serving.wire import WireError, WireLimits

    try:
        slo = {}
        for item in args.slo_ms:
            name, _, ms = item.partition("=")
            slo[name] = float(ms) / 1e3
        models = tuple(m.strip() for m in args.models.split(",") if m.strip())
        return ServeConfig(
            models=models,
            policy=args.policy,
            slo_s=slo,
            brownout=not args.no_brownout,
            brownout_period_s=args.brownout_period,
            brownout_decrease_factor=args.brownout_decrease,
            brownout_rescue=args.brownout_rescue,
            brownout_law=args.brownout_law,
            brownout_headroom=args.brownout_headroom,
            memory_budget_bytes=args.memory_budget_mb * 2**20,
            max_queued=args.max_queued,
            static_max_batch=args.static_max_batch,
            static_max_delay_s=args.static_delay_ms / 1e3,
            static_queue_timeout_s=args.static_timeout_ms / 1e3 if args.static_timeout_ms else None,
            limits=WireLimits(max_body_bytes=int(args.max_body_mb * 2**20)),
            model_options={
                "detector": {
                    "model_path": args.detector_model,
                    "brownout_range_m": args.detector_brownout_range_m,
                    "precision": args.detector_precision,
                },
                "gs_render": {
                    "map_path": args.render_map,
                    "brownout_scale": args.render_brownout_scale,
                    "brownout_keep": args.render_brownout_keep,
                },
                "lm": {
                    "model_path": args.lm_model,
                    "hf_dir": args.lm_hf_dir,
                    "tpot_slo_ms": args.lm_tpot_slo_ms,
                    "prefill_guard": not args.lm_no_prefill_guard,
                },
            },
        )
    except (ValueError, ServeConfigError, WireError) as err:
        raise ServeError(str(err)) from err


def serve_from_args(args: argparse.Namespace) -> int:
    """Parses the token and settings, then :func:`serve`.

    Raises:
        ServeError: bad settings, token or address.
    """
    from offload.serving.auth import AuthError, load_token
    from offload.serving.server import ServeError, serve

    try:
        token = load_token(args.token_file)
    except AuthError as err:
        raise ServeError(str(err)) from err
    config = config_from_args(args)
    if args.threads > 0:  # one thread: no OpenMP spin-waiting when replicas share cores
        import torch

        torch.set_num_threads(args.threads)
    return serve(config, token, args.host, args.port, args.no_auth, args.ready_file)
