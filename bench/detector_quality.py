"""Quality parts of ``robomr bench detector``: held-out AP with bootstrap intervals, headings,
false positives on scenes without vehicles, and the real-sweep check.

Held-out data: frames generated with the simulator's domain randomisation
(``sim.variation.Variation``) from ``HELDOUT_SEED`` (scenes no training run uses) and lidar
models the shipped model never saw (``HELDOUT_SENSORS``), mounted at heights drawn from a range
wider than training's. Negatives: the variation's ``negatives`` scenario alone (pedestrians,
cyclists, furniture, fences, plants; no vehicle), same sensors, seed ``HELDOUT_SEED + 1``.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bench.report import Table

if TYPE_CHECKING:
    from perception.config import Precision
    from perception.dataset import SimDataset
    from perception.deskew import ScanMotion
    from perception.model import Detector

HELDOUT_SEED = 424_242  # seed of the generated held-out sets; never train with it
HELDOUT_SENSORS = ("vlp32c", "os1-128")  # not among the training variation's sensors
HELDOUT_HEIGHTS_M = (0.8, 2.4)
DESKEW_MODES = ("odometry", "noisy", "off")
ODOMETRY_SPEED_REL = 0.05  # wheel odometry's relative speed error (1 sigma)
ODOMETRY_YAW_RATE_RADPS = 0.02  # its yaw-rate error (1 sigma)
LEVEL_NAMES = {
    "all": "all",
    "0": "unoccluded (<0.3)",
    "1": "partly (0.3-0.7)",
    "2": "heavily (>0.7)",
}


def generate(directory: Path, frames: int, negatives: bool, progress: bool) -> Path:
    """A held-out (or negatives-only) dataset written by the simulator (module docstring)."""
    from sim.dataset import write_dataset
    from sim.variation import Variation

    variation = Variation(sensors=HELDOUT_SENSORS, height_range_m=HELDOUT_HEIGHTS_M)
    if negatives:
        variation = replace(variation, scenarios=("negatives",), scenario_weights=(1.0,))
    seed = HELDOUT_SEED + (1 if negatives else 0)
    return write_dataset(directory, frames, seed=seed, variation=variation, progress=progress)


def noisy_odometry(motion: ScanMotion | None, rng: np.random.Generator) -> ScanMotion | None:
    """``motion`` as a wheel odometry reports it: speed off by N(0, ``ODOMETRY_SPEED_REL``)
    relative, yaw rate by N(0, ``ODOMETRY_YAW_RATE_RADPS``)."""
    if motion is None:
        return None
    speed = np.asarray(motion.velocity_mps) * (1.0 + rng.normal(0.0, ODOMETRY_SPEED_REL))
    yaw_rate = motion.yaw_rate_radps + rng.normal(0.0, ODOMETRY_YAW_RATE_RADPS)
    return replace(motion, velocity_mps=tuple(speed.tolist()), yaw_rate_radps=float(yaw_rate))


def run_model(
    model: Detector,
    dataset: SimDataset,
    score_threshold: float,
    deskew: str = "odometry",
    precision: Precision = "auto",
) -> tuple[list[Any], list[Any]]:
    """Detections (down to ``score_threshold``) and ground truth of every frame. ``deskew``:
    frames taken in motion are deskewed with the motion they record ("odometry"), with that
    motion plus odometry noise ("noisy", seeded), or not at all ("off"); ``precision``: that of
    ``detect``'s dense layers."""
    from perception.detect import detect
    from perception.evaluate import GroundTruth, evaluation_threshold

    if deskew not in DESKEW_MODES:
        raise ValueError(f"deskew={deskew!r}: one of {DESKEW_MODES}")
    rng = np.random.default_rng(HELDOUT_SEED)
    dets, truths = [], []
    with evaluation_threshold(model, score_threshold):
        for i in range(len(dataset)):
            frame = dataset[i]
            motion = dataset.scan_motion(frame) if deskew != "off" else None
            if deskew == "noisy":
                motion = noisy_odometry(motion, rng)
            setup = dataset.setup(frame)
            dets += detect(model, [frame.points], setup, motions=motion, precision=precision)
            truths.append(GroundTruth.from_frame(frame))
    return dets, truths


