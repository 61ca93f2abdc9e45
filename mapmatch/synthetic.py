"""Seeded synthetic evaluation data on a real road network.

- Noise field: square cells of ``cell_m`` with a GNSS sigma each: open sky 5 m (half the
  cells), suburban 15 m (a quarter), urban canyon 30-50 m (a quarter). Fixes get isotropic
  Gaussian noise with their cell's sigma; the field's cells are not the LED's cells.
- Trips: legs between random nodes, each leg the shortest path, or with probability
  ``detour_prob`` a deliberate detour through a via node 100-400 m off the shortest path
  (no U-turn at the via node; scaled up on networks of longer blocks), so parts of the route
  are not shortest paths. Driven at a
  per-trip speed (8-14 m/s) varied per edge (log-normal, 20%), with stops at nodes
  (probability 0.25, 5-45 s); sampled every ``interval_s``.
- Buses: fixed routes without detours, driven several times and sampled every 10 s: the
  training data of the LED model (their true routes are known).

Every draw comes from the ``numpy.random.Generator`` passed in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse.csgraph import dijkstra

from mapmatch.network import RoadNetwork
from mapmatch.result import Trajectory
from mapmatch.ubodt import graph_matrix


@dataclass(frozen=True)
class NoiseField:
    """GNSS sigma per square cell [nx, ny] (m), anchored at ``origin`` (m)."""

    origin: tuple[float, float]
    cell_m: float
    sigma_grid: np.ndarray

    def sigma_at(self, xy: np.ndarray) -> np.ndarray:
        ij = np.floor((np.asarray(xy) - np.asarray(self.origin)) / self.cell_m).astype(np.int64)
        nx, ny = self.sigma_grid.shape
        return self.sigma_grid[np.clip(ij[:, 0], 0, nx - 1), np.clip(ij[:, 1], 0, ny - 1)]


def noise_field(
    net: RoadNetwork, rng: np.random.Generator, cell_m: float = 300.0, scale: float = 1.0
) -> NoiseField:
    """Random open / suburban / canyon cells over the network (sigmas times ``scale``)."""
    lo, hi = net.bounds[:2] - cell_m, net.bounds[2:] + cell_m
    shape = np.maximum(np.ceil((hi - lo) / cell_m).astype(int), 1)
    kind = rng.choice(3, size=shape, p=[0.5, 0.25, 0.25])
    sigma = np.choose(kind, [np.full(shape, 5.0), np.full(shape, 15.0), rng.uniform(30, 50, shape)])
    return NoiseField((float(lo[0]), float(lo[1])), cell_m, sigma * scale)


def grid_network(
    rng: np.random.Generator,
    nx: int = 14,
    ny: int = 14,
    spacing_m: float = 150.0,
    drop: float = 0.15,
    oneway: float = 0.2,
) -> RoadNetwork:
    """A jittered street grid (the tuning network: no real city): ``drop`` of the streets
    removed, ``oneway`` of the rest one-way, nodes moved by up to 20% of the spacing."""
    from mapmatch.network import EdgeInput, build_network

    xy = np.stack(np.meshgrid(np.arange(nx), np.arange(ny), indexing="ij"), -1).reshape(-1, 2)
    xy = xy * spacing_m + rng.uniform(-0.2, 0.2, xy.shape) * spacing_m
    edges: list[EdgeInput] = []
    for i in range(nx):
        for j in range(ny):
            a = i * ny + j
            for b in ((i + 1) * ny + j if i + 1 < nx else -1, a + 1 if j + 1 < ny else -1):
                if b < 0 or rng.random() < drop:
                    continue
                line = np.array([xy[a], xy[b]])
                one = rng.random() < oneway
                ways = [(a, b, line)] if not one or rng.random() < 0.5 else []
                if not one or not ways:
                    ways.append((b, a, line[::-1].copy()))
                for u, v, c in ways:
                    edges.append(EdgeInput(len(edges) + 1, u, v, c))
    return build_network(edges)


class RouteMaker:
    """Shortest paths on the network (scipy Dijkstra) for building routes."""

    def __init__(self, net: RoadNetwork):
        self.net = net
        self.mat, self.best = graph_matrix(net)
        # Keep to the largest strongly connected component: every node reaches every other.
        from scipy.sparse.csgraph import connected_components

        _, lab = connected_components(self.mat, directed=True, connection="strong")
        self.nodes = np.nonzero(lab == np.bincount(lab).argmax())[0]
        # Detour distances (100-400 m) are for city blocks of about 150 m; coarser grids
        # (FMM's toy network at 400 m) scale them.
        self.block_m = max(1.0, float(np.median(net.edge_len)) / 150.0)
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def tree(self, src: int) -> tuple[np.ndarray, np.ndarray]:
        if src not in self._cache:
            if len(self._cache) > 256:
                self._cache.clear()
            d, p = dijkstra(self.mat, indices=src, return_predecessors=True)
            self._cache[src] = (d, p)
        return self._cache[src]

    def path(self, src: int, dst: int) -> list[int]:
        """Edge indices of the shortest path (empty if src == dst or unreachable)."""
        _, pred = self.tree(src)
        edges, node = [], dst
        while node != src and pred[node] >= 0:
            edges.append(self.best[(int(pred[node]), int(node))])
            node = int(pred[node])
        return edges[::-1] if node == src else []


def _uturn(net: RoadNetwork, e1: int, e2: int) -> bool:
    return net.source[e1] == net.target[e2] and net.target[e1] == net.source[e2]


def random_route(
    rm: RouteMaker, rng: np.random.Generator, length_m: float, detour_prob: float = 0.3
) -> tuple[np.ndarray, np.ndarray]:
    """A route of at least ``length_m`` (edge indices) and a mask of its detour edges."""
    net = rm.net
    node = int(rng.choice(rm.nodes))
    edges: list[int] = []
    detour: list[bool] = []
    for _ in range(200):
        if sum(net.edge_len[e] for e in edges) >= length_m:
            break
        d, _ = rm.tree(node)
        reach = rm.nodes[(d[rm.nodes] > 300) & (d[rm.nodes] < 1500)]
        if len(reach) == 0:
            reach = rm.nodes[np.isfinite(d[rm.nodes]) & (rm.nodes != node)]
        dst = int(rng.choice(reach))
        leg = rm.path(node, dst)
        flags = [False] * len(leg)
        if leg and rng.random() < detour_prob:
            mid = int(net.target[leg[len(leg) // 2]])
            gap = np.hypot(*(net.node_xy[rm.nodes] - net.node_xy[mid]).T) / rm.block_m
            on = {int(net.source[e]) for e in leg} | {dst}
            pool = [int(v) for v in rm.nodes[(gap > 100) & (gap < 400)] if int(v) not in on]
            for v in rng.permutation(pool)[:10]:
                a, b = rm.path(node, int(v)), rm.path(int(v), dst)
                if a and b and not _uturn(net, a[-1], b[0]):
                    short = set(leg)
                    leg = a + b
                    flags = [e not in short for e in leg]
                    break
        if not leg or (edges and _uturn(net, edges[-1], leg[0])):
            continue
        edges += leg
        detour += flags
        node = dst
    return np.asarray(edges, dtype=np.int64), np.asarray(detour, dtype=bool)


@dataclass(frozen=True)
class Drive:
    """A route driven in time: cumulative distance ``s_m`` at times ``t_s`` (knots)."""

    edges: np.ndarray
    t_s: np.ndarray
    s_m: np.ndarray
    edge_start_m: np.ndarray  # cumulative distance at each edge's start [E+1]

    @property
    def duration_s(self) -> float:
        return float(self.t_s[-1])

    def at(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(route position index into ``edges`` [T], offset on that edge [T]) at times t."""
        s = np.interp(t, self.t_s, self.s_m)
        k = np.clip(np.searchsorted(self.edge_start_m, s, side="right") - 1, 0, len(self.edges) - 1)
        return k, s - self.edge_start_m[k]


