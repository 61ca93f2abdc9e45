"""Small hand-made networks shared by the mapmatch tests."""

from __future__ import annotations

import numpy as np
import pytest

from mapmatch.network import EdgeInput, RoadNetwork, build_network
from mapmatch.ubodt import Ubodt, build_ubodt


def two_way(pairs: list[tuple[int, int]], xy: dict[int, tuple[float, float]]) -> RoadNetwork:
    """Both directions of every (u, v); edge ids 1, 2, ... in order (u->v, then v->u)."""
    edges = []
    for u, v in pairs:
        line = np.array([xy[u], xy[v]], dtype=float)
        edges.append(EdgeInput(len(edges) + 1, u, v, line))
        edges.append(EdgeInput(len(edges) + 1, v, u, line[::-1].copy()))
    return build_network(edges)


LADDER_XY = {1: (0, 0), 2: (150, 0), 3: (450, 0), 4: (600, 0), 5: (150, 100), 6: (450, 100)}
LADDER_PAIRS = [(1, 2), (2, 3), (3, 4), (2, 5), (5, 6), (6, 3)]


@pytest.fixture(scope="module")
def ladder() -> tuple[RoadNetwork, Ubodt]:
    """A main road 1-2-3-4 along y = 0 and a parallel one 5-6 at y = 100 joined at 2 and 3:
    2 -> 3 is 300 m, the detour 2 -> 5 -> 6 -> 3 is 500 m."""
    net = two_way(LADDER_PAIRS, LADDER_XY)
    return net, build_ubodt(net, 5000.0)
