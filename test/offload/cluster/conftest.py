"""Shared fixtures: the machine's cgroup support, a unique cgroup tree per test, co-runners.

Tests that write cgroups skip (with the reason :func:`detect` gives) where the machine does not
permit them; every group a test creates is removed afterwards, its processes stopped first.
"""

from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import Callable, Iterator

import pytest

from offload.cluster.cgroups import Cgroup, CgroupSupport, detect
from offload.cluster.load import street_scan
from offload.cluster.local import LocalCluster, LocalClusterConfig

CLOUD = street_scan(beams=16, columns=256)  # 4k points: a fast request


@pytest.fixture(scope="session")
def support() -> CgroupSupport:
    return detect()


@pytest.fixture(scope="session")
def need(support: CgroupSupport) -> Callable[..., None]:
    """``need("cpu", "freeze")`` skips the test unless every role is available, naming why."""

    def check(*roles: str) -> None:
        for role in roles:
            if not support.has(role):
                pytest.skip(f"cgroup {role} unavailable: {support.missing[role]}")

    return check


@pytest.fixture()
def tree(support: CgroupSupport) -> Iterator[str]:
    """A unique top-level cgroup ``robomr-test-<pid>-<hex>``, removed after the test."""
    rel = f"robomr-test-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    yield rel
    if support.version != "none":
        Cgroup(support, rel).remove()


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    token = secrets.token_urlsafe(24)
    config = LocalClusterConfig(
        token=token,
        work_dir=tmp_path_factory.mktemp("cluster"),
        name="test",
        replica_args=("--policy", "none", "--no-brownout"),
        # the tests' measurements must stand out from other jobs on shared CI cores
        cluster_cpu_shares=262144 if detect().has("weight") else 1024,
    )
    with LocalCluster(config) as c:
        c.up(2)
        yield c


@pytest.fixture(scope="session")
def detect_once() -> Callable[[str, str], int]:
    """One detection through ``url`` with ``token``; returns the number of boxes."""

    def call(url: str, token: str) -> int:
        from offload.client import ClientConfig, OffloadClient

        with OffloadClient(ClientConfig(urls=(url,), token=token, max_attempts=1)) as c:
            boxes, _, _, reply = c.detect(CLOUD, 30.0)
        assert reply.header.get("classes")
        return len(boxes)

    return call
