"""Speed part of ``robomr bench detector``: milliseconds per scan, split by stage.

Scans: the simulator's HDL-32E (nuScenes, 32 beams) and HDL-64E (KITTI, 64 beams) models at
the ego start of held-out scenes (seed ``HELDOUT_SEED``), each written to a KITTI-style
``.bin`` file. A timed run is the whole path a user's call takes: read the file
(``perception.cloud_io``), normalise and voxelize, backbone, neck and head, decode; the stage
split comes from ``perception.detect.StageTimer``. Models, side by side in the same process and
taking turns scan by scan (``time_models``):
the trained model; the previous default architecture (backbone 16/32/64 with SECOND's kernel-3
downsampling, BEV and head 64 channels, 25 z cells: the detector before this version,
untrained: timed, not scored, its decode sees the ~100 peaks an untrained head gives); and the
dense-backbone ablation (torch Conv3d on the full grid, untrained). The trained model is also
timed on the same scans deskewed for a robot at 8 m/s turning at 0.1 rad/s (``perception.deskew``,
counted in the voxelize stage), and with its sparse backbone on all the torch threads instead of
one (``detect``'s ``sparse_threads=None``: the behaviour before that default). Every row runs
the dense layers at the bench's ``--dense-precision``; where that is bfloat16, the trained model
is also timed with them in float32 (``FLOAT32_ROW``).
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bench.detector_quality import HELDOUT_SEED
from bench.report import Table, percentile_ms

if TYPE_CHECKING:
    from perception.config import Precision
    from perception.model import Detector

SCANS = {32: "hdl32e", 64: "hdl64e"}
DESKEW_ROW = "trained, deskewed"  # the trained model on deskewed scans (module docstring)
ALL_THREADS_ROW = "trained, sparse on all threads"  # its backbone on the caller's threads
FLOAT32_ROW = "trained, float32 neck and head"  # beside a bfloat16 default (module docstring)
_WARMUP_RUNS = 2  # scans each run makes before the timed ones


def timing_scans(count: int, sensor: str) -> list[np.ndarray]:
    """``count`` scans [N, 5] of ``sensor`` from the ego start of held-out scenes."""
    from geometry.transforms import pose_to_transform
    from sim.generator import GeneratorError, generate_scene
    from sim.lidar import Lidar
    from sim.sensors import TYPICAL_HEIGHT_M, sensor_config
    from sim.world import World

    lidar = Lidar(sensor_config(sensor))
    scans, seed = [], HELDOUT_SEED
    while len(scans) < count:
        seed += 1
        try:
            scene = generate_scene("urban-clutter", seed)
        except GeneratorError:
            continue
        x, y, yaw = scene.ego_start
        T = pose_to_transform(x, y, TYPICAL_HEIGHT_M[sensor], yaw)
        scans.append(lidar.scan(World(scene), T, np.random.default_rng(seed)).points)
    return scans


def variants(model: Detector, with_dense: bool = True) -> dict[str, Detector]:
    """The trained model and its timing baselines (module docstring)."""
    from perception.config import ModelConfig
    from perception.model import Detector

    c = model.config
    previous = replace(
        c,
        voxel=replace(c.voxel, point_range_m=(-40.0, -40.0, -1.2, 40.0, 40.0, 3.8)),  # 25 cells
        model=ModelConfig(backbone_channels=(16, 32, 64), bev_channels=64, head_channels=64),
    )
    dense = replace(c, model=replace(c.model, backbone="dense"))
    out = {"trained": model, "previous default": Detector(previous, down_kernel=3)}
    if with_dense:
        out["dense backbone"] = Detector(dense)
    return {k: v.to(model.device).eval() for k, v in out.items()}


def time_models(
    runs: list[tuple[Detector, Any, Any, Any]], files: list[Path], setup: Any, limits: list[int]
) -> list[dict[str, list[float]]]:
    """Per-file ms of each stage (read, voxelize, backbone, head, decode) and the total, for
    each run (model, ``motion``: a ScanMotion deskewing every scan first, its time counted as
    voxelize's; ``sparse``: ``detect``'s ``sparse_threads``; ``precision``: its dense layers')
    on its first ``limits[i]`` files.
    The runs take turns scan by scan, so a drift of the machine's speed during the
    measurement (tens of percent over a minute on these VMs) reaches every run alike."""
    from perception.cloud_io import read_point_cloud
    from perception.detect import STAGES, StageTimer, detect

    kwargs = [{"motions": m, "sparse_threads": s, "precision": p} for _, m, s, p in runs]
    for (model, *_), options in zip(runs, kwargs, strict=True):
        for f in files[:_WARMUP_RUNS]:
            detect(model, [read_point_cloud(f)], setup, **options)
    out: list[dict[str, list[float]]] = [{k: [] for k in ("read", *STAGES, "total")} for _ in runs]
    for i, f in enumerate(files):
        for (model, *_), options, limit, ms in zip(runs, kwargs, limits, out, strict=True):
            if i >= limit:
                continue
            timer = StageTimer()
            start = time.perf_counter()
            cloud = read_point_cloud(f)
            ms["read"].append(1e3 * (time.perf_counter() - start))
            detect(model, [cloud], setup, timer, **options)
            ms["total"].append(1e3 * (time.perf_counter() - start))
            for k in STAGES:
                ms[k].append(timer.ms[k])
    return out


def speed_table(
    model: Detector,
    frames: int,
    dense_frames: int,
    report_ratios: dict[str, float],
    precision: Precision = "auto",
) -> tuple[Table, dict[str, Any]]:
    """ms per scan (median, p90) and the stage split for 32- and 64-beam scans."""
    import torch

    from perception.cloud_io import write_point_cloud
    from perception.dense_layers import resolve_precision
    from perception.deskew import ScanMotion
    from perception.detect import STAGES
    from perception.sensor_input import SensorSetup
    from sim.sensors import TYPICAL_HEIGHT_M, sensor_config

    table = Table(
        "ms per scan: read + voxelize + network + decode (medians; stages in ms)",
        ["beams", "model", "scans", "points", "median", "p90", "read", *STAGES],
    )
    figures: dict[str, Any] = {}
    models = variants(model, with_dense=dense_frames > 0)
    with tempfile.TemporaryDirectory(prefix="bench_detector_scans_") as tmp:
        for beams, sensor in SCANS.items():
            scans = timing_scans(frames, sensor)
            files = [
                write_point_cloud(Path(tmp) / f"{sensor}_{i}.bin", s) for i, s in enumerate(scans)
            ]
            setup = SensorSetup(height_m=TYPICAL_HEIGHT_M[sensor], layout="kitti")
            medians = {}
            runs: list[tuple[str, Any, Any, Any, Any]] = [
                (n, m, None, 1, precision) for n, m in models.items()
            ]
            motion = ScanMotion((8.0, 0.0, 0.0), 0.1, sensor_config(sensor).scan_period_s)
            runs.insert(1, (DESKEW_ROW, model, motion, 1, precision))
            if torch.get_num_threads() > 1:
                runs.insert(2, (ALL_THREADS_ROW, model, None, None, precision))
            if resolve_precision(precision, model.device) == torch.bfloat16:
                runs.insert(1, (FLOAT32_ROW, model, None, 1, "float32"))
            limits = [len(files) if n != "dense backbone" else dense_frames for n, *_ in runs]
            timings = time_models([tuple(r[1:]) for r in runs], files, setup, limits)
            for (name, *_), ms, limit in zip(runs, timings, limits, strict=True):
                medians[name] = percentile_ms([v / 1e3 for v in ms["total"]], 50)
                points = int(np.median([len(s) for s in scans[:limit]]))
                stage = [float(np.median(ms[k])) for k in ("read", *STAGES)]
                table.add(
                    beams,
                    name,
                    len(ms["total"]),
                    points,
                    medians[name],
                    percentile_ms([v / 1e3 for v in ms["total"]], 90),
                    *stage,
                )
                if name == DESKEW_ROW:
                    figures[f"ms_per_frame_{beams}beam_deskewed_median"] = medians[name]
                if name == "trained":
                    figures[f"ms_per_frame_{beams}beam_median"] = medians[name]
                    if beams == 32:
                        figures["stage_ms"] = dict(zip(STAGES, stage[1:], strict=True))
                        figures["read_ms_32beam_median"] = stage[0]
            for name in (n for n in medians if n != "trained"):
                report_ratios[f"{name} / trained median ms, {beams} beams"] = (
                    medians[name] / medians["trained"]
                )
    return table, figures
