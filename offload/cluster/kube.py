"""The Kubernetes backend, with the official Python client (``kubernetes``).

:class:`KubeCluster` implements the cluster contract (:mod:`offload.cluster.backend`) on a real
cluster: ``up`` renders ``deploy/`` (:mod:`offload.cluster.kustomize`) and applies every object
with server-side apply, then sets the serving Deployment's replicas through its *scale
subresource*; ``scale`` patches that subresource; co-runners are BestEffort pods made from
``deploy/besteffort/corunner-pod.yaml``; ``evict`` goes through the Eviction API (so
PodDisruptionBudgets apply), ``stop`` deletes the pod; ``down`` deletes what ``up`` applied.

:class:`NodeApi` is what the node agent (the DaemonSet, ``python -m offload.cluster.agent
--kubernetes``) sees instead of the local admin API: the pods on its node, their cgroups under
the host's mount (found by the pod UID in the directory name, for the cgroupfs and systemd
drivers, v1 and v2), the node's besteffort QoS group (CPU suppress), and the same actions:
steering weights become the pod annotation ``robomr.io/weight``, which the router reads when it
runs in the cluster (``python -m offload.cluster.routerd --kubernetes``).

Nothing here runs without an API server; tests that need one run when ``KUBECONFIG`` points at
a reachable cluster and skip otherwise (:func:`kube_available` gives the reason).
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

from offload.cluster.kustomize import load_all, render

log = logging.getLogger(__name__)
DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
SERVE, AGENT, BE, ROUTER = "robomr-serve", "robomr-agent", "robomr-be", "robomr-router"
WEIGHT_ANNOTATION = "robomr.io/weight"
FIELD_MANAGER = "robomr"


class KubeError(RuntimeError):
    """The API server refused or is unreachable (the message says which)."""


def kube_available(timeout_s: float = 5.0) -> tuple[bool, str]:
    """(True, "") when KUBECONFIG points at a reachable API server, else (False, why)."""
    path = os.environ.get("KUBECONFIG", "")
    if not path or not Path(path.split(os.pathsep)[0]).exists():
        return False, "KUBECONFIG does not point at a kubeconfig file"
    try:
        from kubernetes import client, config

        config.load_kube_config()
        client.VersionApi().get_code(_request_timeout=timeout_s)
    except Exception as err:  # any failure means: no cluster to test against
        return False, f"the cluster in KUBECONFIG is unreachable: {type(err).__name__}: {err}"
    return True, ""


def _clients() -> tuple[Any, Any, Any]:
    from kubernetes import client, config
    from kubernetes.dynamic import DynamicClient

    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    api = client.ApiClient()
    return client.CoreV1Api(api), client.AppsV1Api(api), DynamicClient(api)


class KubeCluster:
    """The contract on a real cluster (see the module docstring)."""

    def __init__(self, namespace: str = "robomr", deploy_dir: Path = DEPLOY) -> None:
        self.namespace, self.deploy_dir = namespace, Path(deploy_dir)
        self.core, self.apps, self.dyn = _clients()

    @classmethod
    def from_args(cls, args: Any) -> KubeCluster:
        ok, why = kube_available()
        if not ok:
            raise KubeError(why)
        return cls(args.namespace, Path(args.deploy_dir) if args.deploy_dir else DEPLOY)

    def _objects(self) -> list[dict[str, Any]]:
        objs = render(self.deploy_dir)
        for o in objs:
            if o["kind"] == "Namespace":
                o["metadata"]["name"] = self.namespace
            elif "namespace" in o["metadata"]:
                o["metadata"]["namespace"] = self.namespace
            for s in o.get("subjects", []):
                s["namespace"] = self.namespace
        return objs

    def up(self, replicas: int, timeout_s: float = 600.0) -> str:
        """Applies deploy/ and waits until ``replicas`` serving pods are ready; returns the
        in-cluster URL of the router's Service (clients call it; it steers)."""
        for obj in self._objects():
            res = self.dyn.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
            self.dyn.server_side_apply(
                res,
                body=obj,
                name=obj["metadata"]["name"],
                namespace=obj["metadata"].get("namespace"),
                field_manager=FIELD_MANAGER,
                force_conflicts=True,
            )
        self.scale(replicas)
        end = time.monotonic() + timeout_s
        while self._ready() < replicas:
            if time.monotonic() > end:
                raise KubeError(f"{replicas} serving pods not ready within {timeout_s:.0f} s")
            time.sleep(2.0)
        return f"http://{ROUTER}.{self.namespace}.svc:8700"

    def _ready(self) -> int:
        d = self.apps.read_namespaced_deployment_status(SERVE, self.namespace)
        return int(d.status.ready_replicas or 0)

    def scale(self, replicas: int) -> dict[str, Any]:
        """Patches the Deployment's scale subresource (what ``kubectl scale`` and the HPA do)."""
        if replicas < 1:
            raise ValueError(f"replicas={replicas} must be >= 1")
        self.apps.patch_namespaced_deployment_scale(
            SERVE, self.namespace, {"spec": {"replicas": replicas}}
        )
        return {"replicas": replicas}

    def status(self, window_s: float = 5.0) -> dict[str, Any]:
        pods = self.core.list_namespaced_pod(self.namespace).items
        rep, be, agents = [], [], []
        for p in pods:
            labels = p.metadata.labels or {}
            ready = any(
                c.type == "Ready" and c.status == "True" for c in (p.status.conditions or [])
            )
            entry = {
                "name": p.metadata.name,
                "node": p.spec.node_name,
                "ready": ready,
                "phase": p.status.phase,
                "qos": labels.get("koordinator.sh/qosClass"),
                "ip": p.status.pod_ip,
            }
            name = labels.get("app.kubernetes.io/name")
            if name == SERVE:
                w = (p.metadata.annotations or {}).get(WEIGHT_ANNOTATION)
                rep.append({**entry, "weight": float(w) if w else 1.0, "cpus": []})
            elif name == BE:
                be.append(
                    {
                        **entry,
                        "kind": labels.get("robomr.io/corunner-kind"),
                        "state": "running"
                        if p.status.phase == "Running"
                        else p.status.phase.lower(),
                        "cpus": [],
                    }
                )
            elif name == AGENT:
                agents.append(entry)
        return {
            "backend": "kubernetes",
            "namespace": self.namespace,
            "replicas": rep,
            "corunners": be,
            "agents": agents,
        }

    def add_corunner(self, body: dict[str, Any]) -> dict[str, Any]:
        """A BestEffort co-runner pod of ``body["kind"]`` (optionally on ``body["node"]``)."""
        from offload.cluster.corunners import CoRunnerSpec

        spec = CoRunnerSpec(
            name=str(body.get("name") or f"{body.get('kind')}-0"),
            kind=str(body.get("kind")),
            duty=float(body.get("duty", 1.0)),
        )
        (pod,) = load_all(self.deploy_dir / "besteffort" / "corunner-pod.yaml")
        pod["metadata"]["name"] = f"{BE}-{spec.name}"
        pod["metadata"]["labels"]["robomr.io/corunner-kind"] = spec.kind
        pod["spec"]["containers"][0]["args"] = [
            f"--kind={spec.kind}",
            f"--duty={spec.duty}",
            "--progress=/tmp/progress",
            "--dir=/tmp",
        ]
        if body.get("node"):
            pod["spec"]["nodeName"] = body["node"]
        self.core.create_namespaced_pod(self.namespace, pod)
        return {"name": pod["metadata"]["name"], "kind": spec.kind, "state": "pending"}

    def corunner_op(self, name: str, op: str) -> dict[str, Any]:
        return corunner_op(self.core, self.namespace, name, op)

    def down(self) -> None:
        """Deletes co-runner pods and every object ``up`` applied (the namespace last)."""
        for p in self.core.list_namespaced_pod(
            self.namespace, label_selector=f"app.kubernetes.io/name={BE}"
        ).items:
            self.core.delete_namespaced_pod(p.metadata.name, self.namespace)
        for obj in reversed(self._objects()):
            res = self.dyn.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
            try:
                self.dyn.delete(
                    res, name=obj["metadata"]["name"], namespace=obj["metadata"].get("namespace")
                )
            except Exception as err:  # already gone is fine; anything else is logged
                log.info("delete %s/%s: %s", obj["kind"], obj["metadata"]["name"], err)


