"""``robomr perception train|eval|detect``: the lidar detector from the command line.

Thin: parses arguments, calls ``perception``, prints a table, optionally writes JSON. Every
``PerceptionError`` (bad dataset, model file, point-cloud file, setting) becomes a ``CliError``.
torch and spconv (seconds to import) are imported by the handlers, not when the parser is built,
so that every other ``robomr`` command starts fast.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from bench.report import Table
from perception.cloud_io import LAYOUT_FIELDS, SUFFIXES, parse_fields, read_scan
from perception.config import DEFAULT_MODEL_PATH, PRECISIONS
from perception.errors import PerceptionError
from perception.sensor_input import LAYOUTS, SensorSetup
from robomr_nodes.cli.main import CliError
from robomr_nodes.outputs import OutputError, check_output_file, write_file


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "perception",
        help="lidar detector: train, evaluate, detect",
        description="Sparse-CNN lidar detector (see docs/perception.md).",
    )
    cmds = parser.add_subparsers(dest="perception_command", metavar="COMMAND", required=True)

    p = cmds.add_parser("train", help="train on a simulator dataset (robomr sim dataset)")
    p.add_argument(
        "--data",
        type=Path,
        nargs="+",
        required=True,
        metavar="DIR",
        help="training dataset directories (robomr sim dataset); frames are pooled",
    )
    p.add_argument("--val", type=Path, help="validation dataset, evaluated after training")
    p.add_argument("--out", type=Path, default=DEFAULT_MODEL_PATH, help="model file to write")
    # None: take TrainConfig's default (perception/train.py), named in the help.
    p.add_argument("--epochs", type=int, help="passes over the data (default: 20)")
    p.add_argument("--seed", type=int, help="random seed (default: 0)")
    p.add_argument("--batch-size", type=int, help="frames per step (default: 4)")
    p.add_argument("--lr", type=float, help="peak learning rate (default: 3e-3)")
    p.add_argument(
        "--direction-weight", type=float, help="weight of the direction loss (default: 0.2)"
    )
    p.add_argument("--resume", action="store_true", help="continue from <out>.last.pt")
    p.add_argument(
        "--init-from",
        type=Path,
        metavar="MODEL",
        help="fine-tune: start from this model file's weights (same network) with a new "
        "--epochs schedule; recorded in the provenance",
    )
    p.add_argument(
        "--stop-after-epoch",
        type=int,
        metavar="K",
        help="write the model after epoch K of the --epochs schedule (with --resume: the model "
        "of a checkpoint)",
    )
    p.add_argument(
        "--cache",
        type=Path,
        metavar="DIR",
        help="model-frame cache of the data (default: <out stem>.cache beside the model); "
        "reused while the data is unchanged",
    )
    p.add_argument("--force", action="store_true", help="replace an existing model file at --out")
    p.add_argument(
        "--no-deskew",
        action="store_true",
        help="use scans taken in motion as the lidar reported them (default: deskewed with the "
        "motion each frame records, as odometry would give it; perception/deskew.py)",
    )
    _add_runtime(p)
    p.set_defaults(func=_train)

    p = cmds.add_parser("eval", help="R40 AP (BEV/3D, IoU 0.5/0.7) per class and occlusion")
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL_PATH)
    p.add_argument("--data", type=Path, required=True, help="dataset directory")
    p.add_argument("--json", type=Path, metavar="OUT", help="also write the results as JSON")
    p.add_argument("--batch-size", type=int, default=4, help="frames per forward pass")
    p.add_argument(
        "--no-deskew",
        action="store_true",
        help="use scans taken in motion as the lidar reported them (default: deskewed with the "
        "motion each frame records, as odometry would give it; perception/deskew.py)",
    )
    _add_runtime(p)
    p.set_defaults(func=_eval)

    p = cmds.add_parser(
        "threshold",
        help="choose the default score threshold on validation data (max F1)",
        description="Runs the model on a validation dataset and picks the score threshold with "
        "the highest F1 at BEV IoU 0.5 (perception/threshold.py); --write stores it in the "
        "model file and its provenance. Never use held-out or real check data for this.",
    )
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL_PATH)
    p.add_argument("--data", type=Path, required=True, help="validation dataset directory")
    p.add_argument("--write", action="store_true", help="store the threshold in the model")
    p.add_argument(
        "--no-deskew",
        action="store_true",
        help="use scans taken in motion as the lidar reported them (default: deskewed with the "
        "motion each frame records, as odometry would give it; perception/deskew.py)",
    )
    _add_runtime(p)
    p.set_defaults(func=_threshold)

    p = cmds.add_parser(
        "detect",
        help="detect vehicles in one scan file",
        description="Formats: " + ", ".join(SUFFIXES) + " (docs/perception.md).",
    )
    p.add_argument("file", type=Path, metavar="FILE")
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL_PATH)
    p.add_argument("--json", type=Path, metavar="OUT", help="also write the boxes as JSON")
    p.add_argument("--score-threshold", type=float, help="override the model's threshold")
    p.add_argument(
        "--layout",
        choices=["auto", *(lay.value for lay in LAYOUT_FIELDS)],
        default="auto",
        help=".bin layout: kitti (x,y,z,intensity), nuscenes (+ring); auto decides from the "
        "name (*.pcd.bin), size and values, and refuses when they cannot tell",
    )
    p.add_argument(
        "--fields",
        metavar="F1,F2,...",
        help=".bin layout as float32 field names, e.g. x,y,z,intensity,ring (_ skips a column)",
    )
    _add_sensor(p)
    g = p.add_argument_group(
        "motion", "deskew a scan taken while moving (perception/deskew.py; default: as reported)"
    )
    g.add_argument("--ego-speed", type=float, metavar="M/S", help="forward speed during the scan")
    g.add_argument("--ego-yaw-rate", type=float, default=0.0, metavar="RAD/S", help="left > 0")
    g.add_argument("--scan-period", type=float, default=0.1, metavar="S", help="one revolution")
    g.add_argument(
        "--scan-start-azimuth",
        type=float,
        default=-math.pi,
        metavar="RAD",
        help="azimuth the revolution starts at (lidar frame); the scan ends a turn later",
    )
    g.add_argument("--scan-direction", choices=("ccw", "cw"), default="ccw")
    p.add_argument(
        "--dense-precision",
        choices=PRECISIONS,
        default="auto",
        help="arithmetic of the dense neck and head; auto: bfloat16 where the CPU has it natively "
        "(AVX512-BF16, AMX), else float32 (perception/dense_layers.py)",
    )
    _add_runtime(p)
    p.set_defaults(func=_detect)


def _add_sensor(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group(
        "sensor", "where the lidar sits and how its file encodes points (docs/perception.md)"
    )
    g.add_argument(
        "--sensor-height",
        type=float,
        metavar="M",
        help="lidar height above the ground, m (default: the model's, 1.8)",
    )
    g.add_argument("--sensor-pitch", type=float, default=0.0, metavar="RAD", help="nose down > 0")
    g.add_argument("--sensor-roll", type=float, default=0.0, metavar="RAD")
    g.add_argument(
        "--sensor-yaw",
        type=float,
        default=0.0,
        metavar="RAD",
        help="turn of the lidar frame about z to face x forward (nuScenes LIDAR_TOP: 1.5708)",
    )
    g.add_argument(
        "--sensor-layout",
        default="auto",
        choices=("auto", *LAYOUTS),
        help="intensity and range encoding (default: auto, from the intensity range)",
    )
    g.add_argument(
        "--min-range",
        type=float,
        metavar="M",
        help="drop returns closer than this, m (the robot's own body; default: the model's)",
    )


def sensor_setup(args: argparse.Namespace, frame: Any) -> SensorSetup:
    """The ``SensorSetup`` of the sensor options; ``frame`` is the model's FrameConfig."""
    try:
        return SensorSetup(
            height_m=frame.default_sensor_height_m
            if args.sensor_height is None
            else args.sensor_height,
            pitch_rad=args.sensor_pitch,
            roll_rad=args.sensor_roll,
            yaw_rad=args.sensor_yaw,
            layout=args.sensor_layout,
            min_range_m=frame.min_range_m if args.min_range is None else args.min_range,
        )
    except PerceptionError as err:
        raise CliError(str(err)) from err


