"""A tiny synthetic dataset in the simulator's format, for tests, smoke training and timing.

Not the simulator (``sim/`` is): a scene is a flat ground plane, a few vehicles (oriented boxes
with class-typical sizes, the labelled objects) and a few unlabelled obstacles (posts and wall
pieces). A spinning lidar at the origin, ``lidar_height_m`` above the ground, casts ``beams``
x ``azimuth_steps`` rays; each ray returns its first hit (ray/box slab test, ray/plane
intersection) with Gaussian range noise. A box's ``occlusion`` is, as in the simulator's
definition, the fraction of the rays that would hit it in an empty scene but hit something else
first; ``num_points`` counts the rays whose first hit is the box. Frames are written exactly in
the format of docs/conventions.md, so ``perception.dataset.SimDataset`` reads them.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from geometry.transforms import pose_to_transform
from perception.config import CLASSES
from perception.errors import PerceptionError
from sim.dataset import FORMAT, VERSION

# Mean (length, width, height) in metres and sampling weight of each class, in CLASSES order.
_CLASS_SIZES_M = np.array([[4.5, 1.8, 1.5], [5.0, 2.0, 2.1], [8.0, 2.5, 3.2], [11.0, 2.6, 3.2]])
_CLASS_WEIGHTS = np.array([0.55, 0.2, 0.15, 0.1])
_MAX_RANGE_M = 100.0
_RANGE_NOISE_M = 0.02


class SyntheticError(PerceptionError):
    """A synthetic-dataset setting is out of bounds."""


@dataclass(frozen=True)
class SyntheticConfig:
    """Scene and lidar of the synthetic frames."""

    num_frames: int = 8  # frames written, >= 1
    seed: int = 0  # frame i uses numpy seed [seed, i]
    beams: int = 32  # lidar rings, >= 2
    azimuth_steps: int = 1024  # rays per ring, >= 8
    elevation_deg: tuple[float, float] = (-25.0, 15.0)  # lowest and highest ring, degrees
    lidar_height_m: float = 1.8  # lidar above the ground, > 0
    vehicles: tuple[int, int] = (3, 10)  # vehicles per frame, uniform in [min, max]
    obstacles: tuple[int, int] = (0, 6)  # unlabelled obstacles per frame, uniform in [min, max]
    placement_radius_m: float = 35.0  # objects are centred within this distance, > 5

    def __post_init__(self) -> None:
        checks = {
            "num_frames": self.num_frames >= 1,
            "beams": self.beams >= 2,
            "azimuth_steps": self.azimuth_steps >= 8,
            "lidar_height_m": self.lidar_height_m > 0,
            "elevation_deg": self.elevation_deg[0] < self.elevation_deg[1],
            "vehicles": 0 <= self.vehicles[0] <= self.vehicles[1],
            "obstacles": 0 <= self.obstacles[0] <= self.obstacles[1],
            "placement_radius_m": self.placement_radius_m > 5.0,
        }
        for name, ok in checks.items():
            if not ok:
                raise SyntheticError(
                    f"{name}={getattr(self, name)!r} is out of bounds "
                    "(see the field comments of SyntheticConfig)"
                )


def _place(
    rng: np.random.Generator,
    sizes: np.ndarray,
    taken: list[np.ndarray],
    radius_m: float,
    z_ground: float,
) -> np.ndarray:
    """Boxes [K, 7] for sizes [K, 3] at free random spots (circle test against ``taken``)."""
    boxes = []
    for size in sizes:
        for _ in range(50):  # rejection sampling; a crowded frame just gets fewer objects
            r, phi = rng.uniform(5.0, radius_m), rng.uniform(-np.pi, np.pi)
            centre = np.array([r * np.cos(phi), r * np.sin(phi)])
            reach = 0.5 * np.hypot(size[0], size[1]) + 0.3
            if all(np.hypot(*(centre - t[:2])) > reach + t[2] for t in taken):
                taken.append(np.array([*centre, reach]))
                yaw = rng.uniform(-np.pi, np.pi)
                boxes.append([*centre, z_ground + size[2] / 2, *size, yaw])
                break
    return np.asarray(boxes, dtype=np.float64).reshape(-1, 7)


def _ray_box_hits(dirs: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Distances [R, K] from the origin along unit rays [R, 3] to boxes [K, 7]; inf = miss."""
    c, s = np.cos(boxes[:, 6]), np.sin(boxes[:, 6])
    o = -boxes[:, :3]  # origin relative to each box centre [K, 3]
    o_local = np.stack([c * o[:, 0] + s * o[:, 1], -s * o[:, 0] + c * o[:, 1], o[:, 2]], 1)
    d_local = np.stack(
        [
            dirs[:, None, 0] * c + dirs[:, None, 1] * s,
            -dirs[:, None, 0] * s + dirs[:, None, 1] * c,
            np.broadcast_to(dirs[:, None, 2], (len(dirs), len(boxes))),
        ],
        2,
    )
    half = boxes[:, 3:6] / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        t1 = (-half - o_local) / d_local  # [R, K, 3]
        t2 = (half - o_local) / d_local
    t_near = np.nanmax(np.minimum(t1, t2), axis=2)
    t_far = np.nanmin(np.maximum(t1, t2), axis=2)
    return np.where((t_far >= t_near) & (t_near > 0), t_near, np.inf)


