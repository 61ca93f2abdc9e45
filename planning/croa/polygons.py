"""Exact 2D convex-polygon geometry for CROA's collision model (arXiv 2412.18453, OBCA of
arXiv 1711.03449): hulls, half-space <-> vertex forms, footprints, signed distances and the
optimal OBCA dual weights of a polygon.

Polygons are vertex arrays [..., V, 2] in counter-clockwise order; edge k runs from vertex k to
vertex k + 1 and has the unit outward normal ``a_k`` (row k of ``A``), so vertex k lies on
faces k - 1 and k. Signed distance (robot P, obstacle Q):

    sd(P, Q) = min_{p in P, q in Q} |p - q|                 if P and Q are disjoint,
    sd(P, Q) = max_{u in edge normals} [min_P u.p - max_Q u.q]   (<= 0, SAT) otherwise,

with the unit direction ``u`` from Q toward P. In both cases ``sd = min_P u.p - max_Q u.q`` (the
separation along u), which is what the OBCA dual objective evaluates for the dual weights
``A^T lambda = u`` (``support_weights``).
"""

from __future__ import annotations

import numpy as np

_EPS = 1e-12


class PolygonError(ValueError):
    """A polygon or half-space set is empty, unbounded or degenerate."""


def convex_hull(points: np.ndarray) -> np.ndarray:  # [N, 2] -> [V, 2]
    """Counter-clockwise convex hull without collinear vertices (Andrew's monotone chain).

    Raises:
        PolygonError: fewer than 3 non-collinear points.
    """
    pts = np.unique(np.round(np.asarray(points, dtype=np.float64), 12), axis=0)
    if len(pts) < 3:
        raise PolygonError(f"hull needs 3 distinct points, got {len(pts)}")

    def half(seq: np.ndarray) -> list[np.ndarray]:
        chain: list[np.ndarray] = []
        for p in seq:
            while len(chain) >= 2:
                o, a = chain[-2], chain[-1]
                if (a[0] - o[0]) * (p[1] - o[1]) - (a[1] - o[1]) * (p[0] - o[0]) > 1e-12:
                    break
                chain.pop()
            chain.append(p)
        return chain

    lower, upper = half(pts), half(pts[::-1])
    hull = np.array(lower[:-1] + upper[:-1])
    if len(hull) < 3:
        raise PolygonError("points are collinear: the hull has no area")
    return hull