def ap_table(
    model: Detector, dets: list[Any], truths: list[Any], resamples: int
) -> tuple[Table, dict[str, Any]]:
    """R40 AP per class and occlusion level with bootstrap CIs; figures for the JSON."""
    from perception.bootstrap import bootstrap_ap, frame_records
    from perception.config import CLASSES
    from perception.evaluate import LEVELS, EvalConfig, model_eval_config

    config = model_eval_config(EvalConfig(), model.config)
    table = Table(
        f"R40 AP by class and occlusion level ({len(dets)} held-out frames; 95% CI: "
        f"{resamples} frame bootstrap resamples)",
        ["class", "level", "gt boxes", "BEV@0.7", "95% CI", "BEV@0.5", "3D@0.7"],
    )
    figures: dict[str, Any] = {}
    for name in CLASSES:
        for level in LEVELS:
            records = frame_records(dets, truths, config, name, level, "bev", 0.7)
            seed = 10 * CLASSES.index(name) + LEVELS.index(level)
            ap, lo, hi = bootstrap_ap(records, resamples, seed)
            ap05 = bootstrap_ap(frame_records(dets, truths, config, name, level, "bev", 0.5), 0)[0]
            ap3d = bootstrap_ap(frame_records(dets, truths, config, name, level, "3d", 0.7), 0)[0]
            num_gt = sum(r.num_gt for r in records)
            table.add(name, LEVEL_NAMES[level], num_gt, ap, f"{lo:.3f}-{hi:.3f}", ap05, ap3d)
            if name == "car" and level == "0":
                figures["ap_bev07_car_unoccluded"] = ap
                figures["ap_bev07_car_ci95"] = [lo, hi]
            if name == "car" and level == "all":
                figures["ap_bev07_car_all"] = ap
    return table, figures


def deskew_table(
    model: Detector,
    dataset: SimDataset,
    dets: list[Any],
    truths: list[Any],
    resamples: int,
    precision: Precision = "auto",
) -> tuple[Table, dict[str, Any]]:
    """Car BEV AP@0.7 (unoccluded, all levels) with the scans deskewed by the recorded motion
    (``dets``, the bench's default), by that motion with odometry noise, and not deskewed;
    paired frame-bootstrap intervals of each difference from the default."""
    from perception.evaluate import EvalConfig, model_eval_config

    config = model_eval_config(EvalConfig(), model.config)
    runs = {"odometry": dets}
    for mode in DESKEW_MODES[1:]:
        runs[mode] = run_model(model, dataset, 0.05, mode, precision)[0]
    table = Table(
        f"deskewing ablation: car BEV AP@0.7 on {len(truths)} held-out frames (scans taken at "
        f"0-12 m/s; noisy odometry: speed x N(1, {ODOMETRY_SPEED_REL}), yaw rate + N(0, "
        f"{ODOMETRY_YAW_RATE_RADPS}) rad/s; 95% CI: paired frame bootstrap of the difference)",
        ["deskew", "level", "AP", "minus odometry", "95% CI"],
    )
    figures = {
        f"ap_bev07_car_{level}_deskew_{mode}": ap
        for (mode, level), ap in _paired_ap_rows(table, runs, truths, config, resamples).items()
    }
    return table, figures


def precision_table(
    model: Detector,
    dataset: SimDataset,
    dets: list[Any],
    truths: list[Any],
    resamples: int,
    precision: Precision,
) -> tuple[Table, dict[str, Any]]:
    """Car BEV AP@0.7 (unoccluded, all levels) of the bench's run (``dets``, the neck and head at
    ``precision``) against the same model with them in float32, on the same frames; paired
    frame-bootstrap intervals of the difference."""
    from perception.dense_layers import resolve_precision
    from perception.evaluate import EvalConfig, model_eval_config

    config = model_eval_config(EvalConfig(), model.config)

    dtype = str(resolve_precision(precision, model.device)).removeprefix("torch.")
    label = dtype if precision == dtype else f"{precision} ({dtype})"
    runs = {"float32": run_model(model, dataset, 0.05, precision="float32")[0], label: dets}
    table = Table(
        f"neck and head precision: car BEV AP@0.7 on {len(truths)} held-out frames (95% CI: "
        "paired frame bootstrap of the difference)",
        ["precision", "level", "AP", "minus float32", "95% CI"],
    )
    aps = _paired_ap_rows(table, runs, truths, config, resamples)
    figures = {f"ap_bev07_car_{k}_float32": aps["float32", k] for k in _LEVEL_KEYS.values()}
    return table, figures


