"""Training cache: a simulator dataset converted once into the model frame, read by memory map.

Training reads every frame once per epoch. Decompressing the npz frames and moving their points
into the model frame (``perception.sensor_input``) each time costs more than a training step's
data preparation, so ``build_cache`` does it once and writes flat arrays that ``TrainingCache``
maps into memory (frames are slices, nothing is parsed):

    DIR/cache.json       format "robomr-detector-cache", version, source dataset, crop, frames,
                         deskew (frames taken in motion deskewed with their recorded motion)
    DIR/xyz.npy          float32 [P, 3]  points of all frames, model frame (m)
    DIR/aux.npy          uint8   [P, 2]  intensity * 255 (normalised to [0, 1] first), ring
    DIR/owner.npy        int32   [P]     index of the frame's box each point hit, -1 none
    DIR/point_offsets.npy int64  [F + 1] frame f owns points [offsets[f], offsets[f + 1])
    DIR/boxes.npy        float32 [B, 7]  boxes in the model frame
    DIR/labels.npy, num_points.npy, occlusion.npy  [B]
    DIR/box_offsets.npy  int64   [F + 1]
    DIR/sensor.npy       int32   [F]     index into the source meta.json "sensors" (-1: one lidar)

Points are kept within ``crop_radius_m`` of the lidar in x/y (the model range's corners, so a
rotated frame still fills the grid) and ``z_margin_m`` of the model's z range. A cache is
reused when its source, frame count and crop match; otherwise it is rebuilt.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from perception.config import DetectorConfig
from perception.dataset import SimDataset
from perception.deskew import deskew as deskew_points
from perception.errors import PerceptionError
from perception.sensor_input import boxes_to_model_frame, kept_rows, to_model_frame

log = logging.getLogger(__name__)

FORMAT = "robomr-detector-cache"
VERSION = 1
_ARRAYS = (
    "xyz", "aux", "owner", "point_offsets", "boxes", "labels", "num_points", "occlusion",
    "box_offsets", "sensor",
)  # fmt: skip


class CacheError(PerceptionError):
    """A cache directory is unreadable or does not match its dataset."""


@dataclass(frozen=True)
class CachedFrame:
    """One frame of the cache, model frame."""

    points: np.ndarray  # [N, 5] float32 x, y, z, intensity [0, 1], ring
    point_object: np.ndarray  # [N] int32 box index or -1
    boxes: np.ndarray  # [M, 7] float64
    labels: np.ndarray  # [M] int64
    num_points: np.ndarray  # [M] int64
    occlusion: np.ndarray  # [M] float32
    sensor: int


def _crop(config: DetectorConfig, z_margin_m: float) -> dict[str, float]:
    r = config.voxel.point_range_m
    return {
        "crop_radius_m": math.hypot(max(-r[0], r[3]), max(-r[1], r[4])) + 1.0,
        "z_min_m": r[2] - z_margin_m,
        "z_max_m": r[5] + z_margin_m,
    }


def build_cache(
    dataset: SimDataset,
    directory: str | Path,
    config: DetectorConfig,
    z_margin_m: float = 1.0,
    progress: bool = True,
    deskew: bool = True,
) -> Path:
    """Writes (or reuses) the cache of ``dataset`` in ``directory``; returns the directory.
    With ``deskew`` frames taken in motion are deskewed with the motion they record
    (``SimDataset.scan_motion``, ``perception.deskew``), as the robot deskews with odometry."""
    out = Path(directory)
    crop = _crop(config, z_margin_m)
    want = {
        "format": FORMAT,
        "version": VERSION,
        "source": str(dataset.directory.resolve()),
        "frames": len(dataset),
        "source_seed": dataset.meta.get("seed"),
        "deskew": deskew,
        **crop,
    }
    if (out / "cache.json").is_file():
        try:
            if json.loads((out / "cache.json").read_text()) == want:
                return out
        except json.JSONDecodeError:
            pass
        log.info("cache %s does not match %s: rebuilding", out, dataset.directory)
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    parts: dict[str, list[np.ndarray]] = {k: [] for k in _ARRAYS}
    n_points = n_boxes = 0
    parts["point_offsets"].append(np.zeros(1, np.int64))
    parts["box_offsets"].append(np.zeros(1, np.int64))
    for i in tqdm(range(len(dataset)), desc="cache", unit="frame", disable=not progress):
        frame = dataset[i]
        setup = replace(dataset.setup(frame), min_range_m=config.frame.min_range_m)
        motion = dataset.scan_motion(frame) if deskew else None
        raw = deskew_points(frame.points, motion) if motion is not None else frame.points
        pts = to_model_frame(raw, setup, True)
        keep = (
            (np.hypot(pts[:, 0], pts[:, 1]) <= crop["crop_radius_m"])
            & (pts[:, 2] >= crop["z_min_m"])
            & (pts[:, 2] <= crop["z_max_m"])
        )
        near = kept_rows(raw, setup)  # rows to_model_frame kept
        ring = raw[near, 4] if raw.shape[1] > 4 else np.zeros(len(pts))
        parts["xyz"].append(pts[keep, :3])
        parts["aux"].append(
            np.column_stack([np.round(pts[keep, 3] * 255), ring[keep]]).astype(np.uint8)
        )
        parts["owner"].append(frame.point_object[near][keep].astype(np.int32))
        parts["boxes"].append(boxes_to_model_frame(frame.boxes, setup).astype(np.float32))
        parts["labels"].append(frame.labels.astype(np.int32))
        parts["num_points"].append(frame.num_points.astype(np.int32))
        parts["occlusion"].append(frame.occlusion.astype(np.float32))
        parts["sensor"].append(np.array([frame.sensor], np.int32))
        n_points += int(keep.sum())
        n_boxes += len(frame.boxes)
        parts["point_offsets"].append(np.array([n_points], np.int64))
        parts["box_offsets"].append(np.array([n_boxes], np.int64))
    for name in _ARRAYS:
        np.save(tmp / f"{name}.npy", np.concatenate(parts[name]))
    (tmp / "cache.json").write_text(json.dumps(want, indent=2) + "\n")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out


class TrainingCache:
    """Frames of a cache directory, memory-mapped (module docstring).

    Raises:
        CacheError: missing files or a different format/version.
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        try:
            self.info: dict[str, Any] = json.loads((self.directory / "cache.json").read_text())
            self.arrays = {k: np.load(self.directory / f"{k}.npy", mmap_mode="r") for k in _ARRAYS}
        except (OSError, ValueError) as err:
            raise CacheError(f"{self.directory}: not a readable detector cache ({err})") from err
        if self.info.get("format") != FORMAT or self.info.get("version") != VERSION:
            raise CacheError(f"{self.directory}: not a {FORMAT} version {VERSION} directory")

    def __len__(self) -> int:
        return len(self.arrays["sensor"])

    def __getitem__(self, i: int) -> CachedFrame:
        a = self.arrays
        p0, p1 = int(a["point_offsets"][i]), int(a["point_offsets"][i + 1])
        b0, b1 = int(a["box_offsets"][i]), int(a["box_offsets"][i + 1])
        points = np.empty((p1 - p0, 5), dtype=np.float32)
        points[:, :3] = a["xyz"][p0:p1]
        aux = np.asarray(a["aux"][p0:p1], dtype=np.float32)
        points[:, 3] = aux[:, 0] / 255.0
        points[:, 4] = aux[:, 1]
        return CachedFrame(
            points=points,
            point_object=np.asarray(a["owner"][p0:p1]),
            boxes=np.asarray(a["boxes"][b0:b1], dtype=np.float64),
            labels=np.asarray(a["labels"][b0:b1], dtype=np.int64),
            num_points=np.asarray(a["num_points"][b0:b1], dtype=np.int64),
            occlusion=np.asarray(a["occlusion"][b0:b1]),
            sensor=int(a["sensor"][i]),
        )


class ConcatCache:
    """Several caches read as one: frame ``i`` runs through them in order."""

    def __init__(self, caches: list[TrainingCache]) -> None:
        if not caches:
            raise CacheError("no cache to read")
        self.caches = caches
        self._ends = np.cumsum([len(c) for c in caches])

    def __len__(self) -> int:
        return int(self._ends[-1])

    def __getitem__(self, i: int) -> CachedFrame:
        k = int(np.searchsorted(self._ends, i, side="right"))
        start = int(self._ends[k - 1]) if k else 0
        return self.caches[k][i - start]
