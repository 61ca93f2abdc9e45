"""Exact occlusion of a target box from lidar viewpoints (CROA, arXiv 2412.18453), for
evaluation and for scoring sampled viewpoints. The smooth surrogate that the optimizer uses is
in planning/croa/surrogate.py.

Definition (the same as sim/truth.py, so predictions and the simulator's ground truth agree):

1. Sample each face of the target box that faces the sensor ``o`` (outward normal n with
   ``n . (o - face_centre) > 0``) at the centres ``p_i`` of a grid of cells of side at most
   ``spacing_m`` and area ``a_i``.
2. Weight each sample by the solid angle of its cell: ``w_i = a_i n . (o - p_i) / |o - p_i|^3``.
3. The ray ``o + t (p_i - o)``, t in [0, 1], is *blocked* when it enters an obstacle before
   ``t_end = 1 - 0.01 m / |p_i - o|``.
4. ``occlusion(o) = sum_i w_i blocked_i / sum_i w_i`` in [0, 1]; 1 when no face is visible.

Ray-polytope test (slab method, vectorized over viewpoints x samples x obstacles x faces): for
the prism ``A3 x <= b3`` and the ray ``o + t d``, each face gives ``t (a.d) <= b - a.o``; the
ray is inside on ``[t_in, t_out]`` with ``t_in = max_{a.d < 0} (b - a.o) / (a.d)`` and
``t_out = min_{a.d > 0} (b - a.o) / (a.d)`` (a face with ``a.d = 0`` and ``a.o > b`` misses);
it is blocked when ``max(t_in, 0) < min(t_out, t_end)``.

2.5D, not 2D: the lidar sits ``lidar_z_m`` (1.8 m) above the ground and sees over low
obstacles (a 1.5 m car hides only the lower part of a bus behind it), so obstacles are prisms
with heights and rays are 3D. A BEV (2D) model would call every such target fully hidden.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from geometry.transforms import rotation_z
from planning.croa.types import Polytope

BLOCK_MARGIN_M = 0.01  # a hit this close to the sample is the sample's own surface (sim/truth.py)
_CHUNK = 2_000_000  # elements of the [viewpoints, samples, obstacles, faces] slab arrays


class OcclusionError(ValueError):
    """Bad input to the exact occlusion (shape, NaN, spacing)."""


def box_face_samples(
    box: np.ndarray,  # [7]
    spacing_m: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Cell centres [S, 3], outward normals [S, 3], cell areas [S] and face centres [S, 3] of all
    six faces of a box (grid cells of side <= spacing_m)."""
    if not 0.0 < spacing_m <= 10.0:
        raise OcclusionError(f"spacing_m={spacing_m}: must be in (0, 10]")
    axes = rotation_z(box[6]).T  # rows: the box's x, y, z axes in the world
    half = 0.5 * np.asarray(box[3:6])
    points, normals, areas, centres = [], [], [], []
    for axis in range(3):
        ua, va = [a for a in range(3) if a != axis]
        nu = max(1, int(np.ceil(2.0 * half[ua] / spacing_m)))
        nv = max(1, int(np.ceil(2.0 * half[va] / spacing_m)))
        su = (np.arange(nu) + 0.5) / nu * 2.0 - 1.0
        sv = (np.arange(nv) + 0.5) / nv * 2.0 - 1.0
        gu, gv = (g.ravel() for g in np.meshgrid(su, sv, indexing="ij"))
        for sign in (1.0, -1.0):
            normal = sign * axes[axis]
            centre = box[:3] + half[axis] * normal
            pts = centre + np.outer(gu * half[ua], axes[ua]) + np.outer(gv * half[va], axes[va])
            points.append(pts)
            normals.append(np.repeat(normal[None], len(pts), axis=0))
            areas.append(np.full(len(pts), 4.0 * half[ua] * half[va] / (nu * nv)))
            centres.append(np.repeat(centre[None], len(pts), axis=0))
    return np.vstack(points), np.vstack(normals), np.concatenate(areas), np.vstack(centres)


