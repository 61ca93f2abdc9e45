"""``detect``: the one call a ROS node or the inference server makes on a batch of clouds.

Pipeline: each cloud [N, C >= 3] from any lidar is deskewed when the lidar's motion during the
scan is given (``perception.deskew``: the rolling shutter of a moving robot undone with its
odometry), normalised into the model frame
(``perception.sensor_input``: per-layout range and intensity scaling, self-returns dropped,
the mounting transform from its ``SensorSetup``) and voxelized (NaN/Inf rows and out-of-range
points dropped, ``perception.voxelize``); the non-empty clouds run through the network together;
the head output is decoded into boxes (``perception.postprocess``), which go back to each
cloud's own (lidar) frame. A cloud without points in range yields an empty ``Detections``
without running the network. The dense neck and head run in float32 or, on a CPU that
multiplies bfloat16 natively, in bfloat16 (``precision``; ``perception.dense_layers``).
``StageTimer`` splits the time into the stages the benchmark reports (voxelize, backbone, head,
decode).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch

from perception.backbone import SparseBackbone
from perception.config import Precision
from perception.dense_layers import dense_layers, resolve_precision
from perception.deskew import ScanMotion, deskew
from perception.errors import PerceptionError
from perception.model import Detector, HeadOutput
from perception.postprocess import Detections, decode
from perception.sensor_input import (
    SensorSetup,
    boxes_to_sensor_frame,
    layout_of,
    to_model_frame,
)
from perception.voxelize import Voxels, as_cloud, collate, voxelize

STAGES = ("voxelize", "backbone", "head", "decode")


class DetectError(PerceptionError):
    """``detect`` was called with something other than a sequence of clouds, or with a number
    of sensor setups that does not match the clouds."""


@dataclass
class StageTimer:
    """Accumulated wall time (ms) per stage of ``STAGES`` over the calls it is passed to."""

    ms: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))

    def add(self, stage: str, start: float) -> float:
        now = time.perf_counter()
        self.ms[stage] += 1e3 * (now - start)
        return now


def default_setup(model: Detector) -> SensorSetup:
    """The setup assumed for clouds given without one (``model.config.frame``)."""
    frame = model.config.frame
    return SensorSetup(height_m=frame.default_sensor_height_m, min_range_m=frame.min_range_m)


@contextmanager
def backbone_threads(model: Detector, threads: int | None) -> Iterator[None]:
    """Runs the block (the sparse backbone) on ``threads`` torch threads on a CPU (None: the
    caller's), then restores the caller's count. The default of ``detect`` is one: spconv's CPU
    rulebooks are serial, and its scatter is exact only on one thread
    (``perception.spconv_compat``), where the thread-safe replacement is slower; the dense
    neck and head keep the caller's threads. Side by side: ``bench detector``'s speed rows."""
    before = torch.get_num_threads()
    skip = threads is None or threads == before or model.device.type != "cpu"
    if skip or not isinstance(model.backbone, SparseBackbone):
        yield
        return
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def run_voxels(
    model: Detector,
    voxels: Sequence[Voxels],
    timer: StageTimer | None = None,
    sparse_threads: int | None = 1,
    precision: Precision = "float32",
) -> list[Detections]:
    """Detections (model frame) for already voxelized clouds (empty voxel sets give empty
    results); ``sparse_threads``, ``precision``: see :func:`detect`."""
    results = [Detections.empty() for _ in voxels]
    busy = [i for i, v in enumerate(voxels) if len(v) > 0]
    if not busy:
        return results
    device = model.device
    dtype = resolve_precision(precision, device)
    feats, coords = collate([voxels[i] for i in busy])  # [V, F], [V, 4]
    was_training = model.training
    model.eval()
    neck, head = dense_layers(model, dtype)  # built outside inference mode: reusable in autograd
    start = time.perf_counter()
    try:
        with torch.inference_mode():
            f, c = torch.from_numpy(feats).to(device), torch.from_numpy(coords).to(device)
            with backbone_threads(model, sparse_threads):
                bev = model.backbone(f, c, len(busy))
            if timer is not None:
                start = timer.add("backbone", start)
            out = head(neck(bev.to(dtype).contiguous(memory_format=torch.channels_last)))
            if dtype != torch.float32:
                out = HeadOutput(out.heatmap.float(), out.regression.float(), out.direction.float())
            if timer is not None:
                start = timer.add("head", start)
    finally:
        model.train(was_training)
    for i, det in zip(busy, decode(out, model.config), strict=True):
        results[i] = det
    if timer is not None:
        timer.add("decode", start)
    return results


def detect(
    model: Detector,
    clouds: Sequence[np.ndarray],
    setups: SensorSetup | Sequence[SensorSetup] | None = None,
    timer: StageTimer | None = None,
    motions: ScanMotion | Sequence[ScanMotion | None] | None = None,
    sparse_threads: int | None = 1,
    precision: Precision = "float32",
) -> list[Detections]:
    """Boxes in each cloud of a batch.

    Args:
        model: a detector, e.g. from :func:`perception.checkpoint.load_detector`.
        clouds: clouds [N_i, C_i] in their lidar frames, columns x, y, z (m)[, intensity, ...].
        setups: the lidar's mounting and layout, one for all clouds or one per cloud; None:
            ``default_setup(model)`` (the simulator's lidar, 1.8 m above the ground).
        timer: accumulates the time of each stage when given.
        motions: the lidar's motion during each scan (odometry), one for all clouds or one per
            cloud (None: that cloud is used as reported); given, the cloud is deskewed into the
            lidar's frame at the scan's end, where its boxes are reported.
        sparse_threads: torch threads of the sparse backbone on a CPU (None: the caller's).
            One by default: on these 2-vCPU machines the backbone runs 1.1-2x faster on one
            thread than on two (``backbone_threads``).
        precision: the dense neck and head's arithmetic: ``"float32"`` (the default: the same
            boxes on every CPU to float rounding), ``"bfloat16"`` (CPU only) or ``"auto"``
            (bfloat16 where the CPU multiplies it natively, AVX512-BF16 or AMX, about 5 ms
            faster per scan there; float32 elsewhere: ``dense_layers.default_precision``).

    Returns:
        One :class:`Detections` per cloud, in order, boxes in that cloud's frame.

    Raises:
        DetectError: ``clouds`` is a single array instead of a sequence of clouds, or the
            number of setups or motions differs from the number of clouds.
        VoxelizeError: a cloud is not 2-D, not numeric, or has fewer than 3 columns.
        PrecisionError: an unknown ``precision``, or bfloat16 on a GPU.
    """
    if isinstance(clouds, np.ndarray):
        raise DetectError(
            "clouds must be a list of [N, C] arrays, got one ndarray; "
            "wrap a single cloud as [cloud]"
        )
    if setups is None or isinstance(setups, SensorSetup):
        per_cloud = [setups or default_setup(model)] * len(clouds)
    else:
        per_cloud = list(setups)
        if len(per_cloud) != len(clouds):
            raise DetectError(f"{len(per_cloud)} sensor setups for {len(clouds)} clouds")
    if sparse_threads is not None and sparse_threads < 1:
        raise DetectError(f"sparse_threads={sparse_threads}: must be >= 1 or None")
    resolve_precision(precision, model.device)  # a bad name fails before any work
    if motions is None or isinstance(motions, ScanMotion):
        moved: list[ScanMotion | None] = [motions] * len(clouds)
    else:
        moved = list(motions)
        if len(moved) != len(clouds):
            raise DetectError(f"{len(moved)} scan motions for {len(clouds)} clouds")
    start = time.perf_counter()
    intensity = model.config.voxel.use_intensity
    voxels = []
    for cloud, setup, motion in zip(clouds, per_cloud, moved, strict=True):
        points = as_cloud(cloud)
        if motion is not None:
            scale = layout_of(points, setup, intensity).range_scale
            points = deskew(points, motion, units_per_m=1.0 / scale)
        voxels.append(voxelize(to_model_frame(points, setup, intensity), model.config.voxel))
    if timer is not None:
        timer.add("voxelize", start)
    found = run_voxels(model, voxels, timer, sparse_threads, precision)
    return [
        Detections(boxes_to_sensor_frame(d.boxes, s), d.labels, d.scores) if len(d) else d
        for d, s in zip(found, per_cloud, strict=True)
    ]
