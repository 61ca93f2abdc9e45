"""Applying an autoscaler's decisions on Kubernetes: the Deployment's scale subresource.

The control loop (``robomr autoscale kube``) runs in the cluster as its own Deployment
(deploy/autoscale/, with a ServiceAccount allowed to get/patch ``deployments/scale`` and to
list pods and ``pods.metrics.k8s.io``). Every period it builds an :class:`Observation` from the
API: the scale subresource's ``spec.replicas``, each pod's phase, Ready condition, start and
transition times and deletion timestamp (``CoreV1Api.list_namespaced_pod`` with the
Deployment's selector), each pod's CPU from the metrics API (``metrics.k8s.io/v1beta1``), the
request rate from the router's Prometheus counter; the policy decides; a changed count is
written with ``AppsV1Api.patch_namespaced_deployment_scale`` (the same call ``kubectl scale``
makes). Only this module talks to Kubernetes; the policies stay pure.

Chosen over serving the forecast as an external metric to the stock HPA because the HPA would
re-apply its own ratio rule, tolerance and stabilisation on top of the policy's answer.

Needs a reachable API server (in-cluster config or a kubeconfig); none runs in this repository's
tests, so they cover the translation (pods -> PodView, the patch body) and skip the live call.
"""

from __future__ import annotations

import re
import time
from datetime import datetime
from typing import Any

import httpx

from offload.cluster.autoscaling.interface import Observation, PodView


class KubeError(RuntimeError):
    """No cluster reachable, or the Deployment or a metric is missing."""


def _ts(value: datetime | None, origin: float) -> float:
    return value.timestamp() - origin if value is not None else -1e9


def parse_cpu(quantity: str) -> float:
    """A Kubernetes CPU quantity ("250m", "1", "1500000n", "12u") in millicores."""
    m = re.fullmatch(r"([0-9.]+)([numk]?)", quantity.strip())
    if m is None:
        raise KubeError(f"not a CPU quantity: {quantity!r}")
    scale = {"n": 1e-6, "u": 1e-3, "m": 1.0, "": 1e3, "k": 1e6}[m.group(2)]
    return float(m.group(1)) * scale


def pod_view(pod: Any, usage_millicores: float | None, now: float, origin: float) -> PodView:
    """A ``V1Pod`` (kubernetes client object) as the policies see it."""
    conditions = {c.type: c for c in (pod.status.conditions or [])}
    ready = conditions.get("Ready")
    requests = (pod.spec.containers[0].resources.requests or {}) if pod.spec.containers else {}
    return PodView(
        pod.metadata.name,
        phase=pod.status.phase or "Pending",
        ready=ready is not None and ready.status == "True",
        start_s=_ts(pod.status.start_time, origin),
        ready_transition_s=_ts(ready.last_transition_time if ready else None, origin),
        deleting=pod.metadata.deletion_timestamp is not None,
        cpu_millicores=usage_millicores,
        cpu_request_millicores=parse_cpu(requests.get("cpu", "1")),
        metric_timestamp_s=now if usage_millicores is not None else None,
    )


def scale_body(replicas: int) -> dict[str, Any]:
    """The merge patch of the scale subresource."""
    return {"spec": {"replicas": int(replicas)}}


def _requests_total(text: str) -> float:
    """Sum of ``robomr_serve_requests_total`` samples in a Prometheus exposition."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith("robomr_serve_requests_total"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def run_loop(
    deployment: str,
    namespace: str,
    policy_name: str,
    metrics_port: int,
    period_s: float,
    dry_run: bool = False,
    iterations: int | None = None,
) -> int:
    """The control loop (see the module docstring); runs until interrupted."""
    try:
        from kubernetes import client, config
    except ImportError as err:  # pinned in requirements.txt; a broken venv is the user's to fix
        raise KubeError(f"kubernetes client missing: {err}") from err
    from offload.cluster.autoscaling import make_policy

    try:
        config.load_incluster_config()
    except config.ConfigException:
        try:
            config.load_kube_config()
        except (config.ConfigException, OSError) as err:
            raise KubeError(f"no Kubernetes cluster configured: {err}") from err
    apps, core, custom = client.AppsV1Api(), client.CoreV1Api(), client.CustomObjectsApi()
    policy = make_policy(policy_name)
    state, origin = policy.initial_state(), time.time()
    last_total, last_t = None, time.time()
    k = 0
    while iterations is None or k < iterations:
        time.sleep(period_s)
        now = time.time()
        try:
            scale = apps.read_namespaced_deployment_scale(deployment, namespace)
            pods = core.list_namespaced_pod(namespace, label_selector=scale.status.selector)
            usage = {}
            for item in custom.list_namespaced_custom_object(
                "metrics.k8s.io", "v1beta1", namespace, "pods"
            ).get("items", []):
                usage[item["metadata"]["name"]] = sum(
                    parse_cpu(c["usage"]["cpu"]) for c in item["containers"]
                )
        except client.ApiException as err:
            raise KubeError(f"reading {namespace}/{deployment}: {err}") from err
        total = 0.0
        for p in pods.items:
            if p.status.pod_ip:
                try:
                    url = f"http://{p.status.pod_ip}:{metrics_port}/metrics"
                    total += _requests_total(httpx.get(url, timeout=2.0).text)
                except httpx.HTTPError:
                    pass  # a starting or ending pod: its requests are missed, not fatal
        # a pod that went away takes its count along: never a negative rate
        arrivals = max(int(total - last_total), 0) if last_total is not None else 0
        views = tuple(pod_view(p, usage.get(p.metadata.name), now - origin, origin)
                      for p in pods.items)  # fmt: skip
        obs = Observation(now - origin, scale.spec.replicas, views, now - last_t, arrivals)
        desired, state = policy.decide(obs, state)
        if desired != scale.spec.replicas:
            print(f"{deployment}: {scale.spec.replicas} -> {desired}", flush=True)
            if not dry_run:
                apps.patch_namespaced_deployment_scale(deployment, namespace, scale_body(desired))
        last_total, last_t = total, now
        k += 1
    return 0