def drive(net: RoadNetwork, edges: np.ndarray, rng: np.random.Generator) -> Drive:
    """Drive ``edges`` with a per-trip speed, per-edge variation and stops at nodes."""
    v = rng.uniform(8.0, 14.0) * rng.lognormal(0.0, 0.2, len(edges))
    length = net.edge_len[edges]
    stops = np.where(rng.random(len(edges)) < 0.25, rng.uniform(5.0, 45.0, len(edges)), 0.0)
    # Knots: (start of edge e) -> drive -> (end of edge e) -> stop -> ...
    t, s = [0.0], [0.0]
    for L, ve, st in zip(length, v, stops, strict=True):
        t.append(t[-1] + L / ve)
        s.append(s[-1] + L)
        if st > 0:
            t.append(t[-1] + st)
            s.append(s[-1])
    starts = np.concatenate([[0.0], np.cumsum(length)])
    return Drive(edges, np.asarray(t), np.asarray(s), starts)


def sample(
    net: RoadNetwork,
    d: Drive,
    interval_s: float,
    noise: NoiseField,
    rng: np.random.Generator,
    traj_id: int,
) -> tuple[Trajectory, np.ndarray]:
    """Noisy fixes every ``interval_s`` and the true route (edge indices) they span."""
    t = np.arange(rng.uniform(0, interval_s), d.duration_s, interval_s)
    k, off = d.at(t)
    e = d.edges[k]
    xy = net.point_on_edge(e, off)
    xy = xy + rng.normal(size=xy.shape) * noise.sigma_at(xy)[:, None]
    true = d.edges[k[0] : k[-1] + 1] if len(k) else d.edges[:0]
    return Trajectory(traj_id, xy, t), true


def bus_fleet(
    net: RoadNetwork,
    rm: RouteMaker,
    noise: NoiseField,
    rng: np.random.Generator,
    routes: int = 6,
    laps: int = 3,
    route_m: float = 6000.0,
    interval_s: float = 10.0,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """LED training data: bus fixes [n, 2] and each one's known route (edge indices)."""
    fixes, truth = [], []
    for _ in range(routes):
        edges, _ = random_route(rm, rng, route_m, detour_prob=0.0)
        for _ in range(laps):
            traj, _ = sample(net, drive(net, edges, rng), interval_s, noise, rng, 0)
            fixes.append(traj.xy)
            truth.append(edges)
    return fixes, truth