_LEVEL_KEYS = {"0": "unoccluded", "all": "all"}  # evaluation level -> figure key


def _paired_ap_rows(
    table: Table,
    runs: dict[str, list[Any]],  # name -> detections per frame; the first is the baseline
    truths: list[Any],
    config: Any,
    resamples: int,
) -> dict[tuple[str, str], float]:  # (run, "unoccluded" | "all") -> car BEV AP@0.7
    """Adds a row per run and level: AP, its difference from the first run and the 95% paired
    frame-bootstrap interval of that difference (the same resamples for every run)."""
    from perception.bootstrap import ap_of, frame_records

    rng = np.random.default_rng(7)
    draws = rng.integers(0, len(truths), (resamples, len(truths)))
    out = {}
    for level, key in _LEVEL_KEYS.items():
        recs = {
            m: frame_records(d, truths, config, "car", level, "bev", 0.7) for m, d in runs.items()
        }
        base = next(iter(recs.values()))
        for name, rec in recs.items():
            ap = ap_of(rec)
            diffs = [ap_of([rec[i] for i in idx]) - ap_of([base[i] for i in idx]) for idx in draws]
            lo, hi = np.nanpercentile(diffs, [2.5, 97.5]) if resamples else (np.nan, np.nan)
            table.add(name, LEVEL_NAMES[level], ap, ap - ap_of(base), f"{lo:+.3f} to {hi:+.3f}")
            out[name, key] = ap
    return out


def heading_table(
    model: Detector, dets: list[Any], truths: list[Any], resamples: int
) -> tuple[Table, dict[str, Any]]:
    """Heading and box-axis errors of true positives (BEV IoU >= 0.5), per class and pooled."""
    from perception.bootstrap import bootstrap_median
    from perception.config import CLASSES
    from perception.evaluate import (
        ERROR_KEYS,
        HEADING_OK_RAD,
        EvalConfig,
        evaluate,
        model_eval_config,
    )

    result = evaluate(dets, truths, model_eval_config(EvalConfig(), model.config))
    table = Table(
        "heading vs box-axis error of matched boxes (BEV IoU >= 0.5, all levels); heading: "
        "[0, pi], axis: heading modulo pi, [0, pi/2]",
        [
            "class",
            "matched",
            "heading median",
            "95% CI",
            f"share < {HEADING_OK_RAD}",
            "axis median",
        ],
    )
    yaw, axis = ERROR_KEYS.index("yaw_rad"), ERROR_KEYS.index("yaw_axis_rad")
    pooled = np.concatenate([result.pairs[c] for c in CLASSES])
    figures: dict[str, Any] = {}
    for name, pairs in [*((c, result.pairs[c]) for c in CLASSES), ("all", pooled)]:
        med, lo, hi = bootstrap_median(pairs[:, yaw], resamples)
        share = float(np.mean(pairs[:, yaw] < HEADING_OK_RAD)) if len(pairs) else float("nan")
        axis_med = float(np.median(pairs[:, axis])) if len(pairs) else float("nan")
        table.add(name, len(pairs), med, f"{lo:.3f}-{hi:.3f}", share, axis_med)
        if name == "all":
            figures |= {
                "heading_error_median_rad": med,
                "heading_error_ci95_rad": [lo, hi],
                "heading_within_0.3rad_share": share,
                "axis_error_median_rad": axis_med,
            }
    return table, figures


