"""Shared fixtures: small real models (a narrow detector with random weights on a 25.6 m grid, a
few-thousand-Gaussian street map) and a policy context with a known linear cost model."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch

from offload.serving.model import MemoryModel
from offload.serving.policy import PolicyContext, QueuedRequest

TOKEN = "test-token-0123456789"


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread() -> Iterator[None]:
    """One torch thread: on shared cores OpenMP hand-offs cost more than these tiny models."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def small_detector():
    """The served detector around a small untrained network (fast; outputs are still real)."""
    from offload.serving.models.detector import DetectorModel
    from perception.config import DetectorConfig, ModelConfig, VoxelConfig
    from perception.model import Detector

    torch.manual_seed(0)
    config = DetectorConfig(
        voxel=VoxelConfig(point_range_m=(-12.8, -12.8, -3.0, 12.8, 12.8, 2.0)),
        model=ModelConfig(backbone_channels=(8, 16, 16), bev_channels=16, head_channels=16),
    )
    return DetectorModel(Detector(config).eval(), brownout_range_m=6.4, max_points=20_000)


@pytest.fixture(scope="session")
def small_renderer():
    """The served renderer around a 3000-Gaussian synthetic street."""
    from gs_render import from_surface_samples
    from gs_render.synthetic import street_samples
    from offload.serving.models.renderer import RenderModel

    points, normals, colors, spacing = street_samples(3000, seed=0)
    return RenderModel(from_surface_samples(points, normals, colors, spacing), backend="torch")


def _cloud(n: int, seed: int = 0) -> np.ndarray:
    """A float32 [n, 4] cloud inside the small detector's range."""
    rng = np.random.default_rng(seed)
    pts = rng.uniform(-12.0, 12.0, (n, 4)).astype(np.float32)
    pts[:, 2] = rng.uniform(-2.0, 1.0, n)
    return pts


def _linear_ctx(
    per_item_s: float = 0.1,
    per_unit_s: float = 0.0,
    fixed_bytes: float = 10.0,
    bytes_per_unit: float = 1.0,
    budget: float = 1000.0,
) -> PolicyContext:
    """A context whose batch takes per_item_s x n + per_unit_s x units seconds and needs
    fixed_bytes x n + bytes_per_unit x units bytes."""
    mem = MemoryModel(fixed_bytes, bytes_per_unit)
    return PolicyContext(
        predict_s=lambda _p, units, n: per_item_s * n + per_unit_s * units,
        batch_bytes=lambda _p, costs: mem.batch_bytes(costs),
        item_bytes=lambda _p, cost: mem.item_bytes(cost),
        memory_budget_bytes=budget,
    )


def _req(
    i: int, cost: int, deadline_s: float, arrival_s: float = 0.0, path: str = "full"
) -> QueuedRequest:
    return QueuedRequest(i, cost, path, arrival_s, deadline_s)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def make_cloud():
    return _cloud


@pytest.fixture(scope="session")
def linear_ctx():
    return _linear_ctx


@pytest.fixture(scope="session")
def make_req():
    return _req
