"""Requests and service times for ``robomr bench serving``: what the simulated load is made of.

- ``scan_pool``: lidar scans from the simulator (urban-clutter) for several beam counts and
  maximum ranges, the detector's request sizes; ``render_pool``: camera poses along the street at
  several image sizes, the renderer's.
- ``calibrate_paired``: runs batches of those requests through the real served model on this
  machine (each path and brownout level on the same batches, interleaved, batch sizes 1..4) and
  fits t = a + b U + c n by non-negative least squares (U:
  total units, n: requests); the multiplicative residual spread (std of log(measured / fitted))
  is kept so the simulation draws service times with the measured noise (``ServiceTruth``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import nnls

from offload.serving.model import Path, ServedModel


def scan_pool(
    beams: Sequence[int], ranges_m: Sequence[float], seed: int = 7, poses: int = 2
) -> list[tuple[str, np.ndarray]]:
    """(label, cloud [N, 5]) scans of the urban-clutter scene, sorted by point count."""
    from geometry.transforms import pose_to_transform
    from sim import Lidar, LidarConfig, World, load_or_generate

    scene = load_or_generate("urban-clutter", seed)
    world = World(scene)
    x, y, yaw = scene.ego_start
    out = []
    rng = np.random.default_rng(seed)
    for k in range(poses):
        T = pose_to_transform(x + 8.0 * k, y, 1.8, yaw)
        for b in beams:
            for r in ranges_m:
                scan = Lidar(LidarConfig(beams=b, max_range_m=r)).scan(world, T, rng)
                out.append((f"{b} beams, {r:.0f} m", scan.points))
    return sorted(out, key=lambda item: len(item[1]))


def render_pool(sizes: Sequence[tuple[int, int]], seed: int = 7, poses: int = 3) -> list[Any]:
    """Render requests (``RenderRequest``) from the street's ego start, sorted by pixels."""
    from geometry.transforms import pose_to_transform
    from offload.serving.models.renderer import RenderRequest
    from sim import load_or_generate

    scene = load_or_generate("urban-clutter", seed)
    x, y, yaw = scene.ego_start
    optical = np.eye(4)
    optical[:3, :3] = [[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]]  # z fwd, x right
    out = []
    for k in range(poses):
        pose = pose_to_transform(x + 4.0 * k, y, 1.5, yaw) @ optical
        for w, h in sizes:
            f = 0.8 * w
            K = np.array([[f, 0.0, w / 2], [0.0, f, h / 2], [0.0, 0.0, 1.0]])
            out.append(RenderRequest(pose, K, w, h))
    return sorted(out, key=lambda r: r.width * r.height)


@dataclass(frozen=True)
class ServiceFit:
    """t = overhead_s + per_unit_s U + per_item_s n, with multiplicative noise exp(N(0, s^2))."""

    overhead_s: float
    per_unit_s: float
    per_item_s: float
    log_std: float
    r2: float
    samples: int

    def predict(self, units: float, items: int) -> float:
        return max(self.overhead_s + self.per_unit_s * units + self.per_item_s * items, 1e-4)


def calibrate(
    model: ServedModel,
    pool: Sequence[Any],
    path: Path,
    batch_sizes: Sequence[int] = (1, 2, 4),
    per_size: int = 4,
    seed: int = 0,
) -> ServiceFit:
    """Measures batches of ``pool`` requests on ``path`` and fits :class:`ServiceFit`."""
    return calibrate_paired({"x": (model, path)}, pool, batch_sizes, per_size, seed)["x"]


def calibrate_paired(
    variants: dict[str, tuple[ServedModel, Path]],
    pool: Sequence[Any],
    batch_sizes: Sequence[int] = (1, 2, 4),
    per_size: int = 4,
    seed: int = 0,
) -> dict[str, ServiceFit]:
    """One :class:`ServiceFit` per variant (a model and path), all timed on the same batches,
    interleaved batch by batch: on a shared machine whose load drifts, every variant sees the
    same conditions, so their ratios (how much cheaper a brownout path is) are measured side by
    side even when the absolute times are inflated."""
    rng = np.random.default_rng(seed)
    for model, path in variants.values():
        model.run([pool[len(pool) // 2]], path)  # warm-up: first-call costs are not service time
    rows: dict[str, list[list[float]]] = {k: [] for k in variants}
    times: dict[str, list[float]] = {k: [] for k in variants}
    for n in batch_sizes:
        for _ in range(per_size):
            batch = [pool[int(i)] for i in rng.integers(0, len(pool), n)]
            for key, (model, path) in variants.items():
                start = time.perf_counter()
                model.run(batch, path)
                times[key].append(time.perf_counter() - start)
                rows[key].append([1.0, sum(model.cost(r, path) for r in batch), float(n)])
    return {k: _fit(np.asarray(rows[k]), np.asarray(times[k])) for k in variants}


def _fit(x: np.ndarray, t: np.ndarray) -> ServiceFit:
    scale = np.array([1.0, max(x[:, 1].mean(), 1.0), 1.0])  # conditioning
    # non-negative least squares: units and requests are nearly collinear in a batch (U ~ n x
    # mean size), and plain least squares then trades a negative term for a large one
    coef = nnls(x / scale, t)[0] / scale
    fitted = np.maximum(x @ coef, 1e-4)
    r2 = 1.0 - np.sum((t - fitted) ** 2) / max(np.sum((t - t.mean()) ** 2), 1e-12)
    return ServiceFit(
        *(float(c) for c in coef), float(np.std(np.log(t / fitted))), float(r2), len(t)
    )


class ServiceTruth:
    """Service times for the simulation: the fit of each path with its measured noise."""

    def __init__(self, fits: dict[str, ServiceFit], seed: int) -> None:
        self.fits = fits
        self.rng = np.random.default_rng(seed)

    def __call__(self, path: Path, costs: list[int]) -> float:
        fit = self.fits[path]
        return fit.predict(sum(costs), len(costs)) * float(np.exp(self.rng.normal(0, fit.log_std)))
