"""``robomr autoscale``: the serving cluster's autoscalers (docs/autoscaling.md).

simulate  one policy on a trace in the calibrated cluster simulation (metrics, optional JSON)
train     PPO-train the learned policy (``rl``) in the simulation on synthetic traces only
coldstart replica cold start with and without the three-level artifact cache
kube      apply one policy to a Kubernetes Deployment through its scale subresource
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from robomr_nodes.cli.main import CliError

DEFAULT_TRACE = "../shared/data/traces/AzureLLMInferenceTrace_conv.csv"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "autoscale",
        help="autoscalers of the serving cluster (simulate, train, coldstart, kube)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    s = verbs.add_parser("simulate", help="one policy on a trace in the cluster simulation")
    s.add_argument("--policy", default="hpa", help="hpa, kpa, queueing, predictive-hw, "
                   "predictive-lstm, rl (NAME+cpi: interference-aware)")  # fmt: skip
    s.add_argument("--trace", default=DEFAULT_TRACE, help="Azure-format CSV or diurnal/bursty/step")
    s.add_argument("--target-utilization", type=float, default=0.7, help="in (0, 1)")
    s.add_argument("--scale-down-window", type=float, default=300.0, help="seconds, >= 0")
    s.add_argument("--service-ms", type=float, default=100.0, help="mean service time (ms)")
    s.add_argument("--load-replicas", type=float, default=6.0, help="mean offered load")
    s.add_argument("--startup-s", type=float, default=5.0, help="replica start-up delay (s)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--json", type=Path, help="write the metrics here")
    s.set_defaults(func=_simulate)

    t = verbs.add_parser("train", help="PPO-train the learned policy (synthetic traces only)")
    t.add_argument("--out", type=Path, default=None, help="weights (default models/...pt)")
    t.add_argument("--updates", type=int, default=120)
    t.add_argument("--episodes", type=int, default=8, help="episodes per update")
    t.add_argument("--seed", type=int, default=0)
    t.set_defaults(func=_train)

    c = verbs.add_parser("coldstart", help="replica cold start with and without the cache")
    c.add_argument("--repeats", type=int, default=3)
    c.add_argument("--json", type=Path)
    c.set_defaults(func=_coldstart)

    k = verbs.add_parser("kube", help="scale a Deployment with a policy (needs a cluster)")
    k.add_argument("--deployment", required=True)
    k.add_argument("--namespace", default="default")
    k.add_argument("--policy", default="queueing")
    k.add_argument("--metrics-port", type=int, default=8700, help="the pods' /metrics port")
    k.add_argument("--period-s", type=float, default=5.0)
    k.add_argument("--dry-run", action="store_true", help="print decisions, patch nothing")
    k.set_defaults(func=_kube)


def _service(ms: float):
    from offload.cluster.autoscaling.calibration import ServiceModel

    # log-normal, sigma 0.5: a stand-in shape; the benchmark uses the measured model
    return ServiceModel.constant(ms / 1e3, log_std=0.5)


def _simulate(args: argparse.Namespace) -> int:
    from offload.cluster.autoscaling import AutoscalingError, Bounds, make_policy
    from offload.cluster.autoscaling.calibration import StartupModel
    from offload.cluster.autoscaling.simulate import SimConfig, simulate
    from offload.cluster.autoscaling.traces import load_trace

    try:
        trace = load_trace(args.trace, seed=args.seed)
        policy = make_policy(
            args.policy, args.target_utilization, args.scale_down_window, Bounds(1, 24)
        )
        service = _service(args.service_ms)
        mean_s, _ = service.moments()
        factor = args.load_replicas / (trace.mean_rate_hz * mean_s)
        cfg = SimConfig(
            service.scaled(factor),
            StartupModel.constant(args.startup_s),
            slo_s=3 * mean_s * factor,
            initial_replicas=max(1, round(args.load_replicas)),
            seed=args.seed,
        )
        run = simulate(trace, policy, cfg)
    except AutoscalingError as err:
        raise CliError(str(err)) from None
    out = {
        "policy": args.policy,
        "trace": trace.name,
        "requests": len(trace),
        "slo_s": cfg.slo_s,
        "slo_violation_rate": run.slo_violation_rate,
        "p99_ms": run.p99_ms(),
        "replica_seconds": run.replica_seconds,
        "scaling_actions": run.scaling_actions,
    }
    print(json.dumps(out, indent=2))
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    return 0


def _train(args: argparse.Namespace) -> int:
    from offload.cluster.autoscaling.rl import DEFAULT_WEIGHTS, save
    from offload.cluster.autoscaling.rl_train import TrainConfig, provenance, train

    cfg = TrainConfig(updates=args.updates, episodes_per_update=args.episodes, seed=args.seed)
    service = _service(100.0)
    net, log = train(cfg, service, progress=lambda m: print(m, file=sys.stderr, flush=True))
    out = args.out or DEFAULT_WEIGHTS
    meta = provenance(cfg, service, log)
    meta["command"] = " ".join(["robomr", "autoscale", "train", *sys.argv[3:]])
    save(net, out, meta)
    print(f"wrote {out}")
    return 0


def _coldstart(args: argparse.Namespace) -> int:
    from offload.cluster.autoscaling.coldstart import ColdStartError, measure

    try:
        result = measure(repeats=args.repeats, progress=lambda m: print(m, file=sys.stderr))
    except ColdStartError as err:
        raise CliError(str(err)) from None
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


def _kube(args: argparse.Namespace) -> int:
    from offload.cluster.autoscaling.kube import KubeError, run_loop

    try:
        return run_loop(
            args.deployment,
            args.namespace,
            args.policy,
            args.metrics_port,
            args.period_s,
            dry_run=args.dry_run,
        )
    except KubeError as err:
        raise CliError(str(err)) from None
