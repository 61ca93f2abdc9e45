"""From decoded candidates to results: complete edge paths (cpath), their geometry (mgeom)
and per-point outputs, for a whole batch at once.

The shortest path of every transition is unrolled from the UBODT's last-edge pointers, one hop
per iteration for all transitions together; the complete path of each trajectory is then a
sort of (trajectory, step, part, hop) keys. FMM builds cpath the same way (its
``construct_complete_path``): the first point's edge, then for every transition the edges
between the two candidates and the next point's edge, nothing when both lie on one edge in
driving order.
"""

from __future__ import annotations

import numpy as np

from mapmatch.network import RoadNetwork
from mapmatch.result import MatchResult
from mapmatch.ubodt import Ubodt


def unroll(ubodt: Ubodt, net: RoadNetwork, src: np.ndarray, dst: np.ndarray) -> tuple:
    """Edges of the shortest paths ``src[r] -> dst[r]`` (node indices [R]).

    Returns (request, order, edge) flat arrays, ``order`` counting from the path's start, and
    a mask [R] of requests with no stored path (beyond the bound).
    """
    src = np.asarray(src, dtype=np.int64)
    cur = np.asarray(dst, dtype=np.int64).copy()
    req, hop, edge = [], [], []
    active = np.nonzero(src != cur)[0]
    missing = np.zeros(len(src), dtype=bool)
    h = 0
    while len(active):
        pos, hit = ubodt._find(src[active], cur[active])
        missing[active[~hit]] = True
        active, pos = active[hit], pos[hit]
        e = ubodt.last_edge[pos]
        req.append(active)
        hop.append(np.full(len(active), h))
        edge.append(e)
        cur[active] = net.source[e]
        active = active[cur[active] != src[active]]
        h += 1
    if not req:
        z = np.zeros(0, dtype=np.int64)
        return z, z, z, missing
    r, hp, e = np.concatenate(req), np.concatenate(hop), np.concatenate(edge)
    # Hops were collected from the destination backwards.
    length = np.bincount(r, minlength=len(src))
    return r, length[r] - 1 - hp, e, missing


def _vertex_index(net: RoadNetwork) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All edges' vertices flat: xy [S+E, 2], offset along their edge, pointer [E+1]."""
    cached = getattr(net, "_vertex_cache", None)
    if cached is not None:
        return cached
    E = net.num_edges
    vptr = net.seg_ptr + np.arange(E + 1)
    xy = np.zeros((vptr[-1], 2))
    off = np.zeros(vptr[-1])
    seg_vert = np.arange(len(net.seg_edge)) + net.seg_edge  # segment s starts at vertex s + e
    xy[seg_vert] = net.seg_a
    off[seg_vert] = net.seg_off
    xy[vptr[1:] - 1] = net.seg_b[net.seg_ptr[1:] - 1]
    off[vptr[1:] - 1] = net.edge_len
    net._vertex_cache = (xy, off, vptr)  # type: ignore[attr-defined]
    return xy, off, vptr


def piece_geometries(
    net: RoadNetwork,
    edges: list[np.ndarray],
    first_off: np.ndarray,  # [P] (m)
    first_xy: np.ndarray,  # [P, 2]
    last_off: np.ndarray,  # [P]
    last_xy: np.ndarray,  # [P, 2]
) -> list[np.ndarray]:
    """Polylines [K, 2] of P pieces: piece p runs along ``edges[p]`` (indices) from
    ``first_off[p]`` (m, at ``first_xy[p]``) on its first edge to ``last_off[p]`` on its last,
    consecutive duplicate vertices removed. One sort for all pieces, no loop over them."""
    P = len(edges)
    vxy, voff, vptr = _vertex_index(net)
    lens = np.array([len(e) for e in edges], dtype=np.int64)
    E = np.concatenate(edges).astype(np.int64) if P else np.zeros(0, dtype=np.int64)
    pid = np.repeat(np.arange(P), lens)
    pos = np.arange(len(E)) - np.repeat(np.cumsum(lens) - lens, lens)
    counts = vptr[E + 1] - vptr[E]
    item = np.repeat(np.arange(len(E)), counts)
    vidx = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts) + vptr[E][item]
    v_pid = pid[item]
    keep = (pos[item] != 0) | (voff[vidx] > first_off[v_pid])
    keep &= (pos[item] != lens[v_pid] - 1) | (voff[vidx] < last_off[v_pid])
    n_keep = int(keep.sum())
    owner = np.concatenate([np.arange(P), v_pid[keep], np.arange(P)])
    order = np.concatenate([np.zeros(P), 1.0 + np.arange(n_keep), np.full(P, n_keep + 2.0)])
    pts = np.concatenate([first_xy.reshape(-1, 2), vxy[vidx[keep]], last_xy.reshape(-1, 2)])
    o = np.lexsort((order, owner))
    pts, owner = pts[o], owner[o]
    same = np.all(np.abs(np.diff(pts, axis=0)) < 1e-9, axis=1) & (owner[1:] == owner[:-1])
    dup = np.concatenate([[False], same])
    pts, owner = pts[~dup], owner[~dup]
    bounds = np.searchsorted(owner, np.arange(P + 1))
    return [pts[bounds[i] : bounds[i + 1]] for i in range(P)]


