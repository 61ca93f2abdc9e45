"""``robomr bench detector``: detection quality and speed of the sparse-CNN lidar detector.

Quality: R40 AP (BEV and 3D IoU at 0.5 and 0.7) for cars per occlusion level on a held-out
simulator dataset (``--data``, or one generated with ``sim.dataset`` from ``HELDOUT_SEED``, a
seed that training must not use). Speed: milliseconds per frame of the whole ``detect`` call
(voxelize, network, decode) on 32- and 64-beam scans, for the trained sparse model and for the
dense-backbone ablation (the same layers as torch Conv3d, untrained: it is timed, not scored),
measured side by side in this run. 32-beam scans are the even rings of 64-beam ones.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bench.report import BenchReport, Table, percentile_ms
from perception.config import DEFAULT_MODEL_PATH

if TYPE_CHECKING:
    from perception.dataset import Frame
    from perception.model import Detector

DESCRIPTION = (
    "lidar detector: car AP (BEV/3D, IoU 0.5/0.7) by occlusion level; ms per "
    "32/64-beam frame, sparse vs dense backbone"
)
HELDOUT_SEED = 424_242  # seed of the generated held-out set; never train with it
_WARMUP_RUNS = 2


class BenchDetectorError(RuntimeError):
    """The benchmark cannot run: no model, no dataset, or no simulator to make one."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data",
        type=Path,
        help="held-out dataset directory (default: "
        f"generate one with sim.dataset, seed {HELDOUT_SEED}, 64 beams)",
    )
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_PATH)
    parser.add_argument("--frames", type=int, default=40, help="frames to generate (no --data)")
    parser.add_argument(
        "--ap-beams",
        type=int,
        choices=(32, 64),
        help="scans scored for AP "
        "(default: the beams the model was trained on, from its provenance)",
    )
    parser.add_argument("--timing-frames", type=int, default=20, help="sparse frames timed")
    parser.add_argument("--dense-frames", type=int, default=3, help="dense frames timed")
    parser.add_argument("--device", default="cpu", help="cpu, cuda[:N] or auto")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's own)")


def _sim_writer() -> tuple[Callable[..., Any], Callable[..., Any]] | None:
    """``sim.dataset.write_dataset`` and ``sim.lidar.LidarConfig``, or None without them."""
    try:
        dataset = importlib.import_module("sim.dataset")
        lidar = importlib.import_module("sim.lidar")
    except ModuleNotFoundError:
        return None
    write, config = getattr(dataset, "write_dataset", None), getattr(lidar, "LidarConfig", None)
    return None if write is None or config is None else (write, config)


def generate_heldout(directory: Path, frames: int) -> Path:
    """Writes a 64-beam held-out dataset with the simulator (seed ``HELDOUT_SEED``).

    Raises:
        BenchDetectorError: the simulator's dataset writer is not available or has another
            signature than ``write_dataset(out_dir, frames, *, seed, lidar)``.
    """
    found = _sim_writer()
    if found is None:
        raise BenchDetectorError(
            "the simulator's dataset writer (sim.dataset.write_dataset, sim.lidar.LidarConfig) "
            "is not available; pass --data DIR with a dataset written by `robomr sim dataset`"
        )
    write, lidar_config = found
    kwargs = {"seed": HELDOUT_SEED, "lidar": lidar_config(beams=64)}
    try:
        inspect.signature(write).bind(directory, frames, **kwargs)
    except TypeError as err:
        raise BenchDetectorError(
            "sim.dataset.write_dataset(out_dir, frames, *, seed, lidar) is needed to generate "
            f"the held-out set ({err}); pass --data DIR instead"
        ) from err
    return Path(write(directory, frames, **kwargs))


