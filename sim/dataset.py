"""Labelled lidar datasets for training and testing the detector (format: docs/conventions.md,
"Simulator dataset format"), and their reader.

Generation: frames come in groups of ``frames_per_scene``; each group uses a new scene of the
scenario (seed drawn from ``[seed, group]``); frame 0 of a group is the ego start at t = 0 (the
occluded-target view), the others a random collision-free pose in a driving lane (heading along
or against the lane +- 20 deg) at a random time in [0, 30] s, so moving vehicles are elsewhere.
Frame ``i`` draws its randomness from ``numpy.random.default_rng([seed, group, i])`` and the npz
members are written with a fixed zip timestamp, so a seed reproduces the dataset byte for byte.
"""

from __future__ import annotations

import json
import math
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from sim.generator import GeneratorError, generate_scene
from sim.lidar import Lidar, LidarConfig
from sim.materials import CLASSES
from sim.placement import convex_overlap, footprint
from sim.robot import BicycleRobot, RobotConfig, RobotState
from sim.scenarios import Scenario, load_scenario
from sim.scene import Scene
from sim.truth import ground_truth
from sim.world import World

FORMAT = "robomr-sim-dataset"
VERSION = 1
# name -> (dtype, shape; "N" points, "M" boxes)
FRAME_ARRAYS: dict[str, tuple[str, tuple[Any, ...]]] = {
    "points": ("float32", ("N", 5)),
    "point_object": ("int32", ("N",)),
    "boxes": ("float32", ("M", 7)),
    "labels": ("int32", ("M",)),
    "occlusion": ("float32", ("M",)),
    "num_points": ("int32", ("M",)),
    "T_world_lidar": ("float64", (4, 4)),
    "target_index": ("int32", ()),
}
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
_SCENE_RETRIES = 20


class DatasetError(ValueError):
    """Bad dataset arguments, or a missing/malformed dataset file (named in the message)."""


