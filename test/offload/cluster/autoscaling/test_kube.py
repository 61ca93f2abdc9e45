"""Kubernetes glue: pods as the policies see them, the scale patch, the manifests (offline)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from offload.cluster.autoscaling.kube import KubeError, parse_cpu, pod_view, scale_body

DEPLOY = Path(__file__).resolve().parents[4] / "deploy" / "autoscale"


@pytest.mark.parametrize(
    ("quantity", "millicores"),
    [("250m", 250.0), ("1", 1000.0), ("1.5", 1500.0), ("1500000n", 1.5), ("12u", 0.012)],
)
def test_cpu_quantities_in_millicores(quantity: str, millicores: float) -> None:
    assert parse_cpu(quantity) == pytest.approx(millicores)


def test_bad_cpu_quantity_is_a_clear_error() -> None:
    with pytest.raises(KubeError, match="not a CPU quantity"):
        parse_cpu("lots")


def _pod(ready: str, deleting: bool) -> client.V1Pod:
    t = datetime(2026, 1, 1, tzinfo=UTC)
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name="p", deletion_timestamp=t if deleting else None),
        spec=client.V1PodSpec(containers=[client.V1Container(
            name="c", resources=client.V1ResourceRequirements(requests={"cpu": "500m"}))]),
        status=client.V1PodStatus(
            phase="Running", start_time=t,
            conditions=[client.V1PodCondition(type="Ready", status=ready,
                                              last_transition_time=t)],
        ),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("ready", "deleting", "serving"),
    [("True", False, True), ("False", False, False), ("True", True, False)],
)
def test_pod_view_follows_ready_condition_and_deletion(ready, deleting, serving) -> None:
    origin = datetime(2026, 1, 1, tzinfo=UTC).timestamp() - 10.0
    view = pod_view(_pod(ready, deleting), 300.0, 20.0, origin)
    assert view.serving is serving
    assert view.cpu_request_millicores == 500.0 and view.cpu_millicores == 300.0
    assert view.start_s == pytest.approx(10.0)


def test_scale_patch_body() -> None:
    assert scale_body(3) == {"spec": {"replicas": 3}}


def test_autoscaler_manifests_validate_against_the_schema() -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    docs = [d for p in sorted(DEPLOY.glob("*.yaml")) for d in yaml.safe_load_all(p.read_text())]
    assert {d["kind"] for d in docs} >= {"Deployment", "Role", "RoleBinding", "ServiceAccount"}
    for doc in docs:
        kubernetes_validate.validate(doc, "1.32.0", strict=True)
    role = next(d for d in docs if d["kind"] == "Role")
    scale_rule = next(r for r in role["rules"] if "deployments/scale" in r["resources"])
    assert set(scale_rule["verbs"]) == {"get", "patch"}
