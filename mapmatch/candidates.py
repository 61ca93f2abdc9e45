"""Candidate search: for every point, the k nearest edges within its search radius.

One STRtree query over the edges finds every (point, edge) pair within each point's own
radius (the radius comes from the point's sub-region LED, so it differs along a trajectory);
shapely's vectorised distance and line_locate_point give each pair's distance and position
along the edge; one sort picks the k nearest edges per point, all without a Python loop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely

from mapmatch.network import RoadNetwork


@dataclass(frozen=True)
class Candidates:
    """Candidates padded to K per point (``valid`` marks real ones).

    Attributes:
        edge: edge index [N, K] int64 (0 where invalid).
        offset: distance from the edge's start to the projection [N, K] (m).
        dist: point-to-projection distance [N, K] (m, inf where invalid).
        xy: projected positions [N, K, 2] (m).
        valid: [N, K] bool.
    """

    edge: np.ndarray
    offset: np.ndarray
    dist: np.ndarray
    xy: np.ndarray
    valid: np.ndarray

    def pad(self, K: int) -> Candidates:
        """The same candidates padded to ``K`` columns (K >= current)."""
        extra = K - self.edge.shape[1]
        if extra <= 0:
            return self
        w = ((0, 0), (0, extra))
        return Candidates(
            np.pad(self.edge, w),
            np.pad(self.offset, w),
            np.pad(self.dist, w, constant_values=np.inf),
            np.pad(self.xy, (*w, (0, 0))),
            np.pad(self.valid, w),
        )

    def replace(self, rows: np.ndarray, other: Candidates) -> Candidates:
        """A copy whose points ``rows`` take ``other``'s candidates (one row each)."""
        K = max(self.edge.shape[1], other.edge.shape[1])
        a, b = self.pad(K), other.pad(K)
        out = [x.copy() for x in (a.edge, a.offset, a.dist, a.xy, a.valid)]
        for dst, src in zip(out, (b.edge, b.offset, b.dist, b.xy, b.valid), strict=True):
            dst[rows] = src
        return Candidates(*out)

    def take(self, rows: np.ndarray) -> Candidates:
        """The candidates of points ``rows`` (index array or mask)."""
        return Candidates(
            self.edge[rows], self.offset[rows], self.dist[rows], self.xy[rows], self.valid[rows]
        )


def project_pairs(
    network: RoadNetwork, xy: np.ndarray, pt: np.ndarray, seg: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Project points ``xy[pt]`` onto segments ``seg``: (distance, offset on edge, position)."""
    a, b = network.seg_a[seg], network.seg_b[seg]
    ab = b - a
    L2 = np.einsum("ij,ij->i", ab, ab)
    t = np.einsum("ij,ij->i", xy[pt] - a, ab) / np.where(L2 > 0, L2, 1.0)
    t = np.clip(t, 0.0, 1.0)
    proj = a + t[:, None] * ab
    dist = np.hypot(*(xy[pt] - proj).T)
    return dist, network.seg_off[seg] + t * network.seg_len[seg], proj


def search(network: RoadNetwork, xy: np.ndarray, radius_m: np.ndarray, k: int) -> Candidates:
    """Up to ``k`` nearest edges of each point [N, 2] within its radius [N] (m).

    Points with no edge within their radius get no valid candidate.
    """
    xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    n = len(xy)
    radius = np.broadcast_to(np.asarray(radius_m, dtype=np.float64), (n,))
    pts = shapely.points(xy)
    lines = network.edge_lines
    pt, edge = network.edge_tree.query(pts, predicate="dwithin", distance=radius)
    # One (point, edge) pair per edge within reach: distance and position along it in C.
    dist = shapely.distance(pts[pt], lines[edge])
    off = shapely.line_locate_point(lines[edge], pts[pt])
    # k nearest edges per point.
    o = np.lexsort((edge, dist, pt))
    pt, edge, dist, off = pt[o], edge[o], dist[o], off[o]
    start = np.searchsorted(pt, np.arange(n))
    rank = np.arange(len(pt)) - start[pt]
    keep = rank < k
    pt, edge, dist, off, rank = pt[keep], edge[keep], dist[keep], off[keep], rank[keep]
    K = max(1, int(rank.max()) + 1) if len(rank) else 1
    out_e = np.zeros((n, K), dtype=np.int64)
    out_o = np.zeros((n, K))
    out_d = np.full((n, K), np.inf)
    out_xy = np.zeros((n, K, 2))
    valid = np.zeros((n, K), dtype=bool)
    out_e[pt, rank], out_o[pt, rank], out_d[pt, rank] = edge, off, dist
    out_xy[pt, rank] = network.point_on_edge(edge, off)
    valid[pt, rank] = True
    return Candidates(out_e, out_o, out_d, out_xy, valid)
