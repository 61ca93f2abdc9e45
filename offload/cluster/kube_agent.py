"""The node agent on Kubernetes: :class:`NodeApi` gives the agent the local admin API's shape
for the pods of one node, and :func:`run_node_agent` is the DaemonSet's main loop.

Replicas are the node's Ready ``robomr-serve`` pods, co-runners its ``robomr-be`` pods; each is
found in the host's cgroups by its UID (:func:`offload.cluster.kube.pod_cgroup`). The CPU
suppress cap goes on the node's besteffort QoS group (where the kubelet puts BestEffort pods),
pauses on the co-runner pod's freezer, evictions through the Eviction API, steering weights on
the pod annotation ``robomr.io/weight`` (read by the in-cluster router). On cgroup v2 a pod's
group has children (its containers), and a process may only join a leaf, so the probe runs in a
``robomr-probe`` child of the pod's group. ``/healthz`` and ``/metrics`` (the last report) are
served on ``--metrics-port`` for the DaemonSet's probes and Prometheus.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from offload.cluster.cgroups import Cgroup, CgroupError, CgroupSupport, detect
from offload.cluster.kube import (
    BE,
    SERVE,
    WEIGHT_ANNOTATION,
    _clients,
    besteffort_cgroup,
    corunner_op,
    pod_cgroup,
)

log = logging.getLogger(__name__)


class NodeApi:
    """See the module docstring. ``cgroup_root``: where the host's cgroups are mounted."""

    def __init__(self, namespace: str, node: str, cgroup_root: Path) -> None:
        self.namespace, self.node = namespace, node
        self.support: CgroupSupport = detect(under=Path(cgroup_root))
        self.root = self.support.v1.get("cpu") or self.support.v2 or Path(cgroup_root)
        self.core, _, _ = _clients()
        self.last_report: dict[str, Any] = {}

    def _rel(self, path: Path | None) -> str | None:
        return str(path.relative_to(self.root)) if path is not None else None

    def status(self, window_s: float = 5.0) -> dict[str, Any]:
        pods = self.core.list_namespaced_pod(
            self.namespace, field_selector=f"spec.nodeName={self.node}"
        ).items
        replicas, corunners = [], []
        for p in pods:
            labels = p.metadata.labels or {}
            group = pod_cgroup(self.root, p.metadata.uid)
            rel = self._rel(group)
            pids = self._pids(rel)
            base = {
                "name": p.metadata.name,
                "pid": pids[0] if pids else None,
                "cgroup": rel,
                "cpus": self._cpus(rel),
                "alive": p.status.phase == "Running",
            }
            if labels.get("app.kubernetes.io/name") == SERVE and pids:
                if self.support.version == "v2" and rel:
                    base["probe_cgroup"] = f"{rel}/robomr-probe"
                w = (p.metadata.annotations or {}).get(WEIGHT_ANNOTATION)
                replicas.append({**base, "qos": "LS", "weight": float(w) if w else 1.0})
            elif labels.get("app.kubernetes.io/name") == BE and pids:
                frozen, cap = False, None
                if rel and self.support.has("freeze"):
                    try:
                        frozen = Cgroup(self.support, rel).frozen()
                    except CgroupError:
                        frozen = False
                if rel and self.support.has("cpu"):  # the agent's own per-pod cap, if any
                    try:
                        cap = Cgroup(self.support, rel).cpu_limit()
                    except CgroupError:
                        cap = None
                corunners.append(
                    {
                        **base,
                        "kind": labels.get("robomr.io/corunner-kind", "cpu"),
                        "state": "paused" if frozen else "running",
                        "duty": 1.0,
                        "limit_cores": cap,
                        "units": None,
                    }
                )
        be = self._rel(besteffort_cgroup(self.root))
        limit = None
        if be and self.support.has("cpu"):
            try:
                limit = Cgroup(self.support, be).cpu_limit()
            except CgroupError:
                limit = None
        return {
            "backend": "kubernetes",
            "node": self.node,
            "replicas": replicas,
            "corunners": corunners,
            "be_cgroup": be,
            "be_limit_cores": limit,
            "cpus": sorted(os.sched_getaffinity(0)),
            "cgroups": {"version": self.support.version, "missing": self.support.missing},
        }

    def _pids(self, rel: str | None) -> list[int]:
        if not rel:
            return []
        out: list[int] = []
        for procs in (self.root / rel).rglob("cgroup.procs"):
            try:
                out += [int(x) for x in procs.read_text().split()]
            except OSError:
                continue
        return out

    def _cpus(self, rel: str | None) -> list[int]:
        if not rel or not self.support.has("cpuset"):
            return []
        try:
            return Cgroup(self.support, rel).cpuset()
        except CgroupError:
            return []

    def report(self, report: dict[str, Any]) -> None:
        self.last_report = report

    def set_weights(self, weights: dict[str, float]) -> dict[str, Any]:
        for name, w in weights.items():
            body = {"metadata": {"annotations": {WEIGHT_ANNOTATION: f"{w:.4f}"}}}
            self.core.patch_namespaced_pod(name, self.namespace, body)
        return {"weights": weights}

    def corunner_op(self, name: str, op: str) -> dict[str, Any]:
        return corunner_op(self.core, self.namespace, name, op)


def run_node_agent(args: Any, config: Any, predictor: Any) -> int:
    """The DaemonSet's loop: :class:`~offload.cluster.agent.Agent` on a :class:`NodeApi`."""
    import signal

    from offload.cluster.agent import Agent

    if not args.node:
        raise SystemExit("--node is needed with --kubernetes (the DaemonSet passes NODE_NAME)")
    api = NodeApi(args.namespace, args.node, Path(args.cgroup_root))
    log.info("node agent on %s: %s", args.node, api.support.summary().replace("\n", "; "))
    agent = Agent(api, config, predictor, support=api.support)  # type: ignore[arg-type]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    if args.metrics_port:
        _serve_health(args.metrics_port, api)
    try:
        agent.run(stop)
    finally:
        agent.close()
    return 0


def _serve_health(port: int, api: NodeApi) -> None:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # the stdlib's handler name
            if self.path == "/healthz":
                body, ctype = b"ok\n", "text/plain"
            elif self.path == "/metrics":
                body, ctype = _prometheus(api.last_report).encode(), "text/plain; version=0.0.4"
            elif self.path == "/report":
                body, ctype = json.dumps(api.last_report, default=str).encode(), "application/json"
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("0.0.0.0", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True, name="agent-health").start()


def _prometheus(report: dict[str, Any]) -> str:
    lines = []
    for key, metric in (
        ("cpi", "robomr_agent_cpi"),
        ("predicted_cpi", "robomr_agent_predicted_cpi"),
        ("inflation", "robomr_agent_inflation"),
    ):
        lines.append(f"# TYPE {metric} gauge")
        for pod, v in (report.get(key) or {}).items():
            lines.append(f'{metric}{{pod="{pod}"}} {float(v)}')
    lines.append("# TYPE robomr_agent_actions gauge")
    for action, n in (report.get("action_counts") or {}).items():
        lines.append(f'robomr_agent_actions{{action="{action}"}} {n}')
    return "\n".join(lines) + "\n"