def _ring_count(meta: dict[str, Any], max_ring: int) -> int:
    """Rings of the dataset's lidar: meta.json ``lidar.beams`` when present, else the highest
    ring seen rounded up to a multiple of 32 (upper rings often see only sky)."""
    lidar = meta.get("lidar")
    beams = lidar.get("beams") if isinstance(lidar, dict) else None
    if isinstance(beams, int) and beams > max_ring:
        return beams
    return -(-(max_ring + 1) // 32) * 32


def _ring_mask(points: np.ndarray, num_rings: int, beams: int) -> np.ndarray | None:
    """Mask [N] keeping every (num_rings / beams)-th ring of ``points`` [N, 5]; None if
    ``beams`` does not divide ``num_rings``."""
    if beams > num_rings or num_rings % beams:
        return None
    return points[:, 4].astype(np.int64) % (num_rings // beams) == 0


def _trained_beams(model_path: Path) -> int | None:
    """Beams of the lidar the model was trained on, from its provenance (None if unknown)."""
    from perception.checkpoint import read_model_file

    meta = read_model_file(model_path).get("metadata", {})
    lidar = meta.get("dataset", {}).get("meta", {}).get("lidar", {})
    beams = lidar.get("beams") if isinstance(lidar, dict) else None
    return beams if isinstance(beams, int) else None


def _time_ms(model: Detector, clouds: list[np.ndarray]) -> list[float]:
    from perception.detect import detect

    for cloud in clouds[:1] * _WARMUP_RUNS:
        detect(model, [cloud])
    samples = []
    for cloud in clouds:
        start = time.perf_counter()
        detect(model, [cloud])
        samples.append(time.perf_counter() - start)
    return samples


def _ap_table(model: Detector, frames: list[Frame], num_rings: int, beams: int) -> Table:
    """Car AP per occlusion level on the ``beams``-ring version of ``frames``."""
    from perception.detect import detect
    from perception.evaluate import LEVELS, EvalConfig, GroundTruth, evaluate, model_eval_config

    clouds, truths = [], []
    for f in frames:
        keep = _ring_mask(f.points, num_rings, beams)
        if keep is None:
            raise BenchDetectorError(f"{beams}-beam scans cannot be made from {num_rings} rings")
        hits = f.point_object[keep]
        clouds.append(f.points[keep])
        counts = np.bincount(hits[hits >= 0], minlength=len(f.boxes))  # points left per box
        truths.append(GroundTruth(f.boxes, f.labels, f.occlusion, counts))
    detections = [d for i in range(0, len(clouds), 4) for d in detect(model, clouds[i : i + 4])]
    result = evaluate(detections, truths, model_eval_config(EvalConfig(), model.config))
    table = Table(
        f"car R40 AP by occlusion level on {beams}-beam scans "
        "(0: <0.3, 1: 0.3-0.7, 2: >0.7; boxes < 5 points ignored)",
        ["level", "gt boxes", "BEV@0.5", "BEV@0.7", "3D@0.5", "3D@0.7"],
    )
    for level in LEVELS:
        aps = [result.ap[(m, t, "car", level)] for m in ("bev", "3d") for t in (0.5, 0.7)]
        table.add(level, result.num_gt[("car", level)], *aps)
    return table


def _speed(
    report: BenchReport, model: Detector, frames: list[Frame], num_rings: int, dense_frames: int
) -> Table:
    """ms per frame, sparse vs dense backbone, on 32- and 64-beam scans; ratios into report."""
    from perception.model import Detector

    dense = Detector(replace(model.config, model=replace(model.config.model, backbone="dense")))
    dense = dense.to(model.device).eval()
    table = Table(
        "ms per frame (detect: voxelize + network + decode)",
        ["beams", "backbone", "frames", "points (median)", "median ms", "p90 ms"],
    )
    for beams in (32, 64):
        masks = [_ring_mask(f.points, num_rings, beams) for f in frames]
        clouds = [f.points[m] for f, m in zip(frames, masks, strict=True) if m is not None]
        if not clouds:
            report.notes.append(f"the dataset has {num_rings} rings: no {beams}-beam timing")
            continue
        medians = {}
        for name, net, subset in (
            ("sparse", model, clouds),
            ("dense", dense, clouds[:dense_frames]),
        ):
            samples = _time_ms(net, subset)
            medians[name] = percentile_ms(samples, 50)
            points = int(np.median([len(c) for c in subset]))
            table.add(beams, name, len(subset), points, medians[name], percentile_ms(samples, 90))
        ratio = medians["dense"] / medians["sparse"]
        report.ratios[f"dense / sparse median ms, {beams} beams"] = ratio
    return table


def run(args: argparse.Namespace) -> BenchReport:
    # torch and spconv load here, not at import: `robomr` builds every benchmark's parser.
    import torch

    from perception.checkpoint import load_detector
    from perception.dataset import SimDataset

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if not Path(args.model).is_file():
        raise BenchDetectorError(
            f"no model at {args.model}; train one with `robomr perception "
            "train --data DIR --out models/detector.pt` or pass --model"
        )
    model = load_detector(args.model, args.device)
    with tempfile.TemporaryDirectory(prefix="bench_detector_") as tmp:
        data = args.data or generate_heldout(Path(tmp) / "heldout", args.frames)
        dataset = SimDataset(data)
        frames = [dataset[i] for i in range(len(dataset))]
    num_rings = _ring_count(dataset.meta, int(max(f.points[:, 4].max() for f in frames)))
    ap_beams = args.ap_beams or _trained_beams(args.model) or num_rings
    report = BenchReport(
        "detector",
        {
            "data": str(args.data or f"generated by sim.dataset, seed {HELDOUT_SEED}"),
            "frames": len(frames),
            "rings": num_rings,
            "ap_beams": ap_beams,
            "model": str(args.model),
            "device": str(model.device),
            "timing_frames": min(len(frames), args.timing_frames),
            "dense_frames": args.dense_frames,
        },
    )
    report.tables.append(_ap_table(model, frames, num_rings, ap_beams))
    timed = frames[: args.timing_frames]
    report.tables.append(_speed(report, model, timed, num_rings, args.dense_frames))
    report.notes.append(
        f"AP on {ap_beams}-beam scans (one ring in {num_rings // ap_beams}; boxes' point "
        "counts recounted); dense backbone: the same layer plan as torch Conv3d on the full "
        "grid, untrained weights (speed baseline only)"
    )
    return report
