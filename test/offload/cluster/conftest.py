"""Shared fixtures: the machine's cgroup support, a unique cgroup tree per test, co-runners.

Tests that write cgroups skip (with the reason :func:`detect` gives) where the machine does not
permit them; every group a test creates is removed afterwards, its processes stopped first.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import pytest

from offload.cluster.cgroups import Cgroup, CgroupSupport, detect


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