@dataclass(frozen=True)
class DatasetFrame:
    """One frame as read back (arrays as in ``FRAME_ARRAYS``; ``target_index`` an int)."""

    path: Path
    points: np.ndarray  # [N, 5]
    point_object: np.ndarray  # [N]
    boxes: np.ndarray  # [M, 7]
    labels: np.ndarray  # [M]
    occlusion: np.ndarray  # [M]
    num_points: np.ndarray  # [M]
    T_world_lidar: np.ndarray  # [4, 4]
    target_index: int


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """An ``np.load``-able .npz whose bytes depend only on the arrays (fixed zip timestamps)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, arr in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            with zf.open(info, "w") as f:
                np.lib.format.write_array(f, np.asarray(arr, order="C"), allow_pickle=False)


def sample_ego_pose(scene: Scene, rng: np.random.Generator, robot: RobotConfig) -> np.ndarray:
    """A collision-free (x, y, yaw) [3] in a driving lane of ``scene``.

    Raises:
        DatasetError: no free pose in 200 draws.
    """
    lanes = [ln for ln in scene.lanes if ln.kind == "driving"]
    boxes, _ = scene.obstacle_boxes(robot.height_m)
    x0, x1 = scene.street_x_range_m
    for _ in range(200):
        lane = lanes[int(rng.integers(len(lanes)))]
        heading = (0.0 if lane.direction > 0 else math.pi) + (
            math.pi if rng.random() < 0.2 else 0.0
        )
        pose = np.array(
            [
                rng.uniform(x0 + 5.0, x1 - 5.0),
                lane.center_y_m + rng.uniform(-0.8, 0.8),
                heading + rng.uniform(-0.35, 0.35),
            ]
        )
        poly = footprint(
            np.array([pose[0], pose[1], 0.0, robot.length_m, robot.width_m, 1.0, pose[2]])
        )
        near = boxes[np.max(np.abs(boxes[:, :2] - pose[:2]), axis=1) < 20.0]
        if not any(convex_overlap(poly, footprint(b), 0.3) for b in near):
            return pose
    raise DatasetError(
        f"no collision-free ego pose found in scene {scene.name!r} seed {scene.seed}"
    )


def _scene_for_group(scenario: Scenario, seed: int, group: int) -> Scene:
    for attempt in range(_SCENE_RETRIES):
        scene_seed = int(np.random.default_rng([seed, group, attempt]).integers(2**31))
        try:
            return generate_scene(scenario, scene_seed)
        except GeneratorError:
            continue
    raise DatasetError(f"scenario {scenario.name!r}: {_SCENE_RETRIES} scene seeds in a row failed")


def write_dataset(
    out_dir: str | Path,
    frames: int,
    scenario: str | Path = "urban-clutter",
    seed: int = 0,
    lidar: LidarConfig | None = None,
    robot: RobotConfig | None = None,
    frames_per_scene: int = 8,
    progress: bool = False,
) -> Path:
    """Writes ``frames`` labelled frames and ``meta.json`` under ``out_dir``; returns it.

    Raises:
        DatasetError: ``frames`` or ``frames_per_scene`` < 1, ``seed`` < 0, or ``out_dir``
            already holds frames or a meta.json.
        ScenarioError: unknown scenario.
    """
    if frames < 1 or frames_per_scene < 1:
        raise DatasetError(
            f"frames={frames}, frames_per_scene={frames_per_scene}: both must be >= 1"
        )
    if seed < 0:
        raise DatasetError(f"seed={seed}: must be >= 0")
    spec = load_scenario(scenario)
    lidar_cfg, robot_cfg = lidar or LidarConfig(), robot or RobotConfig()
    out = Path(out_dir)
    if (out / "frames").is_dir() and any((out / "frames").iterdir()):
        raise DatasetError(f"{out / 'frames'} is not empty: choose a new --out directory")
    if (out / "meta.json").exists():
        raise DatasetError(f"{out / 'meta.json'} exists: choose a new --out directory")
    (out / "frames").mkdir(parents=True, exist_ok=True)
    sensor = Lidar(lidar_cfg)
    scene_seeds: list[int] = []
    scene: Scene | None = None
    for i in tqdm(range(frames), desc="sim dataset", unit="frame", disable=not progress):
        group, k = divmod(i, frames_per_scene)
        if scene is None or k == 0:
            scene = _scene_for_group(spec, seed, group)
            scene_seeds.append(scene.seed)
        rng = np.random.default_rng([seed, group, i])
        if k == 0:
            moved, pose = scene, np.asarray(scene.ego_start)
        else:
            moved = scene.at_time(rng.uniform(0.0, 30.0))
            pose = sample_ego_pose(moved, rng, robot_cfg)
        world = World(moved)
        T = BicycleRobot(robot_cfg, RobotState(*pose)).T_world_lidar()
        scan = sensor.scan(world, T, rng)
        truth = ground_truth(world, T, scan)
        write_npz(
            out / "frames" / f"{i:06d}.npz",
            {
                "points": scan.points,
                "point_object": truth.point_object,
                "boxes": truth.boxes,
                "labels": truth.labels,
                "occlusion": truth.occlusion,
                "num_points": truth.num_points,
                "T_world_lidar": T,
                "target_index": np.array(truth.target_index, dtype=np.int32),
            },
        )
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "scenario": spec.name,
        "scenario_config": spec.config.to_dict(),
        "lidar": lidar_cfg.to_dict(),
        "lidar_height_m": robot_cfg.lidar_z_m,
        "seed": seed,
        "num_frames": frames,
        "frames_per_scene": frames_per_scene,
        "scene_seeds": scene_seeds,
        "classes": list(CLASSES),
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return out


def load_meta(dataset_dir: str | Path) -> dict[str, Any]:
    """``meta.json`` of a dataset.

    Raises:
        DatasetError: missing, not JSON, or not a robomr-sim-dataset of a supported version.
    """
    path = Path(dataset_dir) / "meta.json"
    try:
        meta = json.loads(path.read_text())
    except OSError as err:
        raise DatasetError(f"cannot read {path}: {err.strerror or err}") from err
    except json.JSONDecodeError as err:
        raise DatasetError(f"{path} is not valid JSON: {err}") from err
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise DatasetError(f"{path}: not a {FORMAT} meta file")
    if meta.get("version") != VERSION:
        raise DatasetError(f"{path}: version {meta.get('version')!r} unsupported (want {VERSION})")
    return meta


def load_frame(path: str | Path) -> DatasetFrame:
    """One frame file, with every array's dtype and shape checked.

    Raises:
        DatasetError: missing or unreadable file, missing array, wrong dtype or shape.
    """
    p = Path(path)
    try:
        with np.load(p, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in FRAME_ARRAYS if name in npz.files}
    except OSError as err:
        raise DatasetError(f"cannot read frame {p}: {err.strerror or err}") from err
    except (ValueError, zipfile.BadZipFile) as err:
        raise DatasetError(f"{p} is not a valid .npz frame: {err}") from err
    sizes: dict[str, int] = {}
    for name, (dtype, shape) in FRAME_ARRAYS.items():
        if name not in arrays:
            raise DatasetError(f"{p}: missing array {name!r}")
        arr = arrays[name]
        if arr.dtype != np.dtype(dtype) or arr.ndim != len(shape):
            raise DatasetError(
                f"{p}: {name} must be {dtype} with {len(shape)} dims, "
                f"got {arr.dtype} with shape {list(arr.shape)}"
            )
        for dim, want in zip(arr.shape, shape, strict=True):
            got = sizes.setdefault(want, dim) if isinstance(want, str) else want
            if dim != got:
                raise DatasetError(
                    f"{p}: {name} has shape {list(arr.shape)}, expected {shape} with {sizes}"
                )
    target = int(arrays["target_index"])
    if not -1 <= target < sizes["M"]:
        raise DatasetError(f"{p}: target_index={target} outside [-1, {sizes['M']})")
    return DatasetFrame(
        path=p, target_index=target, **{k: v for k, v in arrays.items() if k != "target_index"}
    )


def iter_dataset(dataset_dir: str | Path) -> Iterator[DatasetFrame]:
    """The frames of a dataset in order (checks ``meta.json`` and the frame count first).

    Raises:
        DatasetError: bad meta file, frame count mismatch, or a bad frame.
    """
    root = Path(dataset_dir)
    meta = load_meta(root)
    files = sorted((root / "frames").glob("*.npz"))
    if len(files) != meta.get("num_frames"):
        raise DatasetError(
            f"{root}: meta.json says {meta.get('num_frames')} frames, "
            f"found {len(files)} in {root / 'frames'}"
        )
    for f in files:
        yield load_frame(f)