def _add_runtime(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:N] (default: auto)")
    p.add_argument("--threads", type=int, help="torch threads (default: torch's own)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def _threads(args: argparse.Namespace) -> None:
    if args.threads is not None:
        if args.threads < 1:
            raise CliError(f"--threads must be >= 1, got {args.threads}")
        import torch

        torch.set_num_threads(args.threads)


def _train(args: argparse.Namespace) -> int:
    from perception.train import LOSS_PARTS, TrainConfig, train

    if args.out.exists() and not (args.force or args.resume):
        raise CliError(
            f"--out {args.out} exists: choose another file, --resume a run, or pass --force "
            "to replace it"
        )
    try:
        check_output_file(args.out, create_parents=True)
    except OutputError as err:
        raise CliError(str(err)) from None

    chosen = {
        "epochs": args.epochs,
        "seed": args.seed,
        "batch_size": args.batch_size,
        "learning_rate": args.lr,
        "direction_weight": args.direction_weight,
    }
    try:
        config = TrainConfig(
            num_threads=args.threads,
            device=args.device,
            deskew=not args.no_deskew,
            **{k: v for k, v in chosen.items() if v is not None},
        )
        result = train(
            args.data,
            args.out,
            config,
            val_dir=args.val,
            resume=args.resume,
            cache_dir=args.cache,
            stop_after_epoch=args.stop_after_epoch,
            init_from=args.init_from,
            command=shlex.join(["robomr", *sys.argv[1:]]),
            progress=not args.no_progress,
        )
    except PerceptionError as err:
        raise CliError(str(err)) from err
    table = Table("training (mean losses per epoch)", ["epoch", *LOSS_PARTS, "seconds"])
    for i, (loss, sec) in enumerate(zip(result.epoch_losses, result.epoch_seconds, strict=True)):
        table.add(i + 1, *[loss[k] for k in LOSS_PARTS], sec)
    print(table.render())
    if "val" in result.metrics:
        for t in _eval_tables(result.metrics["val"], "validation"):
            print(t.render())
    print(f"wrote {result.model_path} and {result.provenance_path}")
    return 0


def _num(value: float | None) -> float:
    return float("nan") if value is None else value


def _eval_tables(result_json: dict[str, Any], title: str) -> list[Table]:
    """AP per class and level, and box errors per class, from ``EvalResult.to_json()``."""
    ap = Table(
        f"{title}: R40 AP (ignored: < 5 points; levels 0 <0.3, 1 0.3-0.7, 2 >0.7)",
        ["class", "level", "gt", "BEV@0.5", "BEV@0.7", "3D@0.5", "3D@0.7"],
    )
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for e in result_json["ap"]:
        row = rows.setdefault((e["class"], e["level"]), {"gt": e["num_gt"]})
        row[f"{e['metric'].upper()}@{e['iou']}"] = _num(e["ap"])
    for (name, level), row in rows.items():
        ap.add(name, level, row["gt"], *[row[c] for c in ap.columns[3:]])
    keys = [k for k in next(iter(result_json["errors"].values())) if k != "matched"]
    errors = Table(
        "box errors of true positives (BEV IoU >= 0.5), means", ["class", "matched", *keys]
    )
    for name, e in result_json["errors"].items():
        errors.add(name, int(e["matched"]), *[_num(e[k]) for k in keys])
    return [ap, errors]


def _eval(args: argparse.Namespace) -> int:
    from perception.checkpoint import load_detector
    from perception.dataset import SimDataset
    from perception.evaluate import EvalConfig, evaluate_model

    _threads(args)
    _check_outputs(args.json)
    if args.batch_size < 1:
        raise CliError(f"--batch-size {args.batch_size}: must be >= 1")
    try:
        model = load_detector(args.model, args.device)
        result = evaluate_model(
            model,
            SimDataset(args.data),
            EvalConfig(),
            args.batch_size,
            not args.no_progress,
            deskew=not args.no_deskew,
        )
    except PerceptionError as err:
        raise CliError(str(err)) from err
    data = result.to_json()
    for table in _eval_tables(data, str(args.data)):
        print(table.render())
    if args.json:
        payload = {"model": str(args.model), "data": str(args.data), **data}
        _write_json(args.json, payload)
    return 0


def _threshold(args: argparse.Namespace) -> int:
    from perception.checkpoint import load_detector, set_score_threshold
    from perception.dataset import SimDataset
    from perception.detect import detect
    from perception.evaluate import (
        EvalConfig,
        GroundTruth,
        evaluation_threshold,
        model_eval_config,
    )
    from perception.provenance import update_provenance
    from perception.threshold import choose_threshold

    _threads(args)
    try:
        model = load_detector(args.model, args.device)
        data = SimDataset(args.data)
        dets, truths = [], []
        with evaluation_threshold(model, 0.05):
            for i in range(len(data)):
                frame = data[i]
                motion = None if args.no_deskew else data.scan_motion(frame)
                dets += detect(model, [frame.points], data.setup(frame), motions=motion)
                truths.append(GroundTruth.from_frame(frame))
        choice = choose_threshold(dets, truths, model_eval_config(EvalConfig(), model.config))
        record = {
            "value": choice.threshold,
            "f1": round(choice.f1, 4),
            "precision": round(choice.precision, 4),
            "recall": round(choice.recall, 4),
            "boxes": choice.num_gt,
            "data": str(args.data),
            "frames": len(data),
            "deskew": not args.no_deskew,
            "rule": "max F1 at BEV IoU 0.5 over all classes (perception/threshold.py)",
        }
        print(
            f"score threshold {choice.threshold:.2f}: F1 {choice.f1:.3f}, precision "
            f"{choice.precision:.3f}, recall {choice.recall:.3f} on {len(data)} frames "
            f"({choice.num_gt} boxes) of {args.data}"
        )
        if args.write:
            set_score_threshold(args.model, choice.threshold, record)
            update_provenance(args.model, {"score_threshold": record})
            print(f"wrote the threshold into {args.model} and its provenance")
    except PerceptionError as err:
        raise CliError(str(err)) from err
    return 0


def _detect(args: argparse.Namespace) -> int:
    from perception.checkpoint import load_detector
    from perception.dense_layers import resolve_precision
    from perception.detect import detect
    from perception.sensor_input import to_model_frame
    from perception.voxelize import usable_mask

    _threads(args)
    _check_outputs(args.json)
    if args.score_threshold is not None and not 0.0 <= args.score_threshold <= 1.0:
        raise CliError(f"--score-threshold {args.score_threshold}: must be in [0, 1]")
    try:
        fields = parse_fields(args.fields) if args.fields is not None else None
        layout = None if args.layout == "auto" else args.layout
        scan = read_scan(args.file, layout, fields)
        model = load_detector(args.model, args.device)
        setup = sensor_setup(args, model.config.frame)
        # usable: finite, beyond the minimum range, and inside the range in the model frame
        usable = usable_mask(to_model_frame(scan.points, setup, False), model.config.voxel)
        if not usable.any():
            finite = int(np.all(np.isfinite(scan.points[:, :3]), axis=1).sum())
            lo, hi = model.config.voxel.point_range_m[:3], model.config.voxel.point_range_m[3:]
            raise CliError(
                f"{args.file}: 0 of {len(scan.points)} points usable ({len(scan.points) - finite} "
                f"not finite, {finite} closer than {setup.min_range_m} m or outside the "
                f"detector's range {list(lo)}..{list(hi)} m above the ground below the lidar)"
            )
        if args.score_threshold is not None:
            post = replace(model.config.postprocess, score_threshold=args.score_threshold)
            model.config = replace(model.config, postprocess=post)
        motion = _scan_motion(args, setup)
        precision = args.dense_precision
        (det,) = detect(model, [scan.points], setup, motions=motion, precision=precision)
        dtype = str(resolve_precision(precision, model.device)).removeprefix("torch.")
    except PerceptionError as err:
        raise CliError(str(err)) from err
    cloud = scan.points
    print(
        f"{args.file}: {scan.layout.value} layout ({scan.how}), {int(usable.sum())} of "
        f"{len(cloud)} points usable; neck and head in {dtype} ({precision})"
    )
    table = Table(
        f"{args.file}: {len(det)} boxes (lidar frame; centre, size in m, yaw in rad)",
        ["#", "class", "score", "x", "y", "z", "length", "width", "height", "yaw"],
    )
    for i, (box, name, score) in enumerate(
        zip(det.boxes, det.class_names, det.scores, strict=True)
    ):
        table.add(i, name, float(score), *[float(v) for v in box])
    print(table.render())
    if args.json:
        payload = {
            "file": str(args.file),
            "model": str(args.model),
            "frame": "lidar",
            "box": "[x, y, z] centre (m), [length, width, height] (m), yaw about +z (rad)",
            "sensor": {
                "height_m": setup.height_m,
                "pitch_rad": setup.pitch_rad,
                "roll_rad": setup.roll_rad,
                "yaw_rad": setup.yaw_rad,
                "layout": setup.layout,
                "min_range_m": setup.min_range_m,
            },
            "deskew": None
            if motion is None
            else {
                "velocity_mps": list(motion.velocity_mps),
                "yaw_rate_radps": motion.yaw_rate_radps,
                "scan_period_s": motion.scan_period_s,
            },
            "num_points": len(cloud),
            "num_points_usable": int(usable.sum()),
            "layout": scan.layout.value,
            "fields": list(scan.fields),
            "dense_precision": dtype,
            "detections": det.to_json(),
        }
        _write_json(args.json, payload)
    return 0


def _scan_motion(args: argparse.Namespace, setup: SensorSetup) -> Any:
    """The ScanMotion of the motion options, None without ``--ego-speed``."""
    from perception.deskew import ScanMotion

    if args.ego_speed is None:
        return None
    return ScanMotion.from_body_twist(
        args.ego_speed,
        0.0,
        args.ego_yaw_rate,
        setup.T_model_sensor[:3, :3],
        scan_period_s=args.scan_period,
        start_azimuth_rad=args.scan_start_azimuth,
        direction=1 if args.scan_direction == "ccw" else -1,
    )


def _check_outputs(*paths: Path | None) -> None:
    """Output files are checked before any work (a failed write must not waste a run)."""
    try:
        for path in paths:
            if path is not None:
                check_output_file(path)
    except OutputError as err:
        raise CliError(str(err)) from None


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    try:
        write_file(path, json.dumps(payload, indent=2) + "\n")
    except OutputError as err:
        raise CliError(str(err)) from None
    print(f"wrote {path}")