def stack_prisms(obstacles: Sequence[Polytope]) -> tuple[np.ndarray, np.ndarray]:
    """Half-spaces of all obstacles padded to one face count: A3 [P, F, 3], b3 [P, F].

    Padding rows are ``0 . x <= 1`` (always true), so they never clip a ray.
    """
    if not obstacles:
        return np.zeros((0, 1, 3)), np.ones((0, 1))
    rows = [o.halfspaces_3d() for o in obstacles]
    faces = max(len(a) for a, _ in rows)
    a3 = np.zeros((len(rows), faces, 3))
    b3 = np.ones((len(rows), faces))
    for k, (a, b) in enumerate(rows):
        a3[k, : len(a)], b3[k, : len(b)] = a, b
    return a3, b3


def segments_blocked(
    origins: np.ndarray,  # [N, 3]
    ends: np.ndarray,  # [S, 3]
    a3: np.ndarray,  # [P, F, 3]
    b3: np.ndarray,  # [P, F]
) -> np.ndarray:  # bool [N, S]
    """Whether the segment from each origin to each end enters an obstacle before the end
    (slab test of the module docstring, with the 1 cm end margin)."""
    return segments_hits(origins, ends, a3, b3, reduce=True)


def segments_hits(
    origins: np.ndarray,  # [N, 3]
    ends: np.ndarray,  # [S, 3]
    a3: np.ndarray,  # [P, F, 3], or [N, P, F, 3]: each origin its own obstacles
    b3: np.ndarray,  # [P, F], or [N, P, F]
    reduce: bool = False,
) -> np.ndarray:  # bool [N, S, P], or [N, S] (any obstacle) with reduce
    """Which obstacles each segment enters before its end (``segments_blocked`` per obstacle)."""
    n, s, p = len(origins), len(ends), a3.shape[-3]
    if p == 0 or n == 0 or s == 0:
        return np.zeros((n, s) if reduce else (n, s, p), dtype=bool)
    if a3.ndim == 4:
        a_o = np.einsum("npfd,nd->npf", a3, origins)  # [N, P, F]
        a_e = np.einsum("npfd,sd->nspf", a3, ends)  # [N, S, P, F]
        return _slab_hits(origins, ends, a_o, a_e, b3, reduce)
    a_o = np.einsum("pfd,nd->npf", a3, origins)
    a_e = np.einsum("pfd,sd->spf", a3, ends)[None]  # [1, S, P, F]
    return _slab_hits(origins, ends, a_o, a_e, b3[None], reduce)


def culled_hits(
    obstacles: Sequence[Polytope],
    origins: np.ndarray,  # [N, 3]
    ends: np.ndarray,  # [S, 3]
    reduce: bool = False,
) -> tuple[np.ndarray, np.ndarray]:  # bool [N, S, Q] (or [N, S] with reduce), index [N, Q]
    """``segments_hits`` against each origin's culled obstacles (``culled_prisms``, whose index
    it also returns): the same result, with each obstacle's projections computed once for all
    origins and gathered per origin."""
    index = cull_index(obstacles, origins, ends)
    a3, b3 = stack_prisms(obstacles)
    n, s, q = len(origins), len(ends), index.shape[1]
    if not len(a3) or n == 0 or s == 0:
        return np.zeros((n, s) if reduce else (n, s, q), dtype=bool), index
    pad = index < 0
    take = np.where(pad, 0, index)
    # padding: a . x = 0 and b = -1 (0 <= -1 never holds: blocks nothing), as culled_prisms
    a_o = np.take_along_axis(np.einsum("pfd,nd->npf", a3, origins), take[..., None], axis=1)
    a_o[pad] = 0.0  # [N, Q, F]
    a_e = np.einsum("pfd,sd->spf", a3, ends)[:, take].transpose(1, 0, 2, 3)  # [N, S, Q, F]
    a_e[np.broadcast_to(pad[:, None], a_e.shape[:3])] = 0.0
    b = np.where(pad[..., None], -1.0, b3[take])  # [N, Q, F]
    return _slab_hits(origins, ends, a_o, a_e, b, reduce), index


