"""``detect``: the one call a ROS node or the inference server makes on a batch of clouds.

Pipeline: each cloud [N, C >= 3] is voxelized (NaN/Inf rows and out-of-range points dropped,
``perception.voxelize``), the non-empty clouds run through the network together, and the head
output is decoded into :class:`~perception.postprocess.Detections` (``perception.postprocess``).
A cloud without points in range yields an empty ``Detections`` without running the network.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from perception.errors import PerceptionError
from perception.model import Detector
from perception.postprocess import Detections, decode
from perception.voxelize import Voxels, collate, voxelize


class DetectError(PerceptionError):
    """``detect`` was called with something other than a sequence of clouds."""


def run_voxels(model: Detector, voxels: Sequence[Voxels]) -> list[Detections]:
    """Detections for already voxelized clouds (empty voxel sets give empty results)."""
    results = [Detections.empty() for _ in voxels]
    busy = [i for i, v in enumerate(voxels) if len(v) > 0]
    if not busy:
        return results
    feats, coords = collate([voxels[i] for i in busy])  # [V, F], [V, 4]
    device = model.device
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            out = model(
                torch.from_numpy(feats).to(device), torch.from_numpy(coords).to(device), len(busy)
            )
    finally:
        model.train(was_training)
    for i, det in zip(busy, decode(out, model.config), strict=True):
        results[i] = det
    return results


def detect(model: Detector, clouds: Sequence[np.ndarray]) -> list[Detections]:
    """Boxes in each cloud of a batch.

    Args:
        model: a detector, e.g. from :func:`perception.checkpoint.load_detector`.
        clouds: clouds [N_i, C_i] in the lidar frame, columns x, y, z (m)[, intensity, ...].

    Returns:
        One :class:`Detections` per cloud, in order.

    Raises:
        DetectError: ``clouds`` is a single array instead of a sequence of clouds.
        VoxelizeError: a cloud is not 2-D, not numeric, or has fewer than 3 columns.
    """
    if isinstance(clouds, np.ndarray):
        raise DetectError(
            "clouds must be a list of [N, C] arrays, got one ndarray; "
            "wrap a single cloud as [cloud]"
        )
    return run_voxels(model, [voxelize(cloud, model.config.voxel) for cloud in clouds])
