"""``robomr cluster up|status|scale|down|corunner|collect``: the co-located serving cluster.

Thin: parses, calls ``offload.cluster.cli`` (imported only when run), prints. See
docs/cluster.md.
"""

from __future__ import annotations

import argparse
import os

from robomr_nodes.cli.main import CliError


def _common(p: argparse.ArgumentParser, backend: bool = True) -> None:
    state_dir = os.environ.get("ROBOMR_CLUSTER_DIR", "/tmp/robomr-cluster")  # = cli's default
    p.add_argument("--name", default="default", help="local cluster name (default: default)")
    p.add_argument(
        "--state-dir",
        default=state_dir,
        help=f"where local clusters keep state (default {state_dir})",
    )
    if backend:
        p.add_argument(
            "--backend",
            choices=("local", "kubernetes"),
            default="local",
            help="local processes (default) or the cluster KUBECONFIG points at",
        )
        p.add_argument("--namespace", default="robomr", help="Kubernetes namespace")
        p.add_argument("--deploy-dir", default="", help="Kubernetes manifests (default deploy/)")


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "cluster",
        help="the serving cluster: local processes or Kubernetes",
        description="Replicas of the inference service behind a router, best-effort "
        "co-runners in cgroups, and a node agent that predicts CPI interference and mitigates "
        "it (C-Koordinator). See docs/cluster.md.",
    )
    cmds = parser.add_subparsers(dest="cluster_command", metavar="COMMAND", required=True)

    p = cmds.add_parser("up", help="start a cluster (local: runs until `down` or Ctrl-C)")
    _common(p)
    p.add_argument("--replicas", type=int, default=2, help="serving replicas (default 2)")
    p.add_argument("--detach", action="store_true", help="run the local cluster in the background")
    p.add_argument(
        "--corunner",
        action="append",
        default=[],
        metavar="KIND[@CPUS][:DUTY]",
        help="start a best-effort co-runner (cpu, membw, cache, io), e.g. cpu@1:0.5",
    )
    p.add_argument(
        "--variant",
        choices=("off", "suppress", "full", "full-pause", "steer", "qos", "koordinator"),
        default="full",
        help="mitigation: none, Koordinator CPU suppress, C-Koordinator (default: CPU QoS, "
        "steering, suppress, caps a co-runner before pausing it), full-pause (pauses at once), "
        "steer (routing only), qos (BE at the least CPU weight), koordinator (qos + suppress)",
    )
    p.add_argument("--no-agent", action="store_true", help="no node agent (no mitigation)")
    p.add_argument("--model", default="", help="CPI model (default: models/cpi_predictor.txt)")
    p.add_argument("--interval", type=float, default=1.0, help="agent interval (s)")
    p.add_argument(
        "--placement",
        choices=("spread", "aware"),
        default="aware",
        help="where new replicas go (aware: least predicted interference)",
    )
    p.add_argument("--be-shares", type=int, default=1024, help="CPU weight of best-effort group")
    p.add_argument("--replica-args", default="", help="extra options of every replica, quoted")
    p.add_argument("--start-timeout", type=float, default=600.0, help="seconds to wait for up")
    p.set_defaults(func=_run("up"))

    p = cmds.add_parser("status", help="replicas, co-runners, CPI, agent, cgroups")
    _common(p)
    p.add_argument("--json", action="store_true", help="print the raw status as JSON")
    p.set_defaults(func=_run("status"))

    p = cmds.add_parser("scale", help="set the number of serving replicas")
    _common(p)
    p.add_argument("replicas", type=int)
    p.set_defaults(func=_run("scale"))

    p = cmds.add_parser("down", help="stop the cluster")
    _common(p)
    p.set_defaults(func=_run("down"))

    p = cmds.add_parser("corunner", help="add, pause, resume or stop a best-effort co-runner")
    _common(p, backend=False)
    p.add_argument("op", choices=("add", "pause", "resume", "stop", "evict"))
    p.add_argument("target", help="add: KIND[@CPUS][:DUTY]; otherwise the co-runner's name")
    p.add_argument("--as", dest="corunner_name", default="", help="add: the co-runner's name")
    p.set_defaults(func=_run("corunner"))

    p = cmds.add_parser("collect", help="record a labelled CPI data set (and train the model)")
    from offload.cluster.collect import add_arguments

    add_arguments(p)
    p.set_defaults(func=_run("collect"))


def _run(name: str):
    def handler(args: argparse.Namespace) -> int:
        from offload.cluster import cli
        from offload.cluster.collect import CollectError, collect_command
        from offload.cluster.predictor import PredictorError

        try:
            if name == "collect":
                return collect_command(args)
            return int(getattr(cli, name)(args))
        except (cli.CommandError, CollectError, PredictorError) as err:
            raise CliError(str(err)) from err

    return handler
