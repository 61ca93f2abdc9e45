"""``robomr cluster up|status|scale|down|corunner|collect``: the commands behind the CLI.

A local cluster started by ``up`` lives in a supervisor process (foreground, or with
``--detach`` in the background); its state file ``<state dir>/<name>/state.json`` holds the
router URL, the supervisor's pid and the token file (0600), so that ``status``, ``scale``,
``corunner`` and ``down`` find it. ``--backend kubernetes`` acts on a real cluster instead
(:mod:`offload.cluster.kube`).

Raises:
    CommandError: a user error (printed as one line by the CLI).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from offload.cluster.api import ClusterApi, ClusterApiError

DEFAULT_STATE_DIR = Path(os.environ.get("ROBOMR_CLUSTER_DIR", "/tmp/robomr-cluster"))


class CommandError(RuntimeError):
    """See the module docstring."""


def state_path(args: argparse.Namespace) -> Path:
    return Path(args.state_dir) / args.name / "state.json"


def alive(pid: int) -> bool:
    """True while ``pid`` runs; a zombie (exited, not yet reaped: a detached supervisor whose
    starter still runs) counts as gone, and is reaped when it is our child."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    if state == "Z":
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        return False
    return True


def load_state(args: argparse.Namespace) -> dict[str, Any]:
    path = state_path(args)
    if not path.exists():
        raise CommandError(
            f"no local cluster named {args.name!r} (no {path}); start one with "
            f"`robomr cluster up --name {args.name}`"
        )
    state = json.loads(path.read_text())
    if not alive(int(state.get("pid", 0))):
        path.unlink(missing_ok=True)
        raise CommandError(
            f"cluster {args.name!r} is not running (its supervisor "
            f"{state.get('pid')} is gone); removed the stale {path}"
        )
    return state


def api_of(args: argparse.Namespace) -> ClusterApi:
    state = load_state(args)
    return ClusterApi(state["url"], Path(state["token_file"]).read_text().strip())


def parse_corunner(text: str) -> dict[str, Any]:
    """``KIND[@CPUS][:DUTY]`` (e.g. ``cpu@1:0.5``) -> add_corunner body.

    Raises:
        CommandError: malformed.
    """
    kind, _, duty = text.partition(":")
    kind, _, cpus = kind.partition("@")
    try:
        body: dict[str, Any] = {"kind": kind}
        if cpus:
            body["cpus"] = [int(c) for c in cpus.split(",")]
        if duty:
            body["duty"] = float(duty)
    except ValueError as err:
        raise CommandError(f"--corunner {text!r}: expected KIND[@CPU,CPU][:DUTY]") from err
    return body


# -- up -----------------------------------------------------------------------------------------
def up(args: argparse.Namespace) -> int:
    if args.backend == "kubernetes":
        from offload.cluster.kube import KubeCluster

        print(json.dumps(KubeCluster.from_args(args).up(args.replicas), indent=2))
        return 0
    path = state_path(args)
    if path.exists():
        try:
            state = load_state(args)
            raise CommandError(f"cluster {args.name!r} is already running at {state['url']}")
        except CommandError as err:
            if "already running" in str(err):
                raise
    if args.detach:
        return _detach(args)
    return _run_supervisor(args)


def _detach(args: argparse.Namespace) -> int:
    path = state_path(args)
    path.parent.mkdir(parents=True, exist_ok=True)
    argv = [
        "cluster",
        "up",
        "--name",
        args.name,
        "--state-dir",
        str(args.state_dir),
        "--replicas",
        str(args.replicas),
        "--variant",
        args.variant,
        "--interval",
        str(args.interval),
        "--placement",
        args.placement,
        "--be-shares",
        str(args.be_shares),
        f"--replica-args={args.replica_args}",
    ]
    argv += [f"--corunner={c}" for c in args.corunner]
    argv += ["--no-agent"] if args.no_agent else []
    argv += ["--model", args.model] if args.model else []
    logf = path.parent / "supervisor.log"
    with open(logf, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "robomr_nodes.cli.main", *argv],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    end = time.monotonic() + args.start_timeout
    while not path.exists():
        if proc.poll() is not None or time.monotonic() > end:
            tail = "\n".join(logf.read_text(errors="replace").splitlines()[-15:])
            raise CommandError(f"the cluster did not start; {logf}:\n{tail}")
        time.sleep(0.2)
    state = json.loads(path.read_text())
    print(f"cluster {args.name} up at {state['url']} (supervisor pid {state['pid']}, log {logf})")
    return 0