def synthetic_frame(index: int, config: SyntheticConfig) -> dict[str, np.ndarray]:
    """The arrays of frame ``index`` (keys of docs/conventions.md)."""
    rng = np.random.default_rng([config.seed, index])
    z_ground = -config.lidar_height_m
    labels = rng.choice(
        len(CLASSES), size=rng.integers(*config.vehicles, endpoint=True), p=_CLASS_WEIGHTS
    )
    sizes = _CLASS_SIZES_M[labels] * rng.uniform(0.9, 1.1, size=(len(labels), 3))
    taken: list[np.ndarray] = []
    boxes = _place(rng, sizes, taken, config.placement_radius_m, z_ground)
    labels = labels[: len(boxes)]
    n_obs = rng.integers(*config.obstacles, endpoint=True)
    obs_sizes = np.where(rng.random((n_obs, 1)) < 0.5, [0.4, 0.4, 3.0], [4.0, 0.3, 1.2])
    obstacles = _place(rng, obs_sizes, taken, config.placement_radius_m, z_ground)

    elev = np.deg2rad(np.linspace(*config.elevation_deg, config.beams))  # [B]
    azim = np.linspace(-np.pi, np.pi, config.azimuth_steps, endpoint=False)  # [A]
    e, a = np.meshgrid(elev, azim, indexing="ij")
    dirs = np.stack([np.cos(e) * np.cos(a), np.cos(e) * np.sin(a), np.sin(e)], -1).reshape(-1, 3)
    ring = np.repeat(np.arange(config.beams), config.azimuth_steps)
    with np.errstate(divide="ignore"):
        t_ground = np.where(dirs[:, 2] < 0, z_ground / dirs[:, 2], np.inf)  # [R]
    t_vehicle = _ray_box_hits(dirs, boxes)  # [R, M]
    t_all = np.concatenate([t_vehicle, _ray_box_hits(dirs, obstacles), t_ground[:, None]], 1)
    first = np.argmin(t_all, axis=1)  # [R]
    t_hit = t_all[np.arange(len(dirs)), first]
    hit = t_hit < _MAX_RANGE_M
    obj = np.where(first < len(boxes), first, -1)

    toward = np.isfinite(t_vehicle)  # [R, M] rays that would hit each vehicle alone
    seen = toward & (obj[:, None] == np.arange(len(boxes))[None, :])
    n_toward = toward.sum(0)
    occlusion = np.where(n_toward > 0, 1.0 - seen.sum(0) / np.maximum(n_toward, 1), 1.0)

    dist = t_hit[hit] + rng.normal(0.0, _RANGE_NOISE_M, hit.sum())
    points = np.concatenate(
        [dirs[hit] * dist[:, None], rng.uniform(0, 1, (hit.sum(), 1)), ring[hit, None]], axis=1
    )
    return {
        "points": points.astype(np.float32),
        "point_object": obj[hit].astype(np.int32),
        "boxes": boxes.astype(np.float32),
        "labels": labels.astype(np.int32),
        "occlusion": occlusion.astype(np.float32),
        "num_points": seen.sum(0).astype(np.int32),
        "T_world_lidar": pose_to_transform(
            *rng.uniform(-50, 50, 2), config.lidar_height_m, rng.uniform(-np.pi, np.pi)
        ),
        "target_index": np.int32(rng.integers(len(boxes)) if len(boxes) else -1),
    }


def write_synthetic_dataset(directory: str | Path, config: SyntheticConfig) -> Path:
    """Writes ``config.num_frames`` frames and meta.json into ``directory``; returns it."""
    out = Path(directory)
    (out / "frames").mkdir(parents=True, exist_ok=True)
    for i in range(config.num_frames):
        np.savez_compressed(out / "frames" / f"{i:06d}.npz", **synthetic_frame(i, config))
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "generator": __name__,
        "seed": config.seed,
        "num_frames": config.num_frames,
        "classes": list(CLASSES),
        "lidar": {
            "beams": config.beams,
            "azimuth_steps": config.azimuth_steps,
            "elevation_deg": list(config.elevation_deg),
            "height_m": config.lidar_height_m,
            "max_range_m": _MAX_RANGE_M,
        },
        "scenario": {"name": "synthetic-boxes", **asdict(config)},
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return out