def _slab_hits(
    origins: np.ndarray,  # [N, 3]
    ends: np.ndarray,  # [S, 3]
    a_o: np.ndarray,  # [N, P, F] a . origin
    a_e: np.ndarray,  # [N or 1, S, P, F] a . end
    b: np.ndarray,  # [N or 1, P, F]
    reduce: bool,
) -> np.ndarray:  # bool [N, S, P], or [N, S]
    n, s, p = len(origins), len(ends), a_o.shape[1]
    length = np.linalg.norm(ends[None] - origins[:, None], axis=-1)  # [N, S]
    t_end = 1.0 - BLOCK_MARGIN_M / np.maximum(length, BLOCK_MARGIN_M)
    out = np.zeros((n, s) if reduce else (n, s, p), dtype=bool)
    step = max(1, _CHUNK // max(1, s * p * a_o.shape[-1]))
    # faces first: one [n, S, P] array operation per face is much faster than numpy's
    # reductions over a short trailing face axis (max and min are exact in any order)
    a_o, a_e, b = (np.moveaxis(x, -1, 0) for x in (a_o, a_e, b))  # [F, N, P], [F, N|1, S, P]
    for lo in range(0, n, step):
        rows = slice(lo, lo + step)
        size = (min(n, lo + step) - lo, s, p)
        t_in, t_out = np.full(size, -np.inf), np.full(size, np.inf)
        miss = np.zeros(size, dtype=bool)
        for f in range(len(a_o)):
            ao = a_o[f, rows, None]  # [n, 1, P]
            den = (a_e[f, rows] if a_e.shape[1] > 1 else a_e[f]) - ao  # a . (end - origin)
            num = (b[f, rows] if b.shape[1] > 1 else b[f])[:, None] - ao
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = num / den  # where |den| < 1e-12 it is never read (masked below)
            np.maximum(t_in, ratio, out=t_in, where=den < -1e-12)
            np.minimum(t_out, ratio, out=t_out, where=den > 1e-12)
            miss |= (np.abs(den) < 1e-12) & (num < 0.0)
        t_stop = np.minimum(t_out, t_end[rows, :, None])
        hit = (np.maximum(t_in, 0.0) < t_stop) & ~miss  # [n, S, P]
        out[rows] = np.any(hit, axis=-1) if reduce else hit
    return out


def culled_prisms(
    obstacles: Sequence[Polytope],
    origins: np.ndarray,  # [N, 3]
    ends: np.ndarray,  # [S, 3]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # a3 [N, Q, F, 3], b3 [N, Q, F], index [N, Q]
    """Per origin, the obstacles that can block a segment from it to an end (``cull_index``),
    padded to one count Q (padding: a prism that blocks nothing, index -1)."""
    a3, b3 = stack_prisms(obstacles)
    index = cull_index(obstacles, origins, ends)
    if not len(a3):
        n, faces = len(origins), a3.shape[1]
        return np.zeros((n, 0, faces, 3)), np.ones((n, 0, faces)), index
    a3n = np.where(index[..., None, None] >= 0, a3[index], 0.0)
    b3n = np.where(index[..., None] >= 0, b3[index], -1.0)  # 0 . x <= -1: never inside
    return a3n, b3n, index


def cull_index(
    obstacles: Sequence[Polytope],
    origins: np.ndarray,  # [N, 3]
    ends: np.ndarray,  # [S, 3]
) -> np.ndarray:  # [N, Q] obstacle indices, -1 padding
    """Per origin, the obstacles that can block a segment from it to an end, in increasing
    order, padded with -1 to one count Q >= 1. An obstacle is kept when its bearing interval
    seen from the origin overlaps the ends' and it is nearer than the farthest end (every
    segment lies in that wedge, so the rest cannot block: the result equals the unculled one);
    an obstacle around the origin or straddling the bearing opposite the ends is always kept."""
    n = len(origins)
    if not len(obstacles):
        return np.zeros((n, 0), dtype=int)
    verts = [o.vertices for o in obstacles]
    most = max(len(v) for v in verts)
    padded = np.stack([v if len(v) == most else _pad_rows(v, most) for v in verts])
    o2, e2 = origins[:, :2], ends[:, :2]
    ref = np.arctan2(*(e2.mean(axis=0) - o2).T[::-1])  # [N] bearing of the ends' centre
    rel_e = e2[None] - o2[:, None]  # [N, S, 2]
    ang_e = _wrap(np.arctan2(rel_e[..., 1], rel_e[..., 0]) - ref[:, None])
    rel_v = padded[None] - o2[:, None, None]  # [N, P, V, 2]
    ang_v = _wrap(np.arctan2(rel_v[..., 1], rel_v[..., 0]) - ref[:, None, None])
    overlap = (ang_v.max(axis=-1) >= ang_e.min(axis=1)[:, None]) & (
        ang_v.min(axis=-1) <= ang_e.max(axis=1)[:, None]
    )
    centre = np.array([o.footprint_disc[0] for o in obstacles])  # [P, 2]
    radius = np.array([o.footprint_disc[1] for o in obstacles])  # [P]
    gap = np.linalg.norm(centre[None] - o2[:, None], axis=-1) - radius[None]  # [N, P]
    keep = overlap & (gap <= np.linalg.norm(rel_e, axis=-1).max(axis=1)[:, None])
    count = keep.sum(axis=1)
    q = max(1, int(count.max()))
    # per origin its kept obstacles in increasing order, then -1: a stable sort puts the kept
    # columns first in their order
    first = np.argsort(~keep, axis=1, kind="stable")[:, :q]
    index = np.where(np.arange(q)[None] < count[:, None], first, -1)
    return index


def _pad_rows(v: np.ndarray, rows: int) -> np.ndarray:  # [V, 2] -> [rows, 2], last repeated
    return np.vstack([v, np.repeat(v[-1:], rows - len(v), axis=0)])


def _wrap(angle: np.ndarray) -> np.ndarray:
    return (angle + np.pi) % (2.0 * np.pi) - np.pi


def exact_occlusion(
    viewpoints: np.ndarray,  # [N, 3] sensor origins (world)
    target_box: np.ndarray,  # [7]
    obstacles: Sequence[Polytope],
    spacing_m: float = 0.2,
) -> np.ndarray:  # [N] in [0, 1]
    """Occlusion (module docstring) of the target from each viewpoint.

    Raises:
        OcclusionError: wrong shapes, NaN/Inf, or a bad spacing.
    """
    o = np.asarray(viewpoints, dtype=np.float64)
    box = np.asarray(target_box, dtype=np.float64)
    if o.ndim != 2 or o.shape[1] != 3 or box.shape != (7,):
        raise OcclusionError(
            f"viewpoints must be [N, 3] and target_box [7], got "
            f"{list(o.shape)} and {list(box.shape)}"
        )
    if not (np.all(np.isfinite(o)) and np.all(np.isfinite(box))):
        raise OcclusionError("viewpoints or target_box contain NaN or Inf")
    points, normals, areas, centres = box_face_samples(box, spacing_m)
    facing = np.einsum("sd,nsd->ns", normals, o[:, None, :] - centres[None]) > 0.0  # [N, S]
    seen = np.any(facing, axis=0)  # faces no viewpoint sees cast no rays
    points, normals, areas, facing = points[seen], normals[seen], areas[seen], facing[:, seen]
    rel = o[:, None, :] - points[None]  # [N, S, 3]
    dist = np.maximum(np.linalg.norm(rel, axis=-1), 1e-9)
    weights = np.where(facing, areas * np.einsum("sd,nsd->ns", normals, rel) / dist**3, 0.0)
    blocked, _ = culled_hits(_near_rays(obstacles, np.vstack([o, points])), o, points, True)
    total = weights.sum(axis=1)
    hidden = (weights * blocked).sum(axis=1)
    return np.where(total > 0.0, np.clip(hidden / np.where(total > 0, total, 1.0), 0, 1), 1.0)


def _near_rays(obstacles: Sequence[Polytope], ends: np.ndarray) -> list[Polytope]:
    """Obstacles that meet the bounding box of all ray end points ends [E, 3] (every ray lies
    in it); the others cannot block anything."""
    if not obstacles:
        return []
    lo, hi = ends.min(axis=0), ends.max(axis=0)
    low = np.array([o.footprint_bounds[0] for o in obstacles])  # [P, 2]
    high = np.array([o.footprint_bounds[1] for o in obstacles])  # [P, 2]
    z = np.array([(o.z_min_m, o.z_max_m) for o in obstacles])  # [P, 2]
    meet = (np.all(high >= lo[:2], axis=1) & np.all(low <= hi[:2], axis=1)
            & (z[:, 1] >= lo[2]) & (z[:, 0] <= hi[2]))  # fmt: skip
    return [o for o, m in zip(obstacles, meet, strict=True) if m]
