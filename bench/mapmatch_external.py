"""An external matcher for ``robomr bench mapmatch``: leuvenmapmatching's DistanceMatcher
(KU Leuven, pure Python; pinned in requirements.txt), behind the same ``match_many`` call.

leuvenmapmatching matches to straight edges between nodes, so each of our edges' polylines
becomes a chain of its own nodes (interior vertices get fresh labels), and its node path maps
back to our edge ids. Sparse fixes need its non-emitting states (routes between fixes pass
through nodes that no fix is near); its settings mirror the tuned HMM baseline (noise sigma,
search radius, distance noise as beta).
"""

from __future__ import annotations

import logging
from itertools import pairwise

import numpy as np

from mapmatch.network import RoadNetwork
from mapmatch.result import MatchResult, Status, Trajectory, unmatched

log = logging.getLogger(__name__)


def available() -> bool:
    try:
        import leuvenmapmatching  # noqa: F401
    except ImportError:
        return False
    return True


class LeuvenMatcher:
    """leuvenmapmatching.DistanceMatcher on our network (results carry cpath only)."""

    name = "leuven"

    def __init__(self, net: RoadNetwork, sigma_m: float, radius_m: float, beta_m: float):
        from leuvenmapmatching.map.inmem import InMemMap

        # It logs every lattice at INFO and a linear-search hint at WARNING per trajectory.
        logging.getLogger("be.kuleuven.cs.dtai.mapmatching").setLevel(logging.ERROR)
        self.net, self.sigma_m, self.radius_m, self.beta_m = net, sigma_m, radius_m, beta_m
        self.map = InMemMap("robomr", use_latlon=False, use_rtree=False, index_edges=True)
        self.seg_of: dict[tuple[int, int], int] = {}
        V = net.num_nodes
        for v in range(V):
            x, y = net.node_xy[v]
            self.map.add_node(int(v), (float(y), float(x)))
        label = V
        for e in range(net.num_edges):
            coords = net.edge_coords(e)
            ids = [int(net.source[e])]
            for x, y in coords[1:-1]:
                self.map.add_node(label, (float(y), float(x)))
                ids.append(label)
                label += 1
            ids.append(int(net.target[e]))
            for a, b in pairwise(ids):
                self.map.add_edge(a, b)
                self.seg_of[(a, b)] = e

    def match_many(self, trajs: list[Trajectory]) -> list[MatchResult]:
        return [self.match(t) for t in trajs]

    def match(self, traj: Trajectory) -> MatchResult:
        from leuvenmapmatching.matcher.distance import DistanceMatcher

        m = DistanceMatcher(
            self.map,
            max_dist=self.radius_m,
            obs_noise=self.sigma_m,
            obs_noise_ne=2.5 * self.sigma_m,
            dist_noise=self.beta_m,
            non_emitting_states=True,
            max_lattice_width=8,
        )
        path = [(float(y), float(x)) for x, y in np.asarray(traj.xy)]
        try:
            m.match(path)
        except Exception as err:  # an external library's own failures, whatever they are
            log.debug("leuven failed on %s: %s", traj.traj_id, err)
            return unmatched(traj.traj_id, Status.NO_CANDIDATES, f"leuven: {err}", len(path))
        nodes = m.path_pred_onlynodes
        edges = [self.seg_of[(a, b)] for a, b in pairwise(nodes) if (a, b) in self.seg_of]
        cp = [e for k, e in enumerate(edges) if k == 0 or e != edges[k - 1]]
        if not cp:
            return unmatched(
                traj.traj_id, Status.NO_CANDIDATES, "leuven matched nothing", len(path)
            )
        return MatchResult(traj.traj_id, Status.OK, cpath=self.net.edge_ids[np.asarray(cp)])
