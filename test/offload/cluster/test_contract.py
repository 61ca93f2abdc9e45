"""The cluster contract (:mod:`offload.cluster.backend`), run on every backend present: the local
one always (the session cluster of conftest.py), Kubernetes where ``KUBECONFIG`` points at a
reachable cluster (with the images of deploy/ pullable; skipped with the reason otherwise)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from offload.cluster.kube import kube_available


def _wait(cond: Callable[[], bool], timeout_s: float = 300.0) -> bool:
    end = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > end:
            return False
        time.sleep(1.0)
    return True


@pytest.fixture(scope="module", params=["local", "kubernetes"])
def backend(request: pytest.FixtureRequest) -> Iterator[Any]:
    if request.param == "local":
        yield request.getfixturevalue("cluster")
        return
    ok, why = kube_available()
    if not ok:
        pytest.skip(f"no Kubernetes cluster: {why}")
    from offload.cluster.kube import KubeCluster

    kube = KubeCluster(namespace=f"robomr-test-{uuid.uuid4().hex[:6]}")
    kube.up(2)
    yield kube
    kube.down()


def _names(st: dict, key: str) -> set[str]:
    return {x["name"] for x in st[key]}


def test_up_gives_latency_sensitive_replicas(backend: Any) -> None:
    st = backend.status()
    assert st["backend"] in ("local", "kubernetes") and len(st["replicas"]) == 2
    assert all(r["qos"] == "LS" for r in st["replicas"])


def test_the_local_replicas_serve_through_the_router_one_per_cpu(
    backend: Any, detect_once: Callable
) -> None:
    if backend.status()["backend"] != "local":
        pytest.skip("the in-cluster router is reached through the Service, not from here")
    cpus = [tuple(r["cpus"]) for r in backend.status()["replicas"]]
    assert len(set(cpus)) == min(2, len(backend.cpus))  # spread: one replica per cpu
    assert detect_once(backend.router.url, backend.config.token) >= 0


def test_scaling_up_and_down(backend: Any) -> None:
    backend.scale(3)
    assert _wait(
        lambda: (
            sum(r.get("ready", r.get("healthy", False)) for r in backend.status()["replicas"]) == 3
        )
    )
    backend.scale(2)
    assert _wait(lambda: len(backend.status()["replicas"]) == 2)
    with pytest.raises(ValueError, match="replicas"):
        backend.scale(0)


@pytest.mark.parametrize("op", ["stop", "evict"])
def test_a_best_effort_corunner_starts_and_goes(backend: Any, op: str) -> None:
    name = f"c-{op}"
    c = backend.add_corunner({"kind": "cpu", "name": name, "duty": 0.3})
    assert c["state"] in ("running", "pending")
    assert _wait(
        lambda: any(
            x["state"] == "running" and x["name"].endswith(name)
            for x in backend.status()["corunners"]
        )
    )
    assert backend.corunner_op(name, op)["state"] == ("stopped" if op == "stop" else "evicted")
    assert _wait(
        lambda: (
            not any(
                x["state"] == "running" and x["name"].endswith(name)
                for x in backend.status()["corunners"]
            )
        )
    )
