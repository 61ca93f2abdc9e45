"""Labelled lidar datasets for training and testing the detector (format: docs/conventions.md,
"Simulator dataset format"), and their reader.

Generation: frames come in groups of ``frames_per_scene``; each group uses a new scene of the
scenario (seed drawn from ``[seed, group]``); frame 0 of a group is the ego start at t = 0 (the
occluded-target view), the others a random collision-free pose in a driving lane (heading along
or against the lane +- 20 deg) at a random time in [0, 30] s, so moving vehicles are elsewhere.
Frame ``i`` draws its randomness from ``numpy.random.default_rng([seed, group, i])`` and the npz
members are written with a fixed zip timestamp, so a seed reproduces the dataset byte for byte.

With a ``Variation`` (``sim/variation.py``, domain randomisation) each group draws its scenario
and street, and each frame its lidar model, mounting (height, pitch, roll on a robot standing on
the sloped ground) and motion (rolling shutter); such frames also carry ``T_base_lidar`` (the
mounting, base_link on the ground), ``sensor`` (index into meta.json's variation.sensors), ``body``
(vehicle body type, index into ``sim.materials.BODY_SHAPES``, -1 for box vehicles),
``ego_speed_mps`` and ``ego_yaw_rate_radps`` (the lidar's motion during the scan; datasets
written before the yaw rate was stored read it as 0). Readers treat these arrays as optional.
"""

from __future__ import annotations