def _run_supervisor(args: argparse.Namespace) -> int:
    from offload.cluster.local import ClusterError, LocalCluster, LocalClusterConfig

    path = state_path(args)
    work = path.parent
    work.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(24)
    config = LocalClusterConfig(
        token=token,
        work_dir=work,
        name=args.name,
        replica_args=tuple(args.replica_args.split()) if args.replica_args else (),
        placement=args.placement,
        be_cpu_shares=args.be_shares,
    )
    cluster = LocalCluster(config)  # SIGINT/SIGTERM/SIGHUP raise in serve_forever, which
    try:  # then stops everything (robomr_nodes.shutdown)
        url = cluster.up(args.replicas)
        for spec in args.corunner:
            cluster.add_corunner(parse_corunner(spec))
        if not args.no_agent:
            agent_args = [
                "--variant",
                args.variant,
                "--interval",
                str(args.interval),
                "--log",
                str(work / "changes.jsonl"),
            ]
            if args.model:
                agent_args += ["--model", args.model]
            cluster.start_agent(agent_args)
    except (ClusterError, ValueError) as err:
        cluster.down()
        raise CommandError(str(err)) from err
    state = {
        "url": url,
        "pid": os.getpid(),
        "token_file": str(work / "token"),
        "id": cluster.id,
        "started_unix_s": time.time(),
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state))
    tmp.replace(path)
    print(
        f"cluster {args.name} up at {url}; token in {work / 'token'}; Ctrl-C or "
        f"`robomr cluster down --name {args.name}` stops it",
        flush=True,
    )
    try:
        cluster.serve_forever()
    finally:
        path.unlink(missing_ok=True)
    return 0


# -- status, scale, down, corunner ----------------------------------------------------------------
def status(args: argparse.Namespace) -> int:
    if args.backend == "kubernetes":
        from offload.cluster.kube import KubeCluster

        st = KubeCluster.from_args(args).status()
    else:
        try:
            st = api_of(args).status()
        except ClusterApiError as err:
            raise CommandError(str(err)) from err
    print(json.dumps(st, indent=2) if args.json else render_status(st))
    return 0


def render_status(st: dict[str, Any]) -> str:
    """A human-readable status: replicas, co-runners, agent, cgroups."""

    def f(x: Any, nd: int = 1) -> str:
        return (
            "-"
            if x is None or (isinstance(x, float) and math.isnan(x))
            else (f"{x:.{nd}f}" if isinstance(x, float) else str(x))
        )

    lines = [
        f"{st['backend']} cluster {st.get('id', '')} at {st.get('url', '')}",
        "",
        "replica      cpus  healthy  weight  outstanding  req/s  p50 ms  p90 ms  CPI  predicted",
    ]
    agent = st.get("agent") or {}
    for r in st["replicas"]:
        lines.append(
            f"{r['name']:<12} {','.join(map(str, r.get('cpus') or [])) or '*':<5} "
            f"{f(r.get('healthy')):<8} {f(r.get('weight'), 2):>6}  {f(r.get('outstanding')):>11}  "
            f"{f(r.get('rate_per_s')):>5}  {f(r.get('latency_p50_ms'), 0):>6}  "
            f"{f(r.get('latency_p90_ms'), 0):>6}  {f((agent.get('cpi') or {}).get(r['name'])):>4}"
            f"  {f((agent.get('predicted_cpi') or {}).get(r['name'])):>9}"
        )
    lines += ["", "co-runner     kind   cpus  state     duty  limit  units"]
    for c in st["corunners"]:
        lines.append(
            f"{c['name']:<13} {c['kind']:<6} {','.join(map(str, c['cpus'])) or '*':<5} "
            f"{c['state']:<9} {f(c['duty'], 2):>4}  {f(c.get('limit_cores'), 2):>5}  "
            f"{c.get('units', '-')}"
        )
    cg = st.get("cgroups") or {}
    lines += [
        "",
        f"best-effort CPU cap: {f(st.get('be_limit_cores'), 2)} cores, CPU weight "
        f"{st.get('be_shares') or '-'} (LS 1024); cgroups "
        f"{cg.get('version', '-')}",
    ]
    for role, why in (cg.get("missing") or {}).items():
        lines.append(f"  unavailable: {role}: {why}")
    lines.append(
        f"agent: {'running' if agent.get('alive') else 'not running'}"
        f"{', variant ' + agent['variant'] if agent.get('variant') else ''}"
        f"{', changes ' + json.dumps(agent['action_counts']) if agent.get('action_counts') else ''}"
    )
    return "\n".join(lines)


def scale(args: argparse.Namespace) -> int:
    if args.replicas < 1:
        raise CommandError(f"replicas={args.replicas} must be >= 1")
    if args.backend == "kubernetes":
        from offload.cluster.kube import KubeCluster

        print(json.dumps(KubeCluster.from_args(args).scale(args.replicas)))
        return 0
    try:
        print(json.dumps(api_of(args).scale(args.replicas)))
    except ClusterApiError as err:
        raise CommandError(str(err)) from err
    return 0


def down(args: argparse.Namespace) -> int:
    if args.backend == "kubernetes":
        from offload.cluster.kube import KubeCluster

        KubeCluster.from_args(args).down()
        return 0
    state = load_state(args)
    try:
        api_of(args).down()
    except ClusterApiError as err:
        raise CommandError(str(err)) from err
    end = time.monotonic() + 120.0
    while time.monotonic() < end:
        if not alive(int(state["pid"])):
            print(f"cluster {args.name} stopped")
            return 0
        time.sleep(0.2)
    raise CommandError(f"cluster {args.name} did not stop within 120 s (pid {state['pid']})")


def corunner(args: argparse.Namespace) -> int:
    try:
        api = api_of(args)
        if args.op == "add":
            body = parse_corunner(args.target)
            if args.corunner_name:
                body["name"] = args.corunner_name
            print(json.dumps(api.add_corunner(body)))
        else:
            print(json.dumps(api.corunner_op(args.target, args.op)))
    except ClusterApiError as err:
        raise CommandError(str(err)) from err
    return 0
