"""Shared fixtures: a small detector config and tiny synthetic datasets in the simulator format."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from perception.config import DetectorConfig, ModelConfig, VoxelConfig
from perception.synthetic import SyntheticConfig, write_synthetic_dataset

# 25.6 m x 25.6 m x 5 m at 0.2 m: a 128 x 128 x 25 grid, 32 x 32 BEV cells; narrow layers.
# z in the model frame (ground at 0; the synthetic lidar sits 1.8 m up).
SMALL_CONFIG = DetectorConfig(
    voxel=VoxelConfig(point_range_m=(-12.8, -12.8, -1.0, 12.8, 12.8, 4.0)),
    model=ModelConfig(backbone_channels=(8, 16, 16), bev_channels=16, head_channels=16),
)
# Vehicles within the small config's range; a coarse lidar keeps frames small.
SMALL_SCENE = SyntheticConfig(
    num_frames=4,
    beams=32,
    azimuth_steps=512,
    vehicles=(2, 4),
    obstacles=(1, 3),
    placement_radius_m=10.0,
)


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Runs this folder's tests on one torch thread, then restores the count.

    On these shared 2-core machines two OpenMP threads per process collapse when other
    processes run (measured: the folder took 148 s with 2 threads under a load of 4.5, 11 s
    with 1). Results do not depend on the thread count beyond float rounding.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def small_config() -> DetectorConfig:
    return SMALL_CONFIG


@pytest.fixture(scope="session")
def synthetic_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four frames written in the docs/conventions.md format (read-only for tests)."""
    return write_synthetic_dataset(tmp_path_factory.mktemp("synthetic") / "train", SMALL_SCENE)
