"""The road network: a directed graph whose edges carry polyline geometry, in a metric frame.

Edges keep their external ids (FMM's ``id`` field, or a running number for OSM and lanes), so
matched paths read back in the input's terms. Geometry is stored flat, one row per straight
segment (positions along edges are vectorised lookups), and as one shapely LineString per
edge under an STRtree: "which edges lie within r of each point" for a whole batch of
trajectories is one call.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from mapmatch.projection import Projection, planar

log = logging.getLogger(__name__)


class NetworkError(ValueError):
    """A network with no usable edge, duplicate edge ids, or broken geometry everywhere."""


@dataclass(frozen=True)
class EdgeInput:
    """One directed edge as read from a file: external ids and polyline [K, 2] (metric)."""

    edge_id: int
    source_id: int
    target_id: int
    coords: np.ndarray  # [K, 2] metric, K >= 2


@dataclass(eq=False)
class RoadNetwork:
    """Directed road graph with edge geometry (metric coordinates).

    Attributes:
        edge_ids: external id of each edge [E] int64.
        source, target: node index of each edge's ends [E] int64.
        node_ids: external id of each node [V] int64.
        node_xy: node positions [V, 2] (m).
        edge_len: edge lengths along the geometry [E] (m).
        seg_edge: edge index of each straight segment [S]; seg_a, seg_b: its ends [S, 2];
        seg_len [S]; seg_off: distance from the edge's start to the segment's start [S] (m).
        edge_seg: CSR pointer, segments of edge e are seg_ptr[e]:seg_ptr[e+1].
        projection: source CRS <-> metric frame.
    """

    edge_ids: np.ndarray
    source: np.ndarray
    target: np.ndarray
    node_ids: np.ndarray
    node_xy: np.ndarray
    edge_len: np.ndarray
    seg_edge: np.ndarray
    seg_a: np.ndarray
    seg_b: np.ndarray
    seg_len: np.ndarray
    seg_off: np.ndarray
    seg_ptr: np.ndarray
    projection: Projection = field(default_factory=planar)

    @property
    def num_edges(self) -> int:
        return len(self.edge_ids)

    @property
    def num_nodes(self) -> int:
        return len(self.node_ids)

    @cached_property
    def edge_lines(self) -> np.ndarray:
        """shapely LineString of every edge [E]."""
        import shapely

        return np.array([shapely.linestrings(self.edge_coords(e)) for e in range(self.num_edges)])

    @cached_property
    def edge_tree(self) -> Any:
        """STRtree over the edges (built on first use)."""
        import shapely

        return shapely.STRtree(self.edge_lines)

    @cached_property
    def edge_index(self) -> dict[int, int]:
        """External edge id -> edge index."""
        return {int(e): i for i, e in enumerate(self.edge_ids)}

    @cached_property
    def reverse(self) -> np.ndarray:
        """Index of the edge running the other way between the same nodes [E] (-1: none)."""
        key = {
            (int(a), int(b)): e
            for e, (a, b) in enumerate(zip(self.source, self.target, strict=True))
        }
        return np.array(
            [key.get((int(b), int(a)), -1) for a, b in zip(self.source, self.target, strict=True)],
            dtype=np.int64,
        )

    @cached_property
    def _seg_gstart(self) -> np.ndarray:
        return np.cumsum(self.seg_len) - self.seg_len

    @cached_property
    def bounds(self) -> np.ndarray:
        """[xmin, ymin, xmax, ymax] of the geometry (m)."""
        pts = np.concatenate([self.seg_a, self.seg_b])
        return np.concatenate([pts.min(axis=0), pts.max(axis=0)])

    def edge_between(self, source_id: int, target_id: int) -> int:
        """External id of an edge from node id ``source_id`` to node id ``target_id``.

        Raises:
            NetworkError: no such edge.
        """
        hit = np.nonzero(
            (self.node_ids[self.source] == source_id) & (self.node_ids[self.target] == target_id)
        )[0]
        if len(hit) == 0:
            raise NetworkError(f"no edge from node {source_id} to node {target_id}")
        return int(self.edge_ids[hit[0]])

    def edge_coords(self, e: int) -> np.ndarray:
        """Polyline [K, 2] of edge index ``e``."""
        s0, s1 = self.seg_ptr[e], self.seg_ptr[e + 1]
        return np.vstack([self.seg_a[s0:s1], self.seg_b[s1 - 1 : s1]])

    def point_on_edge(self, e: np.ndarray, offset: np.ndarray) -> np.ndarray:
        """Positions [N, 2] at ``offset`` (m) along edges ``e`` [N] (vectorised)."""
        e = np.asarray(e, dtype=np.int64)
        off = np.clip(np.asarray(offset, dtype=np.float64), 0.0, self.edge_len[e])
        # Segments are stored edge after edge, so their start offsets along the whole array
        # are sorted: one searchsorted finds every query's segment.
        g = self._seg_gstart
        s = np.searchsorted(g, g[self.seg_ptr[e]] + off, side="right") - 1
        s = np.clip(s, self.seg_ptr[e], self.seg_ptr[e + 1] - 1)
        t = np.where(self.seg_len[s] > 0, (off - self.seg_off[s]) / self.seg_len[s], 0.0)
        t = np.clip(t, 0.0, 1.0)[:, None]
        return self.seg_a[s] * (1.0 - t) + self.seg_b[s] * t


def build_network(
    edges: list[EdgeInput], projection: Projection | None = None, simplify: bool = False
) -> RoadNetwork:
    """A :class:`RoadNetwork` from edges; broken ones (non-finite, < 2 distinct points) are
    skipped with a warning.

    Raises:
        NetworkError: no usable edge, or two edges with the same id.
    """
    good: list[EdgeInput] = []
    broken = 0
    for e in edges:
        c = np.asarray(e.coords, dtype=np.float64).reshape(-1, 2)
        if len(c) < 2 or not np.all(np.isfinite(c)):
            broken += 1
            continue
        keep = np.r_[True, np.any(np.diff(c, axis=0) != 0.0, axis=1)]
        c = c[keep]
        if len(c) < 2:
            broken += 1
            continue
        good.append(EdgeInput(int(e.edge_id), int(e.source_id), int(e.target_id), c))
    if broken:
        log.warning("skipped %d edge(s) with broken geometry (non-finite or < 2 points)", broken)
    if not good:
        raise NetworkError(f"no usable edge ({len(edges)} read, {broken} with broken geometry)")
    if simplify:
        from mapmatch.simplify import merge_chains

        good = merge_chains(good)
    ids = np.array([e.edge_id for e in good], dtype=np.int64)
    uniq, counts = np.unique(ids, return_counts=True)
    if np.any(counts > 1):
        raise NetworkError(f"edge id {int(uniq[np.argmax(counts > 1)])} appears more than once")
    node_ext = np.array([[e.source_id, e.target_id] for e in good], dtype=np.int64)
    # FMM numbers nodes in order of first appearance (source, then target, edge by edge).
    flat = node_ext.ravel()
    _, first = np.unique(flat, return_index=True)
    node_ids = flat[np.sort(first)]
    lookup = {int(n): i for i, n in enumerate(node_ids)}
    src = np.array([lookup[int(s)] for s in node_ext[:, 0]], dtype=np.int64)
    dst = np.array([lookup[int(t)] for t in node_ext[:, 1]], dtype=np.int64)
    node_xy = np.zeros((len(node_ids), 2))
    node_xy[src] = [e.coords[0] for e in good]
    node_xy[dst] = [e.coords[-1] for e in good]
    counts_seg = np.array([len(e.coords) - 1 for e in good], dtype=np.int64)
    seg_ptr = np.concatenate([[0], np.cumsum(counts_seg)])
    seg_a = np.concatenate([e.coords[:-1] for e in good])
    seg_b = np.concatenate([e.coords[1:] for e in good])
    seg_len = np.hypot(*(seg_b - seg_a).T)
    seg_edge = np.repeat(np.arange(len(good)), counts_seg)
    cum = np.cumsum(seg_len)
    edge_end = cum[seg_ptr[1:] - 1]
    edge_start = np.concatenate([[0.0], edge_end[:-1]])
    seg_off = cum - seg_len - edge_start[seg_edge]
    return RoadNetwork(
        edge_ids=ids,
        source=src,
        target=dst,
        node_ids=node_ids,
        node_xy=node_xy,
        edge_len=edge_end - edge_start,
        seg_edge=seg_edge,
        seg_a=seg_a,
        seg_b=seg_b,
        seg_len=seg_len,
        seg_off=seg_off,
        seg_ptr=seg_ptr,
        projection=projection or planar(),
    )
