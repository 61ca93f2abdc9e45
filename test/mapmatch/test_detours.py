"""Local non-shortest paths: real detours are kept, noise-made ones are not."""

from __future__ import annotations

import numpy as np
import pytest

from mapmatch import HmmMatcher, LedModel, LnspMatcher, Trajectory
from mapmatch import synthetic as syn
from mapmatch.ubodt import build_ubodt

T60 = np.array([0.0, 60.0, 120.0])


@pytest.mark.parametrize("sigma_m", [5.0, 15.0])
def test_a_fix_on_the_parallel_road_gives_the_detour(ladder, sigma_m: float) -> None:
    net, ubodt = ladder
    # The vehicle went 1 -> 2 -> 5 -> 6 -> 3 -> 4; its middle fix is on 5-6 (a little noise).
    xy = np.array([[75.0, 2.0], [300.0, 103.0], [525.0, -1.0]])
    res = LnspMatcher(net, ubodt, LedModel.uniform(sigma_m)).match(Trajectory(1, xy, T60))
    want = [net.edge_between(*p) for p in [(1, 2), (2, 5), (5, 6), (6, 3), (3, 4)]]
    assert res.status.value == "ok" and res.cpath.tolist() == want
    assert np.all(res.confidence > 0.5)


def test_a_canyon_fix_between_the_roads_does_not_invent_the_detour(ladder) -> None:
    net, ubodt = ladder
    # The vehicle stayed on the main road; an urban-canyon fix (sigma 45 m) landed 60 m off
    # it, 40 m from the parallel road. LNSP's LED knows the region is a canyon; an HMM whose
    # one sigma fits open sky (10 m) follows the fix onto the parallel road.
    xy = np.array([[75.0, 1.0], [300.0, 60.0], [525.0, 0.0]])
    t = np.array([0.0, 30.0, 60.0])
    led = LedModel.uniform(45.0)
    lnsp = LnspMatcher(net, ubodt, led).match(Trajectory(1, xy, t))
    hmm = HmmMatcher(net, ubodt, sigma_m=10.0, beta_m=100.0, radius_m=150.0).match(
        Trajectory(1, xy, t)
    )
    main = [net.edge_between(*p) for p in [(1, 2), (2, 3), (3, 4)]]
    assert lnsp.cpath.tolist() == main
    assert hmm.cpath.tolist() != main
    # The middle fix is placed on the matched road, not dropped from the result.
    assert lnsp.opath[1] == net.edge_between(2, 3) and lnsp.status.value == "ok"


def test_lnsp_recovers_most_deliberate_detours_on_seeded_grid_trips() -> None:
    net = syn.grid_network(np.random.default_rng(5), nx=10, ny=10)
    ubodt, rm = build_ubodt(net, 4000.0), syn.RouteMaker(net)
    rng = np.random.default_rng(11)
    noise = syn.NoiseField((0.0, 0.0), 1e6, np.full((1, 1), 5.0))  # open sky everywhere
    trips, detour_edges = [], []
    for k in range(12):
        edges, detour = syn.random_route(rm, rng, 3000.0, detour_prob=1.0)
        traj, truth = syn.sample(net, syn.drive(net, edges, rng), 15.0, noise, rng, k)
        trips.append(traj)
        # Detour edges inside the sampled span.
        span = set(truth.tolist())
        detour_edges.append([e for e, d in zip(edges, detour, strict=True) if d and e in span])
    results = LnspMatcher(net, ubodt, LedModel.uniform(5.0)).match_many(trips)
    want = got = 0.0
    for res, det in zip(results, detour_edges, strict=True):
        matched = {net.edge_index[int(e)] for e in res.cpath}
        want += sum(net.edge_len[e] for e in det)
        got += sum(net.edge_len[e] for e in det if e in matched)
    assert want > 2000.0  # the trips do contain detours
    # With a fix every 15 s in open sky, detours a few blocks long are observed; 90% leaves
    # room for detour ends shorter than one sampling interval.
    assert got / want > 0.9