def corunner_op(core: Any, namespace: str, name: str, op: str) -> dict[str, Any]:
    """``stop`` (delete the pod) or ``evict`` (Eviction API) a co-runner pod; pausing is the
    node agent's (the node's cgroup freezer), so ``pause``/``resume`` are refused here.

    Raises:
        ValueError: another op.
    """
    from kubernetes import client

    pod = name if name.startswith(BE) else f"{BE}-{name}"
    if op == "stop":
        core.delete_namespaced_pod(pod, namespace, grace_period_seconds=5)
    elif op == "evict":
        meta = client.V1ObjectMeta(name=pod, namespace=namespace)
        core.create_namespaced_pod_eviction(pod, namespace, client.V1Eviction(metadata=meta))
    else:
        raise ValueError(
            f"op={op!r}: on Kubernetes only stop and evict; the node agent "
            "pauses co-runners through the node's cgroup freezer"
        )
    return {"name": pod, "state": "stopped" if op == "stop" else "evicted"}


def pod_cgroup(root: Path, uid: str) -> Path | None:
    """The pod's cgroup directory under ``root``: ``pod<uid>`` (cgroupfs driver) or
    ``...-pod<uid with _>.slice`` (systemd driver)."""
    names = (f"pod{uid}", f"pod{uid.replace('-', '_')}.slice")
    for dirpath, dirnames, _ in os.walk(root):
        for d in dirnames:
            if d in names or d.endswith(names[1]):
                return Path(dirpath) / d
        if len(Path(dirpath).relative_to(root).parts) > 4:  # pods sit 2-3 levels down
            dirnames.clear()
    return None


def besteffort_cgroup(root: Path) -> Path | None:
    """The node's besteffort QoS group: ``kubepods/besteffort`` or
    ``kubepods.slice/kubepods-besteffort.slice``."""
    for rel in ("kubepods/besteffort", "kubepods.slice/kubepods-besteffort.slice"):
        if (root / rel).is_dir():
            return root / rel
    return None
