"""The real-scan check: detections on one annotated real sweep against its annotations.

The shared sweep (``../shared/data/real-lidar/``, one nuScenes LIDAR_TOP sweep, HDL-32E,
float32 x, y, z, intensity 0-255, ring per point; its annotations in the same lidar frame,
x right, y forward) is a check, never training data. Definitions:

- vehicles: annotations labelled car, truck, bus, trailer or construction_vehicle;
- a checked vehicle has at least ``min_points`` lidar points (10): the others are too far or
  hidden for any lidar detector;
- a checked vehicle is found when some detection (any class) overlaps it at BEV IoU >=
  ``iou_threshold`` (0.5);
- every other detection at or above the score threshold is an "other" detection; those that
  overlap no annotated vehicle at all (BEV IoU > 0) are also counted as "false" (the rest sit on
  vehicles with fewer points, which nuScenes annotated but the check does not require).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from perception.errors import PerceptionError
from perception.iou import bev_iou
from perception.postprocess import Detections

VEHICLE_LABELS = ("car", "truck", "bus", "trailer", "construction_vehicle")
# nuScenes LIDAR_TOP: mounted about 1.84 m above the ground (calibrated_sensor z = 1.84 m),
# x to the right and y forward: turning it by -pi/2 about z makes x point forward.
NUSCENES_SETUP = {"height_m": 1.84, "yaw_rad": -np.pi / 2, "layout": "nuscenes"}


class RealCheckError(PerceptionError):
    """The sweep or its annotation file is missing or malformed."""


@dataclass(frozen=True)
class AnnotatedSweep:
    """A real sweep and its annotations (lidar frame)."""

    points: np.ndarray  # [N, 5] float32 x, y, z, intensity (0-255), ring
    boxes: np.ndarray  # [M, 7] float64
    labels: tuple[str, ...]  # [M]
    num_points: np.ndarray  # [M] int64 lidar points in each box (nuScenes' count)


def load_sweep(path: str | Path) -> AnnotatedSweep:
    """The nuScenes sweep ``path`` (5 float32 values per point) and ``<stem>_gt.json``.

    Raises:
        RealCheckError: missing or malformed files.
    """
    path = Path(path)
    gt_path = path.with_name(path.name.replace(".pcd.bin", "") + "_gt.json")
    try:
        raw = np.fromfile(path, dtype="<f4")
        data = json.loads(gt_path.read_text())
        entries = data["boxes"]
        boxes = np.array([[b[k] for k in ("x", "y", "z", "l", "w", "h", "yaw")] for b in entries])
        labels = tuple(str(b["label"]) for b in entries)
        counts = np.array([int(b["num_lidar_pts"]) for b in entries], dtype=np.int64)
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise RealCheckError(f"cannot read the annotated sweep {path}: {err}") from err
    if raw.size % 5:
        raise RealCheckError(f"{path}: {raw.size} floats is not a multiple of 5 (x, y, z, i, ring)")
    return AnnotatedSweep(raw.reshape(-1, 5), boxes.reshape(-1, 7), labels, counts)


def check_sweep(
    sweep: AnnotatedSweep,
    detections: Detections,
    score_threshold: float,
    min_points: int = 10,
    iou_threshold: float = 0.5,
) -> dict[str, Any]:
    """The check of the module docstring: per checked vehicle (label, points, best IoU, found,
    class and score of its best detection), and the counts of other and false detections."""
    keep = detections.scores >= score_threshold
    det_boxes, det_scores = detections.boxes[keep], detections.scores[keep]
    det_names = [detections.class_names[i] for i in np.flatnonzero(keep)]
    vehicle = np.array([lb in VEHICLE_LABELS for lb in sweep.labels], dtype=bool)
    checked = np.flatnonzero(vehicle & (sweep.num_points >= min_points))
    iou = bev_iou(det_boxes, sweep.boxes) if len(det_boxes) else np.zeros((0, len(sweep.boxes)))
    used = np.zeros(len(det_boxes), dtype=bool)
    rows = []
    for j in checked:
        best = int(np.argmax(iou[:, j])) if len(det_boxes) else -1
        best_iou = float(iou[best, j]) if best >= 0 else 0.0
        found = best_iou >= iou_threshold
        if found:
            used[best] = True
        rows.append(
            {
                "label": sweep.labels[j],
                "points": int(sweep.num_points[j]),
                "center_m": [round(float(v), 2) for v in sweep.boxes[j, :3]],
                "best_iou": round(best_iou, 3),
                "found": bool(found),
                "class": det_names[best] if found else None,
                "score": round(float(det_scores[best]), 3) if found else None,
            }
        )
    on_vehicle = (iou[:, vehicle] > 0.0).any(axis=1) if vehicle.any() else np.zeros(len(used))
    return {
        "vehicles": rows,
        "found": int(sum(r["found"] for r in rows)),
        "checked": len(rows),
        "other": int(np.sum(~used)),
        "false": int(np.sum(~used & ~on_vehicle.astype(bool))),
        "score_threshold": float(score_threshold),
    }
