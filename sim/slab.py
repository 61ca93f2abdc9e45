"""A plain numpy ray / oriented-box intersection (Kay-Kajiya slab test).

Used where only a few boxes matter (the occluder search of ``sim/occluders.py``), as the
reference the open3d world is tested against, and as the naive baseline of ``robomr bench sim``.
Every object is treated as its box. For a ray ``o + t d`` in a box's own frame the hit interval
is ``[max_k min(t1_k, t2_k), min_k max(t1_k, t2_k)]`` with ``t{1,2}_k = (+-h_k - o_k) / d_k`` over
the three axes; the ray hits if the interval is non-empty and ends at ``t >= 0``.
"""

from __future__ import annotations

import numpy as np

from sim.world import check_rays

_CHUNK_RAYS = 4096  # rays per vectorised block: bounds the [chunk, K, 3] temporaries


def _to_box_frame(v: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
    """Vectors [C, K, 3] rotated by -yaw_k about z (world -> box k frame)."""
    x, y = v[..., 0], v[..., 1]
    return np.stack([cos * x + sin * y, -sin * x + cos * y, v[..., 2]], axis=-1)


def slab_cast(
    boxes: np.ndarray,  # [K, 7]
    origins: np.ndarray,  # [N, 3] or [3]
    directions: np.ndarray,  # [N, 3]
) -> tuple[np.ndarray, np.ndarray]:
    """First hit of each ray among ``boxes``: ``(t_hit [N] metres or inf, box_index [N] or -1)``.

    A ray starting inside a box hits it at its exit (as the open3d world's double-sided meshes).

    Raises:
        WorldError: malformed rays.
    """
    o, d = check_rays(origins, directions)
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 7)
    t_best = np.full(len(d), np.inf)
    index = np.full(len(d), -1, dtype=np.int32)
    if len(b) == 0:
        return t_best, index
    cos, sin = np.cos(b[:, 6]), np.sin(b[:, 6])
    half = 0.5 * b[:, 3:6]  # [K, 3]
    for start in range(0, len(d), _CHUNK_RAYS):
        sl = slice(start, start + _CHUNK_RAYS)
        rel = o[sl, None, :] - b[None, :, :3]  # [C, K, 3]
        # Rotate into each box frame (rotation by -yaw about z).
        lo = _to_box_frame(rel, cos, sin)  # [C, K, 3]
        ld = _to_box_frame(np.broadcast_to(d[sl, None, :], rel.shape), cos, sin)
        with np.errstate(divide="ignore", invalid="ignore"):
            inv = 1.0 / ld
            t1 = (-half - lo) * inv  # [C, K, 3]
            t2 = (half - lo) * inv
        # Axis-parallel rays: inside the slab -> (-inf, inf), outside -> empty.
        parallel = ld == 0.0
        inside = np.abs(lo) <= half
        t1 = np.where(parallel, np.where(inside, -np.inf, np.inf), t1)
        t2 = np.where(parallel, np.where(inside, np.inf, -np.inf), t2)
        t_near = np.max(np.minimum(t1, t2), axis=-1)  # [C, K]
        t_far = np.min(np.maximum(t1, t2), axis=-1)
        t_first = np.where(t_near >= 0.0, t_near, t_far)  # entry, or exit from inside
        valid = (t_near <= t_far) & (t_far >= 0.0)
        t_first = np.where(valid, t_first, np.inf)
        k = np.argmin(t_first, axis=1)  # [C]
        t_min = t_first[np.arange(len(k)), k]
        hit = np.isfinite(t_min)
        t_best[sl] = t_min
        index[sl] = np.where(hit, k, -1)
    return t_best, index