def negatives_table(
    model: Detector,
    dataset: SimDataset,
    score_threshold: float,
    resamples: int,
    precision: Precision = "auto",
) -> tuple[Table, dict[str, Any]]:
    """Detections per frame at the default score threshold on scenes without vehicles."""
    from perception.config import CLASSES

    dets, _ = run_model(model, dataset, score_threshold, precision=precision)
    counts = np.array([len(d) for d in dets], dtype=np.float64)
    rng = np.random.default_rng(0)
    means = counts[rng.integers(0, len(counts), (resamples, len(counts)))].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5]) if resamples else (np.nan, np.nan)
    by_class = np.bincount(
        np.concatenate([d.labels for d in dets]).astype(np.int64), minlength=len(CLASSES)
    )
    table = Table(
        f"false positives per frame on {len(dets)} scenes without vehicles (pedestrians, "
        f"cyclists, furniture, fences, plants), score >= {score_threshold:.2f}",
        ["frames", "FP / frame", "95% CI", "frames with none", *[f"as {c}" for c in CLASSES]],
    )
    table.add(
        len(dets),
        float(counts.mean()),
        f"{lo:.3f}-{hi:.3f}",
        float(np.mean(counts == 0)),
        *by_class.tolist(),
    )
    return table, {"fp_per_frame_negatives": float(counts.mean()), "fp_per_frame_ci95": [lo, hi]}


def real_sweep_table(
    model: Detector, path: Path, score_threshold: float, precision: Precision = "auto"
) -> tuple[Table, dict[str, Any], Any]:
    """The real-scan check (``perception.real_check``) on the shared nuScenes sweep."""
    from perception.detect import detect
    from perception.evaluate import evaluation_threshold
    from perception.real_check import NUSCENES_SETUP, check_sweep, load_sweep
    from perception.sensor_input import SensorSetup

    sweep = load_sweep(path)
    setup = SensorSetup(**NUSCENES_SETUP, min_range_m=model.config.frame.min_range_m)
    with evaluation_threshold(model, min(score_threshold, 0.05)):
        (det,) = detect(model, [sweep.points], setup, precision=precision)
    result = check_sweep(sweep, det, score_threshold)
    table = Table(
        f"real sweep {path.name}: vehicles with >= 10 lidar points (found: BEV IoU >= 0.5); "
        f"{result['other']} other detections >= {score_threshold:.2f} "
        f"({result['false']} on no annotated vehicle)",
        ["label", "points", "centre (x, y, z)", "best IoU", "found", "class", "score"],
    )
    for r in result["vehicles"]:
        score = r["score"] if r["score"] is not None else float("nan")
        table.add(
            r["label"],
            r["points"],
            str(r["center_m"]),
            r["best_iou"],
            r["found"],
            r["class"] or "-",
            score,
        )
    figures = {"real_sweep": result}
    return table, figures, (sweep, det, setup)


BOX_ERROR_COLUMNS = (
    ("along_m", "along m"),
    ("across_m", "across m"),
    ("length_signed_m", "length m"),
    ("width_signed_m", "width m"),
    ("yaw_axis_signed_rad", "axis rad"),
)


def box_error_table(
    model: Detector, dets: list[Any], truths: list[Any]
) -> tuple[Table, dict[str, Any]]:
    """Signed errors of matched boxes in the true box's frame, median and MAD per class: which
    part of a box (centre along or across, size, axis) keeps BEV IoU below 0.7."""
    from perception.config import CLASSES
    from perception.evaluate import ERROR_KEYS, EvalConfig, evaluate, model_eval_config

    result = evaluate(dets, truths, model_eval_config(EvalConfig(), model.config))
    table = Table(
        "signed box errors of matched boxes (BEV IoU >= 0.5), detected minus true in the true "
        "box's frame: median [median absolute deviation]",
        ["class", "matched", *(label for _, label in BOX_ERROR_COLUMNS)],
    )
    figures: dict[str, Any] = {}
    for name in CLASSES:
        pairs = result.pairs[name]
        cells, entry = [], {}
        for key, _ in BOX_ERROR_COLUMNS:
            col = pairs[:, ERROR_KEYS.index(key)] if len(pairs) else np.array([])
            med = float(np.median(col)) if len(col) else float("nan")
            mad = float(np.median(np.abs(col - med))) if len(col) else float("nan")
            cells.append(f"{med:+.3f} [{mad:.3f}]")
            entry[key] = {"median": med, "mad": mad}
        table.add(name, len(pairs), *cells)
        figures[name] = entry
    return table, {"box_errors": figures}
