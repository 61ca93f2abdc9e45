"""The Kubernetes backend's offline parts: finding pods' cgroups on a node (cgroupfs and systemd
drivers), the in-cluster router's pod table, and the reason given where no cluster exists.
(The contract itself runs against a live cluster in test_contract.py.)"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from offload.cluster.balance import Balancer
from offload.cluster.cgroups import detect
from offload.cluster.kube import besteffort_cgroup, kube_available, pod_cgroup
from offload.cluster.routerd import sync_pods

UID = "0a1b2c3d-1111-2222-3333-444455556666"


@pytest.mark.parametrize(
    ("layout", "pod", "be"),
    [
        # cgroup v1, cgroupfs driver: <controller>/kubepods/<qos>/pod<uid>/<container>
        ("kubepods/burstable/pod{uid}/abc", "kubepods/burstable/pod{uid}", "kubepods/besteffort"),
        # cgroup v2, systemd driver: kubepods.slice/kubepods-<qos>.slice/...-pod<uid_>.slice
        (
            "kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{uscore}.slice/cri-x",
            "kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{uscore}.slice",
            "kubepods.slice/kubepods-besteffort.slice",
        ),
    ],
)
def test_a_pods_cgroup_is_found_by_its_uid(tmp_path: Path, layout: str, pod: str, be: str) -> None:
    fill = {"uid": UID, "uscore": UID.replace("-", "_")}
    (tmp_path / layout.format(**fill)).mkdir(parents=True)
    (tmp_path / "kubepods" / "besteffort").mkdir(parents=True, exist_ok=True)
    assert pod_cgroup(tmp_path, UID) == tmp_path / pod.format(**fill)
    assert pod_cgroup(tmp_path, "ffffffff-0000-0000-0000-000000000000") is None
    assert besteffort_cgroup(tmp_path) is not None


def test_detection_can_be_limited_to_the_hosts_mount(tmp_path: Path) -> None:
    """The agent's own /sys/fs/cgroup and the host's at /host/sys/fs/cgroup: only the latter."""
    for d in ("own", "host/cpu", "host/cpuset"):
        (tmp_path / d).mkdir(parents=True)
    mounts = tmp_path / "mounts"
    mounts.write_text(
        f"cgroup2 {tmp_path}/own cgroup2 rw 0 0\n"
        f"cgroup {tmp_path}/host/cpu cgroup rw,cpu,cpuacct 0 0\n"
        f"cgroup {tmp_path}/host/cpuset cgroup rw,cpuset 0 0\n"
    )
    s = detect(mounts, under=tmp_path / "host")
    assert s.v2 is None and s.v1["cpu"] == tmp_path / "host/cpu"


def _pod(name: str, ip: str | None, ready: bool, weight: str | None = None) -> SimpleNamespace:
    """A pod as the client returns it (the fields the router reads)."""
    cond = SimpleNamespace(type="Ready", status="True" if ready else "False")
    meta = SimpleNamespace(name=name, annotations={"robomr.io/weight": weight} if weight else {})
    return SimpleNamespace(metadata=meta, status=SimpleNamespace(pod_ip=ip, conditions=[cond]))


def test_the_in_cluster_router_follows_ready_pods_and_their_weights() -> None:
    b = Balancer()
    sync_pods(
        b,
        [
            _pod("a", "10.0.0.1", True),
            _pod("b", "10.0.0.2", True, "0.25"),
            _pod("c", "10.0.0.3", False),
            _pod("d", None, True),
        ],
        8700,
    )
    table = {r["name"]: (r["url"], r["weight"]) for r in b.snapshot()}
    assert table == {"a": ("http://10.0.0.1:8700", 1.0), "b": ("http://10.0.0.2:8700", 0.25)}
    sync_pods(b, [_pod("b", "10.0.0.9", True)], 8700)  # a went away, b moved
    assert {r["name"]: r["url"] for r in b.snapshot()} == {"b": "http://10.0.0.9:8700"}


def test_without_a_cluster_the_reason_is_given(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    ok, why = kube_available()
    assert not ok and "KUBECONFIG" in why
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    assert kube_available() == (False, "KUBECONFIG does not point at a kubeconfig file")
