"""``python -m offload.cluster.routerd --kubernetes``: the router inside a Kubernetes cluster.

The same router as the local backend's (:mod:`offload.cluster.router`: weighted
least-outstanding, health checks, Prometheus metrics) over the namespace's Ready
``robomr-serve`` pods, refreshed every ``--refresh`` seconds from the API; a pod's weight is its
``robomr.io/weight`` annotation, which the node agents set (steering). Clients (the robot's
edge bridge) call the ``robomr-router`` Service instead of ``robomr-serve``, whose kube-proxy
load balancing knows nothing of interference. The admin API answers ``status``; scaling and
co-runners are done with ``robomr cluster ... --backend kubernetes`` (the API server's job).
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
from pathlib import Path
from typing import Any

from offload.cluster.balance import Balancer
from offload.cluster.kube import SERVE, WEIGHT_ANNOTATION, _clients
from offload.cluster.router import Router

log = logging.getLogger(__name__)


def sync_pods(balancer: Balancer, pods: list[Any], port: int) -> None:
    """Makes the balancer's table the Ready pods (name -> http://ip:port) with their weights."""
    ready = {}
    for p in pods:
        ok = any(c.type == "Ready" and c.status == "True" for c in (p.status.conditions or []))
        if ok and p.status.pod_ip:
            w = (p.metadata.annotations or {}).get(WEIGHT_ANNOTATION)
            ready[p.metadata.name] = (f"http://{p.status.pod_ip}:{port}", float(w) if w else 1.0)
    known = {r["name"]: r["url"] for r in balancer.snapshot()}
    for name in set(known) - set(ready):
        balancer.remove(name)
    for name, (url, _) in ready.items():
        if known.get(name) != url:
            balancer.add(name, url)
    balancer.set_weights({n: min(1.0, max(1e-3, w)) for n, (_, w) in ready.items()})


class KubeAdmin:
    """The in-cluster router's admin API: status only."""

    def __init__(self, balancer: Balancer, namespace: str) -> None:
        self.balancer, self.namespace = balancer, namespace

    def status(self, window_s: float = 5.0) -> dict[str, Any]:
        return {
            "backend": "kubernetes",
            "namespace": self.namespace,
            "replicas": self.balancer.snapshot(window_s),
            "corunners": [],
        }

    def _refuse(self, *_: Any) -> Any:
        raise ValueError("use `robomr cluster ... --backend kubernetes` (the API server scales)")

    scale = add_corunner = corunner_op = _refuse

    def report(self, body: dict[str, Any]) -> None:
        return

    def request_down(self) -> None:
        self._refuse()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m offload.cluster.routerd", description=__doc__)
    p.add_argument("--kubernetes", action="store_true", required=True)
    p.add_argument("--namespace", default="robomr")
    p.add_argument("--port", type=int, default=8700)
    p.add_argument("--replica-port", type=int, default=8700)
    p.add_argument("--token-file", type=Path, required=True)
    p.add_argument("--refresh", type=float, default=2.0, help="seconds between pod listings")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(levelname)s] [%(name)s] %(message)s")
    core, _, _ = _clients()
    balancer = Balancer()
    router = Router(
        balancer,
        KubeAdmin(balancer, args.namespace),  # type: ignore[arg-type]
        args.token_file.read_text().strip(),
    )
    router.start("0.0.0.0", args.port)
    stop = threading.Event()
    while not stop.wait(args.refresh):
        try:
            pods = core.list_namespaced_pod(
                args.namespace, label_selector=f"app.kubernetes.io/name={SERVE}"
            ).items
            sync_pods(balancer, pods, args.replica_port)
        except Exception as err:  # the API server may blink; keep routing to the last table
            log.warning("pod listing failed: %s", err)
    return 0


if __name__ == "__main__":
    sys.exit(main())
