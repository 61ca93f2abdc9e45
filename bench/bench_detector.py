"""``robomr bench detector``: quality and speed of the lidar detector, in simulation and on a
real sweep.

Quality (``bench.detector_quality``): on held-out frames from scenes, lidar models and seeds
never used in training (``--frames``, default 200, or ``--data``), R40 AP (BEV at IoU 0.7 and
0.5, 3D at 0.7) per vehicle class and occlusion level with bootstrap 95 % intervals over
frames; heading error (median, its interval, share within 0.3 rad) beside the box-axis error of
matched boxes; false positives per frame at the model's score threshold on scenes without
vehicles (``--negatives-frames``); the real-scan check on the shared nuScenes sweep
(``--real-sweep``). Speed (``bench.detector_speed``): ms per 32- and 64-beam scan for read +
voxelize + network + decode, with the stage split, for the trained model beside the previous
default architecture and the dense-backbone ablation, measured in this run.

``--json FILE`` writes, besides the tables: ``ap_bev07_car_unoccluded``, ``ap_bev07_car_ci95``,
``heading_error_median_rad``, ``fp_per_frame_negatives``, ``ms_per_frame_32beam_median``,
``ms_per_frame_64beam_median`` and ``stage_ms`` (voxelize, backbone, head, decode; 32-beam
medians), and the real-sweep check under ``real_sweep``.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from bench.detector_quality import HELDOUT_SEED, HELDOUT_SENSORS
from bench.report import BenchReport
from perception.config import DEFAULT_MODEL_PATH, PRECISIONS

if TYPE_CHECKING:
    from perception.model import Detector

DESCRIPTION = (
    "lidar detector: AP by class/occlusion (bootstrap CIs) on held-out sensors, heading error, "
    "FP/frame without vehicles, real nuScenes sweep check, ms per 32/64-beam scan by stage"
)
REAL_SWEEP = (
    Path(__file__).resolve().parents[1].parent
    / "shared/data/real-lidar/nuscenes_LIDAR_TOP_1532402927647951.pcd.bin"
)


class BenchDetectorError(RuntimeError):
    """The benchmark cannot run: no model or no data."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_PATH)
    parser.add_argument(
        "--data",
        type=Path,
        help=f"held-out dataset (default: generate --frames with {','.join(HELDOUT_SENSORS)}, "
        f"seed {HELDOUT_SEED})",
    )
    parser.add_argument("--frames", type=int, default=200, help="held-out frames to generate")
    parser.add_argument(
        "--negatives-frames", type=int, default=60, help="frames of scenes without vehicles"
    )
    parser.add_argument(
        "--negatives-data",
        type=Path,
        help=f"negatives-only dataset (default: generate --negatives-frames, seed "
        f"{HELDOUT_SEED + 1})",
    )
    parser.add_argument(
        "--real-sweep",
        type=Path,
        default=REAL_SWEEP,
        help="annotated nuScenes sweep (.pcd.bin with <stem>_gt.json beside it)",
    )
    parser.add_argument("--picture", type=Path, help="write a bird's-eye PNG of the real sweep")
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples")
    parser.add_argument("--timing-frames", type=int, default=20, help="scans timed per beams")
    parser.add_argument("--dense-frames", type=int, default=3, help="scans timed, dense ablation")
    parser.add_argument("--no-speed", action="store_true", help="skip the timing")
    parser.add_argument(
        "--speed-only", action="store_true", help="only the timing (no held-out frames, no AP)"
    )
    parser.add_argument("--device", default="cpu", help="cpu, cuda[:N] or auto")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument(
        "--dense-precision",
        choices=PRECISIONS,
        default="auto",
        help="the dense neck and head's arithmetic for every row (auto: bfloat16 where the CPU "
        "has it natively); the speed table also times float32 beside a bfloat16 default",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> BenchReport:
    # torch and spconv load here, not at import: `robomr` builds every benchmark's parser.
    import torch

    from bench import detector_speed as speed
    from perception.checkpoint import load_detector
    from perception.dense_layers import PrecisionError, resolve_precision

    if args.speed_only and args.no_speed:
        raise BenchDetectorError("--speed-only and --no-speed leave nothing to run")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if not Path(args.model).is_file():
        raise BenchDetectorError(
            f"no model at {args.model}; train one with `robomr perception train --data DIR "
            "--out models/detector.pt` or pass --model"
        )
    model = load_detector(args.model, args.device)
    threshold = model.config.postprocess.score_threshold
    try:
        dtype = resolve_precision(args.dense_precision, model.device)
    except PrecisionError as err:
        raise BenchDetectorError(str(err)) from err
    generated = (
        f"generated: {args.frames} frames, seed {HELDOUT_SEED}, sensors {','.join(HELDOUT_SENSORS)}"
    )
    report = BenchReport(
        "detector",
        {
            "model": str(args.model),
            "data": str(args.data or generated),
            "negatives_frames": args.negatives_frames,
            "negatives_data": str(args.negatives_data or "generated"),
            "score_threshold": threshold,
            "bootstrap": args.bootstrap,
            "device": str(model.device),
            "threads": torch.get_num_threads(),
            "dense_precision": f"{args.dense_precision} ({str(dtype).removeprefix('torch.')})",
        },
    )
    if not args.speed_only:
        _quality(args, model, threshold, report)
    if not args.no_speed:
        table, figures = speed.speed_table(
            model, args.timing_frames, args.dense_frames, report.ratios, args.dense_precision
        )
        report.tables.append(table)
        report.figures.update(figures)
    report.notes.append(
        "held-out lidar models and heights were never used in training; the real sweep is a "
        "check, never training data; speed rows other than 'trained' are untrained timing "
        "baselines"
    )
    return report


def _quality(
    args: argparse.Namespace, model: Detector, threshold: float, report: BenchReport
) -> None:
    """The accuracy parts: held-out AP, deskewing, headings, box errors, negatives, real sweep."""
    import torch

    from bench import detector_quality as quality
    from perception.dataset import SimDataset
    from perception.dense_layers import resolve_precision

    progress = not args.no_progress
    with tempfile.TemporaryDirectory(prefix="bench_detector_") as tmp:
        data = args.data or quality.generate(Path(tmp) / "heldout", args.frames, False, progress)
        heldout = SimDataset(data)
        precision = args.dense_precision
        dets, truths = quality.run_model(model, heldout, 0.05, precision=precision)
        for table, figures in (
            quality.ap_table(model, dets, truths, args.bootstrap),
            quality.deskew_table(model, heldout, dets, truths, args.bootstrap, precision),
            quality.heading_table(model, dets, truths, args.bootstrap),
            quality.box_error_table(model, dets, truths),
        ):
            report.tables.append(table)
            report.figures.update(figures)
        if resolve_precision(precision, model.device) != torch.float32:  # beside float32
            table, figures = quality.precision_table(
                model, heldout, dets, truths, args.bootstrap, precision
            )
            report.tables.append(table)
            report.figures.update(figures)
        if args.negatives_data or args.negatives_frames > 0:
            negatives = args.negatives_data or quality.generate(
                Path(tmp) / "neg", args.negatives_frames, True, progress
            )
            table, figures = quality.negatives_table(
                model, SimDataset(negatives), threshold, args.bootstrap, args.dense_precision
            )
            report.tables.append(table)
            report.figures.update(figures)
    if args.real_sweep.is_file():
        table, figures, shown = quality.real_sweep_table(
            model, args.real_sweep, threshold, args.dense_precision
        )
        report.tables.append(table)
        report.figures.update(figures)
        if args.picture:
            from bench.detector_picture import draw_sweep

            draw_sweep(args.picture, *shown, threshold)
            report.notes.append(f"real-sweep picture: {args.picture}")
    else:
        report.notes.append(f"no real sweep at {args.real_sweep}: real-scan check skipped")
