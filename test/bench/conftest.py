"""Benchmarks in tests run torch on one thread: on shared cores two threads spin-wait and run
several times slower (see robomr_nodes/nodes/lidar_detector.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
