"""Synthetic scenes for tests and benchmarks that must not depend on the simulator.

* ``random_scene``: a few dozen random anisotropic Gaussians in front of a pinhole camera,
  some behind it or far outside its field of view (exercises culling and the Jacobian clamp).
* ``street_samples``: surface samples (points, normals, colours) of a street canyon: a road
  plane, building facades on both sides and parked box-shaped cars, sampled uniformly by area
  with a smooth colour texture, the same inputs ``from_surface_samples`` takes from the
  simulator. ``street_camera`` looks down the street from 1.5 m.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from geometry.transforms import invert_transform


@dataclass(frozen=True)
class RandomScene:
    """Gaussians as float64 arrays and one camera (world -> camera ``viewmat``)."""

    means: np.ndarray  # [N, 3] (m)
    quats: np.ndarray  # [N, 4] (w, x, y, z), not normalized
    scales: np.ndarray  # [N, 3] (m)
    opacities: np.ndarray  # [N] in [0, 1)
    colors: np.ndarray  # [N, 3] in [0, 1)
    viewmat: np.ndarray  # [4, 4]
    k: np.ndarray  # [3, 3] (px)
    width: int
    height: int

    def tensors(self, dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, ...]:
        """(means, quats, scales, opacities, colors, viewmats [1, 4, 4], Ks [1, 3, 3])."""
        arrays = (self.means, self.quats, self.scales, self.opacities, self.colors)
        out = [torch.tensor(a, dtype=dtype) for a in arrays]
        out.append(torch.tensor(self.viewmat, dtype=dtype)[None])
        out.append(torch.tensor(self.k, dtype=dtype)[None])
        return tuple(out)


def random_scene(seed: int, n: int = 40, width: int = 24, height: int = 18) -> RandomScene:
    """``n`` random Gaussians, deterministic in ``seed``, and a ``width`` x ``height`` camera."""
    rng = np.random.default_rng(seed)
    means = np.c_[rng.uniform(-2.0, 2.0, (n, 2)), rng.uniform(-0.5, 6.0, n)]
    yaw = 0.1 * seed
    viewmat = np.eye(4)
    viewmat[:3, :3] = [[np.cos(yaw), 0, np.sin(yaw)], [0, 1, 0], [-np.sin(yaw), 0, np.cos(yaw)]]
    viewmat[:3, 3] = [0.1, -0.05, 0.3]
    focal = 0.9 * width
    k = np.array([[focal, 0, 0.5 * width + 0.3], [0, focal, 0.5 * height - 0.2], [0, 0, 1]])
    return RandomScene(
        means=means,
        quats=rng.normal(size=(n, 4)),
        scales=np.exp(rng.uniform(-3.5, -0.7, (n, 3))),
        opacities=rng.uniform(0.0, 1.0, n),
        colors=rng.uniform(0.0, 1.0, (n, 3)),
        viewmat=viewmat,
        k=k,
        width=width,
        height=height,
    )


def _street_quads(rng: np.random.Generator) -> list[tuple[np.ndarray, ...]]:
    """(origin, edge u, edge v, normal, base colour) of each planar patch (m, RGB)."""
    quads = [((0, -10, 0), (40, 0, 0), (0, 20, 0), (0, 0, 1), (0.35, 0.35, 0.38))]
    for i in range(6):
        for side in (-1, 1):
            quads.append(
                (
                    (4 + 6 * i, 8 * side, 0),
                    (4, 0, 0),
                    (0, 0, 6),
                    (0, -side, 0),
                    (0.6 + 0.05 * i, 0.4, 0.3),
                )
            )
    for i in range(5):
        x, y = 6 + 7 * i, rng.uniform(-4, 4) - 1
        quads += [
            ((x, y, 0), (4, 0, 0), (0, 0, 1.5), (0, -1, 0), (0.2, 0.3, 0.7)),
            ((x, y, 0), (0, 2, 0), (0, 0, 1.5), (-1, 0, 0), (0.7, 0.2, 0.2)),
            ((x, y, 1.5), (4, 0, 0), (0, 2, 0), (0, 0, 1), (0.8, 0.8, 0.1)),
        ]
    return [tuple(np.asarray(v, dtype=np.float64) for v in q) for q in quads]


def street_samples(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """``n`` surface samples of the street: (points [n, 3], normals [n, 3], colours [n, 3],
    mean spacing (m) = sqrt(total area / n))."""
    rng = np.random.default_rng(seed)
    quads = _street_quads(rng)
    areas = np.array([np.linalg.norm(np.cross(u, v)) for _, u, v, _, _ in quads])
    counts = rng.multinomial(n, areas / areas.sum())
    points, normals, colors = [], [], []
    for (origin, u, v, normal, base), count in zip(quads, counts, strict=True):
        a, b = rng.random((2, count))
        p = origin + a[:, None] * u + b[:, None] * v  # [count, 3]
        texture = 0.15 * np.sin(3 * p[:, :1]) * np.cos(3 * p[:, 1:2] + p[:, 2:3])
        points.append(p)
        normals.append(np.tile(normal, (count, 1)))
        colors.append(np.clip(base + texture, 0.0, 1.0))
    spacing_m = float(np.sqrt(areas.sum() / n))
    return np.concatenate(points), np.concatenate(normals), np.concatenate(colors), spacing_m


def street_camera(width: int, height: int, x_m: float = -2.0) -> tuple[np.ndarray, np.ndarray]:
    """(K [3, 3], viewmat [4, 4]) of a camera at (x_m, 0, 1.5) looking along +x (street axis)."""
    focal = 0.6 * width
    k = np.array([[focal, 0, width / 2], [0, focal, height / 2], [0, 0, 1.0]])
    t_world_optical = np.eye(4)
    # optical z = world +x, optical x (right) = world -y, optical y (down) = world -z.
    t_world_optical[:3, :3] = [[0, 0, 1], [-1, 0, 0], [0, -1, 0]]
    t_world_optical[:3, 3] = (x_m, 0.0, 1.5)
    return k, invert_transform(t_world_optical)
