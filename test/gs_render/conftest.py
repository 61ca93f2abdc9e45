"""Shared settings for the gs_render tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def _single_torch_thread() -> Iterator[None]:
    """These tests run many tiny tensor ops; on a loaded 2-core machine OpenMP's thread
    hand-offs cost more than the ops (the fit test measured 7 s with 2 threads, 1 s with 1)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