def complete_paths(
    net: RoadNetwork,
    ubodt: Ubodt,
    edge: np.ndarray,
    forward: np.ndarray,
    brk: np.ndarray,
    length: np.ndarray,
    via: dict[tuple[int, int], int] | None = None,
) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """Complete paths of a batch.

    Args:
        edge: chosen edge index per point [B, N]; forward: step stays on one edge [B, N-1];
        brk: step has no route [B, N-1]; length: real points [B];
        via: (b, step) -> a via node the step's route must pass through (detours).

    Returns:
        per trajectory: cpath as edge indices, the cpath index of each point [n_b], and the
        start index in cpath of each connected piece.
    """
    B, N = edge.shape
    real = np.arange(N - 1)[None, :] < (length[:, None] - 1)
    detour = np.zeros_like(brk)
    for b, j in via or {}:
        detour[b, j] = True
    forward = forward & ~detour  # a detour leaves the edge even if it comes back to it
    need = real & ~brk & ~forward
    bb, jj = np.nonzero(need)
    a_node = net.target[edge[bb, jj]]
    b_node = net.source[edge[bb, jj + 1]]
    src, dst, part = [a_node], [b_node], [np.zeros(len(bb), dtype=np.int64)]
    owner = [np.arange(len(bb))]
    if via:
        key = {k: i for i, k in enumerate(zip(bb.tolist(), jj.tolist(), strict=True))}
        hit = [(key[k], v) for k, v in via.items() if k in key]
        if hit:
            rows = np.array([h[0] for h in hit])
            vnode = np.array([h[1] for h in hit])
            dst[0] = dst[0].copy()
            dst[0][rows] = vnode
            src.append(vnode)
            dst.append(b_node[rows])
            part.append(np.ones(len(rows), dtype=np.int64))
            owner.append(rows)
    src_a, dst_a, part_a, owner_a = map(np.concatenate, (src, dst, part, owner))
    r, order, e, _ = unroll(ubodt, net, src_a, dst_a)
    # Items: (b, step, part, order, edge, point or -1). Point items use part 2.
    item_b = [bb[owner_a[r]], np.arange(B)]
    item_j = [jj[owner_a[r]], np.full(B, -1)]
    item_p = [part_a[r], np.full(B, 2)]
    item_o = [order, np.zeros(B, dtype=np.int64)]
    item_e = [e, edge[:, 0]]
    item_pt = [np.full(len(r), -1), np.zeros(B, dtype=np.int64)]
    nb, nj = np.nonzero(real & (~forward | brk))
    item_b.append(nb)
    item_j.append(nj)
    item_p.append(np.full(len(nb), 2))
    item_o.append(np.zeros(len(nb), dtype=np.int64))
    item_e.append(edge[nb, nj + 1])
    item_pt.append(nj + 1)
    ib, ij, ip, io, ie, ipt = map(np.concatenate, (item_b, item_j, item_p, item_o, item_e, item_pt))
    o = np.lexsort((io, ip, ij, ib))
    ib, ij, ie, ipt = ib[o], ij[o], ie[o], ipt[o]
    bounds = np.searchsorted(ib, np.arange(B + 1))
    cpaths, indices, pieces = [], [], []
    for b in range(B):
        lo, hi = bounds[b], bounds[b + 1]
        n = int(length[b])
        cp = ie[lo:hi]
        idx = np.full(n, -1, dtype=np.int64)
        pts = ipt[lo:hi]
        at = np.nonzero(pts >= 0)[0]
        idx[pts[at]] = at
        # Points on the same edge as their predecessor share its cpath index.
        idx = np.maximum.accumulate(idx)
        brk_pts = np.nonzero(brk[b, : n - 1])[0] + 1
        cpaths.append(cp)
        indices.append(idx)
        pieces.append(np.r_[0, idx[brk_pts]].astype(np.int64))
    return cpaths, indices, pieces


def place_outliers(
    net: RoadNetwork, res: MatchResult, xy: np.ndarray, outl: np.ndarray, cpath: np.ndarray
) -> None:
    """Give ignored (outlier) fixes their nearest position on the matched path's edges, with
    confidence 0 (in place)."""
    from mapmatch.candidates import project_pairs

    segs = np.concatenate([np.arange(net.seg_ptr[e], net.seg_ptr[e + 1]) for e in cpath])
    rows = np.nonzero(outl)[0]
    pt = np.repeat(np.arange(len(rows)), len(segs))
    sg = np.tile(segs, len(rows))
    dist, off, proj = project_pairs(net, xy[rows], pt, sg)
    best = dist.reshape(len(rows), len(segs)).argmin(axis=1) + np.arange(len(rows)) * len(segs)
    res.opath[rows] = net.edge_ids[net.seg_edge[sg[best]]]
    res.offset_m[rows] = off[best]
    res.error_m[rows] = dist[best]
    res.matched_xy[rows] = proj[best]
    res.confidence[rows] = 0.0
