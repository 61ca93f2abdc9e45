"""deploy/: every manifest validates against the Kubernetes schema (offline, kubernetes-validate),
and the kustomization renders the objects a Koordinator/Kubernetes user expects."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from offload.cluster.kustomize import KustomizeError, load_all, render

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
K8S_VERSION = "1.32.0"  # a version every maintained cluster runs or exceeds


def _key(obj: dict) -> tuple[str, str]:
    return obj["kind"], obj["metadata"]["name"]


@pytest.fixture(scope="module")
def objects() -> dict[tuple[str, str], dict]:
    return {_key(o): o for o in render(DEPLOY)}


@pytest.mark.parametrize("path", sorted(DEPLOY.rglob("*.yaml")), ids=lambda p: p.name)
def test_every_manifest_file_validates_against_the_schema(path: Path) -> None:
    for doc in load_all(path):
        if doc["apiVersion"].startswith("kustomize.config.k8s.io"):
            continue  # not a Kubernetes object
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_the_rendered_kustomization_validates(objects: dict) -> None:
    for obj in objects.values():
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
        if obj["kind"] != "Namespace" and obj["kind"] not in ("ClusterRole", "ClusterRoleBinding"):
            assert obj["metadata"]["namespace"] == "robomr", _key(obj)
        assert obj["metadata"]["labels"]["app.kubernetes.io/part-of"] == "robomr"


def test_it_holds_what_the_issue_lists(objects: dict) -> None:
    kinds = {k for k, _ in objects}
    assert {
        "Deployment",
        "DaemonSet",
        "Service",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
        "Role",
        "RoleBinding",
        "ServiceAccount",
    } <= kinds
    serve = objects["Deployment", "robomr-serve"]
    pod = serve["spec"]["template"]
    assert pod["metadata"]["labels"]["koordinator.sh/qosClass"] == "LS"
    (c,) = pod["spec"]["containers"]
    assert {"readinessProbe", "livenessProbe", "startupProbe"} <= set(c)
    assert c["resources"]["requests"]["cpu"] and c["resources"]["limits"]["memory"]
    assert c["image"] == "ghcr.io/robomr/robomr-serve:0.1.0"
    hpa = objects["HorizontalPodAutoscaler", "robomr-serve"]
    assert hpa["spec"]["scaleTargetRef"]["name"] == "robomr-serve"
    pdb = objects["PodDisruptionBudget", "robomr-serve"]
    assert pdb["spec"]["selector"]["matchLabels"] == serve["spec"]["selector"]["matchLabels"]
    svc = objects["Service", "robomr-serve"]
    assert svc["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    agent = objects["DaemonSet", "robomr-agent"]["spec"]["template"]["spec"]
    assert agent["serviceAccountName"] == "robomr-agent"


def _granted(*roles: dict) -> set[tuple[str, str, str]]:
    rules = [rule for role in roles for rule in role["rules"]]
    return {
        (g, r, v)
        for rule in rules
        for g in rule["apiGroups"]
        for r in rule["resources"]
        for v in rule["verbs"]
    }


def test_rbac_is_least_privilege(objects: dict) -> None:
    """The agent may read and annotate pods, evict them and read nodes; the router may only
    read pods: no wildcards, no secrets, no writes to workloads; the replicas' account has no
    token at all."""
    agent = _granted(objects["Role", "robomr-agent"], objects["ClusterRole", "robomr-agent-nodes"])
    assert agent == {
        ("", "pods", "get"),
        ("", "pods", "list"),
        ("", "pods", "watch"),
        ("", "pods", "patch"),
        ("", "pods/eviction", "create"),
        ("", "nodes", "get"),
    }
    router = _granted(objects["Role", "robomr-router"])
    assert router == {("", "pods", "get"), ("", "pods", "list"), ("", "pods", "watch")}
    assert objects["ServiceAccount", "robomr-serve"]["automountServiceAccountToken"] is False
    assert not any(
        o["kind"] in ("ClusterRole", "Role") and any("*" in str(r) for r in o["rules"])
        for o in objects.values()
    )


def test_the_besteffort_template_is_a_besteffort_pod() -> None:
    (pod,) = load_all(DEPLOY / "besteffort" / "corunner-pod.yaml")
    kubernetes_validate.validate(pod, K8S_VERSION, strict=True)
    assert pod["metadata"]["labels"]["koordinator.sh/qosClass"] == "BE"
    assert all("resources" not in c for c in pod["spec"]["containers"])  # QoS BestEffort


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_our_renderer_matches_kubectl_kustomize(objects: dict) -> None:
    out = subprocess.run(
        ["kubectl", "kustomize", str(DEPLOY)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    theirs = {_key(o): o for o in yaml.safe_load_all(out) if o}
    assert theirs == objects


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("resources: [missing.yaml]\n", "does not exist"),
        ("patches: []\n", "outside the supported subset"),
        ("images: [{newTag: x}]\nresources: [a.yaml]\n", "without name"),
    ],
)
def test_a_kustomization_outside_the_subset_is_a_clear_error(
    tmp_path: Path, text: str, match: str
) -> None:
    (tmp_path / "a.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n")
    (tmp_path / "kustomization.yaml").write_text(text)
    with pytest.raises(KustomizeError, match=match):
        render(tmp_path)