def polygon_halfspaces(vertices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit outward normals A [..., V, 2] and offsets b [..., V] of CCW polygons [..., V, 2]."""
    v = np.asarray(vertices, dtype=np.float64)
    edge = np.roll(v, -1, axis=-2) - v
    normal = np.stack([edge[..., 1], -edge[..., 0]], axis=-1)
    normal /= np.maximum(np.linalg.norm(normal, axis=-1, keepdims=True), _EPS)
    return normal, np.sum(normal * v, axis=-1)


def halfspaces_to_polygon(A: np.ndarray, b: np.ndarray) -> np.ndarray:  # [m, 2], [m] -> [V, 2]
    """Vertices (CCW) of the bounded polygon ``{x : A x <= b}``; redundant rows drop out.

    Raises:
        PolygonError: a zero row, an unbounded, empty or zero-area set.
    """
    a = np.asarray(A, dtype=np.float64)
    off = np.asarray(b, dtype=np.float64)
    norm = np.linalg.norm(a, axis=1)
    if np.any(norm < _EPS):
        raise PolygonError("half-space normal with zero length")
    a, off = a / norm[:, None], off / norm
    angles = np.sort(np.arctan2(a[:, 1], a[:, 0]))
    gaps = np.diff(np.concatenate([angles, angles[:1] + 2.0 * np.pi]))
    if len(a) < 3 or np.max(gaps) >= np.pi - 1e-9:
        raise PolygonError("half-spaces do not bound a polygon (normals leave a gap >= pi)")
    i, j = np.triu_indices(len(a), k=1)
    det = a[i, 0] * a[j, 1] - a[i, 1] * a[j, 0]
    ok = np.abs(det) > 1e-12
    i, j, det = i[ok], j[ok], det[ok]
    x = (off[i] * a[j, 1] - a[i, 1] * off[j]) / det
    y = (a[i, 0] * off[j] - off[i] * a[j, 0]) / det
    cand = np.stack([x, y], axis=1)
    tol = 1e-9 * max(1.0, float(np.max(np.abs(off))))
    inside = np.all(cand @ a.T <= off + tol, axis=1)
    try:
        return convex_hull(cand[inside])
    except PolygonError as err:
        raise PolygonError(f"half-spaces enclose no area ({err})") from err


_CORNER_SIGNS = np.array([[1.0, 1.0], [-1.0, 1.0], [-1.0, -1.0], [1.0, -1.0]])


def rectangle_vertices(
    centers: np.ndarray,  # [..., 2]
    yaws: np.ndarray,  # [...]
    length_m: float | np.ndarray,  # or [...] per rectangle
    width_m: float | np.ndarray,  # or [...]
) -> np.ndarray:  # [..., 4, 2]
    """CCW corners of rectangles (same corner order as geometry.boxes.bev_corners)."""
    # half sizes times the corners' signs (exact: a sign flip of 0.5 * size)
    lx = 0.5 * np.asarray(length_m, dtype=np.float64)[..., None] * _CORNER_SIGNS[:, 0]  # [..., 4]
    ly = 0.5 * np.asarray(width_m, dtype=np.float64)[..., None] * _CORNER_SIGNS[:, 1]
    c, s = np.cos(yaws)[..., None], np.sin(yaws)[..., None]
    x = c * lx - s * ly
    y = s * lx + c * ly
    return np.stack([x, y], axis=-1) + np.asarray(centers)[..., None, :]


def _point_segment(
    points: np.ndarray,  # [..., Np, 2]
    polygon: np.ndarray,  # [..., Ne, 2] edges start at these vertices
) -> tuple[np.ndarray, np.ndarray]:  # distance [..., Np, Ne], closest point [..., Np, Ne, 2]
    start = polygon[..., None, :, :]
    edge = np.roll(polygon, -1, axis=-2)[..., None, :, :] - start
    rel = points[..., :, None, :] - start
    t = np.sum(rel * edge, axis=-1) / np.maximum(np.sum(edge * edge, axis=-1), _EPS)
    closest = start + np.clip(t, 0.0, 1.0)[..., None] * edge
    return np.linalg.norm(points[..., :, None, :] - closest, axis=-1), closest


def _project(
    axes: np.ndarray,  # [..., A, 2]
    points: np.ndarray,  # [..., V, 2]
) -> np.ndarray:  # [..., A, V] axes . points
    # written out: the same two products and one sum as einsum("...ad,...vd->...av"), about
    # twice as fast on these small trailing axes
    return (axes[..., :, None, 0] * points[..., None, :, 0]
            + axes[..., :, None, 1] * points[..., None, :, 1])  # fmt: skip


def separating_axis(
    robot: np.ndarray,  # [..., Vp, 2] CCW
    obstacle: np.ndarray,  # [..., Vq, 2] CCW
    obstacle_normals: np.ndarray | None = None,  # [..., Vq, 2] when known
) -> tuple[np.ndarray, np.ndarray]:  # separation [...], unit axis obstacle -> robot [..., 2]
    """The best separating edge normal (SAT): ``max_u [min_P u.p - max_Q u.q]`` over the edge
    normals of both polygons, and that u. It equals the signed distance when the polygons
    overlap (<= 0) and is a lower bound of their distance when they are disjoint (> 0)."""
    lead = np.broadcast_shapes(robot.shape[:-2], obstacle.shape[:-2])
    p = np.broadcast_to(robot, (*lead, *robot.shape[-2:]))
    q = np.broadcast_to(obstacle, (*lead, *obstacle.shape[-2:]))
    n_p, _ = polygon_halfspaces(p)
    n_q = polygon_halfspaces(q)[0] if obstacle_normals is None else obstacle_normals
    n_q = np.broadcast_to(n_q, q.shape)
    axes = np.concatenate([-n_p, n_q], axis=-2)  # [..., Vp + Vq, 2] candidate u (Q -> P)
    sep = _project(axes, p).min(axis=-1) - _project(axes, q).max(axis=-1)  # [..., Vp + Vq]
    best = np.argmax(sep, axis=-1)
    sat_sd = np.take_along_axis(sep, best[..., None], axis=-1)[..., 0]
    sat_u = np.take_along_axis(axes, best[..., None, None], axis=-2)[..., 0, :]
    return sat_sd, sat_u


def signed_distance(
    robot: np.ndarray,  # [..., Vp, 2] CCW
    obstacle: np.ndarray,  # [..., Vq, 2] CCW
) -> tuple[np.ndarray, np.ndarray]:  # sd [...], unit direction obstacle -> robot [..., 2]
    """Signed distance of convex polygons (module docstring), broadcast over leading axes."""
    lead = np.broadcast_shapes(robot.shape[:-2], obstacle.shape[:-2])
    p = np.broadcast_to(robot, (*lead, *robot.shape[-2:]))
    q = np.broadcast_to(obstacle, (*lead, *obstacle.shape[-2:]))
    sat_sd, sat_u = separating_axis(p, q)

    d_pq, c_pq = _point_segment(p, q)  # robot vertices to obstacle edges
    d_qp, c_qp = _point_segment(q, p)  # obstacle vertices to robot edges
    flat_pq = d_pq.reshape(*lead, -1)
    flat_qp = d_qp.reshape(*lead, -1)
    i_pq, i_qp = np.argmin(flat_pq, axis=-1), np.argmin(flat_qp, axis=-1)
    m_pq = np.take_along_axis(flat_pq, i_pq[..., None], axis=-1)[..., 0]
    m_qp = np.take_along_axis(flat_qp, i_qp[..., None], axis=-1)[..., 0]
    vq = q.shape[-2]
    vp = p.shape[-2]
    rob_pq = np.take_along_axis(p, (i_pq // vq)[..., None, None], axis=-2)[..., 0, :]
    obs_pq = np.take_along_axis(c_pq.reshape(*lead, -1, 2), i_pq[..., None, None], axis=-2)
    obs_qp = np.take_along_axis(q, (i_qp // vp)[..., None, None], axis=-2)[..., 0, :]
    rob_qp = np.take_along_axis(c_qp.reshape(*lead, -1, 2), i_qp[..., None, None], axis=-2)
    use_pq = (m_pq <= m_qp)[..., None]
    diff = np.where(use_pq, rob_pq - obs_pq[..., 0, :], rob_qp[..., 0, :] - obs_qp)
    dist = np.minimum(m_pq, m_qp)
    euclid_u = diff / np.maximum(dist, _EPS)[..., None]
    disjoint = (sat_sd > 0.0) & (dist > 1e-9)
    sd = np.where(disjoint, dist, sat_sd)
    u = np.where(disjoint[..., None], euclid_u, sat_u)
    return sd, u


def support_weights(
    vertices: np.ndarray,  # [..., V, 2] CCW
    normals: np.ndarray,  # [..., V, 2] unit outward, row k = edge k
    direction: np.ndarray,  # [..., 2] unit
) -> np.ndarray:  # [..., V]
    """OBCA dual weights ``lambda >= 0`` with ``A^T lambda = u`` and ``b^T lambda = max_Q u.x``.

    ``u`` lies in the normal cone of the support vertex j of direction u, spanned by the normals
    of faces j - 1 and j; lambda holds the two (non-negative) coefficients.
    """
    v_count = vertices.shape[-2]
    j = np.argmax(np.einsum("...vd,...d->...v", vertices, direction), axis=-1)
    k1 = (j - 1) % v_count
    a1 = np.take_along_axis(normals, k1[..., None, None], axis=-2)[..., 0, :]
    a2 = np.take_along_axis(normals, j[..., None, None], axis=-2)[..., 0, :]
    u = direction

    def cross(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return x[..., 0] * y[..., 1] - x[..., 1] * y[..., 0]

    det = cross(a1, a2)
    safe = np.abs(det) > 1e-12
    det = np.where(safe, det, 1.0)
    l1 = np.where(safe, cross(u, a2) / det, 0.0)
    l2 = np.where(safe, cross(a1, u) / det, 1.0)
    lam = np.zeros((*direction.shape[:-1], v_count))
    np.put_along_axis(lam, k1[..., None], np.maximum(l1, 0.0)[..., None], axis=-1)
    np.put_along_axis(lam, j[..., None], np.maximum(l2, 0.0)[..., None], axis=-1)
    return lam
