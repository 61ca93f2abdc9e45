"""Upper-bounded origin-destination table (UBODT, from FMM: Yang & Gidofalvi 2018).

Every shortest path no longer than ``delta_m`` is computed once, up front (bounded Dijkstra
from every node, scipy's csgraph), and stored as sorted int64 keys ``source * V + target`` with
the distance and the last edge into the target. During matching, the k x k route lengths
between the candidates of two consecutive points are one vectorised ``searchsorted`` (on
networks of up to 3000 nodes one gather from a dense V x V index) instead of k^2 searches.
Pairs farther apart than ``delta_m`` are "no route" (``inf``), as in FMM.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from mapmatch.network import RoadNetwork

DENSE_MAX_NODES = 3000  # a 3000 x 3000 int32 table is 36 MB


class UbodtError(ValueError):
    """A bad bound, or an FMM table that does not belong to the network."""


@dataclass(eq=False)
class Ubodt:
    """Bounded all-pairs shortest paths of a network.

    Attributes:
        delta_m: the bound (m); longer paths are absent.
        num_nodes: V, to form keys.
        keys: ``source * V + target`` [P] int64, sorted.
        dist: path lengths [P] (m).
        last_edge: edge index of the path's last edge [P] int64.
    """

    delta_m: float
    num_nodes: int
    keys: np.ndarray
    dist: np.ndarray
    last_edge: np.ndarray

    def __len__(self) -> int:
        return len(self.keys)

    @cached_property
    def _dense(self) -> np.ndarray | None:
        """Row index of every (source, target) in a V x V int32 table (-1: absent), for
        networks small enough (V <= DENSE_MAX_NODES): a gather instead of a binary search."""
        V = self.num_nodes
        if V > DENSE_MAX_NODES:
            return None
        table = np.full(V * V, -1, dtype=np.int32)
        table[self.keys] = np.arange(len(self.keys), dtype=np.int32)
        return table.reshape(V, V)

    def _find(self, src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self._dense is not None and len(self.keys):
            pos = self._dense[src, dst]
            return np.maximum(pos, 0), pos >= 0
        key = np.asarray(src, dtype=np.int64) * self.num_nodes + np.asarray(dst, dtype=np.int64)
        pos = np.searchsorted(self.keys, key)
        pos_c = np.minimum(pos, len(self.keys) - 1)
        hit = (pos < len(self.keys)) & (self.keys[pos_c] == key) if len(self.keys) else pos < 0
        return pos_c, hit

    def lookup(self, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
        """Shortest-path length (m) from nodes ``src`` to ``dst`` (same shape); 0 where they are
        equal, ``inf`` where no path within the bound exists."""
        src = np.asarray(src, dtype=np.int64)
        dst = np.asarray(dst, dtype=np.int64)
        pos, hit = self._find(src, dst)
        out = np.where(hit, self.dist[pos] if len(self.keys) else 0.0, np.inf)
        return np.where(src == dst, 0.0, out)

    def path(self, src: int, dst: int, network: RoadNetwork) -> list[int] | None:
        """Edge indices of the shortest path from node ``src`` to ``dst``; [] if equal, None if
        there is none within the bound."""
        edges: list[int] = []
        node = int(dst)
        while node != src:
            pos, hit = self._find(np.array([src]), np.array([node]))
            if not hit[0]:
                return None
            e = int(self.last_edge[pos[0]])
            edges.append(e)
            node = int(network.source[e])
        return edges[::-1]

    def save_fmm(self, path: str | Path, network: RoadNetwork) -> None:
        """FMM's CSV (source;target;next_n;prev_n;next_e;distance, node/edge *indices*)."""
        V = self.num_nodes
        rows = ["source;target;next_n;prev_n;next_e;distance"]
        for key, d, last in zip(self.keys, self.dist, self.last_edge, strict=True):
            s, t = divmod(int(key), V)
            first = self.path(s, t, network)
            if not first:
                raise UbodtError(f"pair {s}->{t} has no stored path: a corrupt table")
            e0 = first[0]
            rows.append(f"{s};{t};{network.target[e0]};{network.source[last]};{e0};{d:.12g}")
        Path(path).write_text("\n".join(rows) + "\n")


def graph_matrix(network: RoadNetwork) -> tuple[csr_matrix, dict[tuple[int, int], int]]:
    """Node adjacency weighted by the shortest parallel edge, and (u, v) -> that edge."""
    best: dict[tuple[int, int], int] = {}
    for e, (u, v) in enumerate(zip(network.source, network.target, strict=True)):
        if u == v:
            continue
        k = (int(u), int(v))
        if k not in best or network.edge_len[e] < network.edge_len[best[k]]:
            best[k] = e
    ue = np.array(list(best.values()), dtype=np.int64)
    V = network.num_nodes
    # csgraph treats explicit zeros as missing edges: a zero-length edge gets a tiny weight.
    w = np.maximum(network.edge_len[ue], 1e-9)
    mat = csr_matrix((w, (network.source[ue], network.target[ue])), shape=(V, V))
    return mat, best


def build_ubodt(network: RoadNetwork, delta_m: float, chunk_cells: int = 4_000_000) -> Ubodt:
    """The UBODT of ``network`` with bound ``delta_m`` (m, in the network's metric frame).

    Raises:
        UbodtError: ``delta_m`` not finite and positive.
    """
    if not (np.isfinite(delta_m) and delta_m > 0):
        raise UbodtError(f"delta_m must be finite and > 0, got {delta_m}")
    mat, best = graph_matrix(network)
    V = network.num_nodes
    pair_u = np.array([k[0] for k in best], dtype=np.int64)
    pair_v = np.array([k[1] for k in best], dtype=np.int64)
    pair_key = pair_u * V + pair_v
    order = np.argsort(pair_key)
    pair_key, pair_e = pair_key[order], np.array(list(best.values()), dtype=np.int64)[order]
    keys, dists, lasts = [], [], []
    step = max(1, chunk_cells // max(V, 1))
    for lo in range(0, V, step):
        idx = np.arange(lo, min(V, lo + step))
        d, pred = dijkstra(mat, indices=idx, limit=delta_m, return_predecessors=True)
        rows, cols = np.nonzero(np.isfinite(d) & (pred >= 0))
        src = idx[rows]
        prev = pred[rows, cols].astype(np.int64)
        last = pair_e[np.searchsorted(pair_key, prev * V + cols)]
        keys.append(src * V + cols)
        dists.append(d[rows, cols])
        lasts.append(last)
    k = np.concatenate(keys)
    o = np.argsort(k)
    return Ubodt(
        delta_m=float(delta_m),
        num_nodes=V,
        keys=k[o],
        dist=np.concatenate(dists)[o],
        last_edge=np.concatenate(lasts)[o],
    )