import io
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
from sim.lidar import Lidar, LidarConfig, LidarMotion
from sim.materials import BODY_SHAPES, CLASSES
from sim.placement import convex_overlap, footprint
from sim.robot import BicycleRobot, RobotConfig, RobotState
from sim.scenarios import Scenario, load_scenario
from sim.scene import Scene
from sim.sensors import sensor_config
from sim.terrain import surface_frame
from sim.truth import ground_truth
from sim.variation import NEGATIVES, Variation, randomise_scenario, sensor_pose_on_robot
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
# Arrays of datasets written with a Variation; absent from plain ones.
OPTIONAL_ARRAYS: dict[str, tuple[str, tuple[Any, ...]]] = {
    "T_base_lidar": ("float64", (4, 4)),
    "sensor": ("int32", ()),
    "body": ("int32", ("M",)),
    "ego_speed_mps": ("float32", ()),
    "ego_yaw_rate_radps": ("float32", ()),
}
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
_ZIP_LEVEL = 1
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
    T_base_lidar: np.ndarray | None = None  # [4, 4] mounting (Variation datasets)
    sensor: int = -1  # index into meta.json variation.sensors, -1: the dataset's one lidar
    body: np.ndarray | None = None  # [M] index into BODY_SHAPES, -1 box
    ego_speed_mps: float = 0.0
    ego_yaw_rate_radps: float = 0.0


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """An ``np.load``-able .npz whose bytes depend only on the arrays (fixed zip timestamps)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, arr in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.asarray(arr, order="C"), allow_pickle=False)
            # Level 1: float point clouds barely compress better at the default 6, which
            # takes about as long as the rest of a frame's simulation.
            zf.writestr(info, buf.getvalue(), compresslevel=_ZIP_LEVEL)


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


def _scene_for_group(
    scenario: Scenario, seed: int, group: int, variation: Variation | None = None
) -> Scene:
    for attempt in range(_SCENE_RETRIES):
        scene_seed = int(np.random.default_rng([seed, group, attempt]).integers(2**31))
        spec = scenario
        if variation is not None:  # its own stream: frame draws stay [seed, group, i]
            rng = np.random.default_rng([seed, group, attempt, 1_000_003])
            name = variation.pick(rng, variation.scenarios, variation.scenario_weights)
            base = NEGATIVES if name == NEGATIVES.name else load_scenario(name)
            spec = randomise_scenario(base, rng, variation)
        try:
            return generate_scene(spec, scene_seed)
        except GeneratorError:
            continue
    raise DatasetError(f"scenario {scenario.name!r}: {_SCENE_RETRIES} scene seeds in a row failed")


@dataclass(frozen=True)
class _Shot:
    """How one frame is taken: lidar, pose and motion."""

    lidar: Lidar
    T_world_lidar: np.ndarray  # [4, 4]
    extra: dict[str, np.ndarray]  # optional arrays of a Variation frame
    motion: LidarMotion | None = None


def _shot(
    scene: Scene,
    pose: np.ndarray,  # [3] x, y, yaw of base_link
    rng: np.random.Generator,
    robot: RobotConfig,
    sensor: Lidar,
    variation: Variation | None,
) -> _Shot:
    if variation is None:
        return _Shot(sensor, BicycleRobot(robot, RobotState(*pose)).T_world_lidar(), {})
    name = variation.pick(rng, variation.sensors, variation.sensor_weights)
    lidar = Lidar(sensor_config(name, rng))
    height, pitch, roll = variation.mounting(rng)
    speed, motion = variation.motion(rng)
    T_base_lidar = sensor_pose_on_robot(height, pitch, roll)
    T = surface_frame(scene.terrain, float(pose[0]), float(pose[1]), float(pose[2])) @ T_base_lidar
    extra = {
        "T_base_lidar": T_base_lidar,
        "sensor": np.array(variation.sensors.index(name), dtype=np.int32),
        "ego_speed_mps": np.array(speed, dtype=np.float32),
        "ego_yaw_rate_radps": np.array(motion.yaw_rate_radps, dtype=np.float32),
    }
    return _Shot(lidar, T, extra, motion)


def write_dataset(
    out_dir: str | Path,
    frames: int,
    scenario: str | Path = "urban-clutter",
    seed: int = 0,
    lidar: LidarConfig | None = None,
    robot: RobotConfig | None = None,
    frames_per_scene: int = 8,
    progress: bool = False,
    variation: Variation | None = None,
) -> Path:
    """Writes ``frames`` labelled frames and ``meta.json`` under ``out_dir``; returns it.
    With ``variation`` the scenario, lidar, mounting and motion vary (module docstring) and
    ``scenario`` and ``lidar`` are not used.

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
            scene = _scene_for_group(spec, seed, group, variation)
            scene_seeds.append(scene.seed)
        rng = np.random.default_rng([seed, group, i])
        if k == 0:
            moved, pose = scene, np.asarray(scene.ego_start)
        else:
            moved = scene.at_time(rng.uniform(0.0, 30.0))
            pose = sample_ego_pose(moved, rng, robot_cfg)
        world = World(moved)
        shot = _shot(moved, pose, rng, robot_cfg, sensor, variation)
        T = shot.T_world_lidar
        scan = shot.lidar.scan(world, T, rng, shot.motion)
        truth = ground_truth(world, T, scan)
        if variation is not None:
            shapes = [moved.objects[j].shape for j in truth.object_indices]
            body = [BODY_SHAPES.index(s) if s in BODY_SHAPES else -1 for s in shapes]
            shot.extra["body"] = np.asarray(body, dtype=np.int32)
        write_npz(
            out / "frames" / f"{i:06d}.npz",
            {
                **shot.extra,
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
        "lidar": None if variation else lidar_cfg.to_dict(),
        "lidar_height_m": None if variation else robot_cfg.lidar_z_m,
        "variation": variation.to_dict() if variation else None,
        "sensors": {n: sensor_config(n).to_dict() for n in variation.sensors}
        if variation
        else None,
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
            wanted = {**FRAME_ARRAYS, **OPTIONAL_ARRAYS}
            arrays = {name: npz[name] for name in wanted if name in npz.files}
    except OSError as err:
        raise DatasetError(f"cannot read frame {p}: {err.strerror or err}") from err
    except (ValueError, zipfile.BadZipFile) as err:
        raise DatasetError(f"{p} is not a valid .npz frame: {err}") from err
    sizes: dict[str, int] = {}
    for name, (dtype, shape) in {**FRAME_ARRAYS, **OPTIONAL_ARRAYS}.items():
        if name not in arrays:
            if name in OPTIONAL_ARRAYS:
                continue
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
    scalars = {"target_index", "sensor", "ego_speed_mps", "ego_yaw_rate_radps"}
    return DatasetFrame(
        path=p,
        target_index=target,
        sensor=int(arrays["sensor"]) if "sensor" in arrays else -1,
        ego_speed_mps=float(arrays["ego_speed_mps"]) if "ego_speed_mps" in arrays else 0.0,
        ego_yaw_rate_radps=float(arrays.get("ego_yaw_rate_radps", 0.0)),
        **{k: v for k, v in arrays.items() if k not in scalars},
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
