"""Networks: loaders (OSM PBF, GraphML, simulator lanes), geometry helpers, candidate search
and the UBODT against brute force."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from mapmatch import candidates
from mapmatch import synthetic as syn
from mapmatch.loaders import bundled_osm_pbf, load_graphml, load_lanes, load_osm_pbf
from mapmatch.network import EdgeInput, build_network
from mapmatch.projection import ProjectionError, choose_projection
from mapmatch.ubodt import build_ubodt


@pytest.fixture(scope="module")
def kouvola():
    pytest.importorskip("pyrosm", reason="OSM PBF files are read with pyrosm")
    return load_osm_pbf(bundled_osm_pbf("test"))


def test_osm_pbf_loads_projected_directed_and_simplified(kouvola) -> None:
    net = kouvola
    assert "UTM zone 35N" in net.projection.metric
    # Every OSM node of a two-way street is kept only where streets meet: no pass-through
    # node is left with exactly one edge in and one out between two other nodes.
    ins = np.bincount(net.target, minlength=net.num_nodes)
    outs = np.bincount(net.source, minlength=net.num_nodes)
    assert net.num_edges > 300 and np.all((ins + outs) > 0)
    # The suburb spans about 2.2 km in each direction (UTM metres).
    span = net.bounds[2:] - net.bounds[:2]
    assert np.all((span > 1500) & (span < 3000))
    # One-way streets (motorway ramps) exist: some edges have no reverse.
    assert np.any(net.reverse < 0) and np.any(net.reverse >= 0)


def test_simplification_keeps_every_metre_of_road() -> None:
    # A two-way street drawn as 5 pieces, a one-way one as 3, meeting at node 10.
    pts = [(0.0, 0.0), (10.0, 1.0), (20.0, 0.0), (30.0, 2.0), (40.0, 0.0), (50.0, 0.0)]
    edges = []
    for k in range(5):
        line = np.array([pts[k], pts[k + 1]])
        u, v = (k, k + 1) if k < 4 else (4, 10)
        edges += [EdgeInput(len(edges) + 1, u, v, line),
                  EdgeInput(len(edges) + 2, v, u, line[::-1].copy())]  # fmt: skip
    for k in range(3):
        line = np.array([[50.0, 10.0 * k], [50.0, 10.0 * (k + 1)]])
        u, v = (10, 20) if k == 0 else (20 + k - 1, 20 + k)
        edges.append(EdgeInput(len(edges) + 1, u, v, line))
    raw = build_network(edges)
    simple = build_network(edges, simplify=True)
    assert simple.num_edges == 3 and raw.num_edges == 13
    assert np.isclose(simple.edge_len.sum(), raw.edge_len.sum())


def test_graphml_in_osmnx_layout_loads(tmp_path) -> None:
    g = nx.MultiDiGraph(crs="epsg:4326")
    for n, (lon, lat) in {1: (24.94, 60.17), 2: (24.945, 60.17), 3: (24.945, 60.172)}.items():
        g.add_node(n, x=lon, y=lat)
    g.add_edge(1, 2, geometry="LINESTRING (24.94 60.17, 24.9425 60.1701, 24.945 60.17)")
    g.add_edge(2, 1)
    g.add_edge(2, 3)
    path = tmp_path / "g.graphml"
    nx.write_graphml(g, path)
    net = load_graphml(path)
    assert net.num_edges == 3 and "UTM zone 35N" in net.projection.metric
    # 0.005 degrees of longitude at 60.17 N is about 278 m (the curved edge a little more);
    # 0.002 degrees of latitude about 223 m.
    assert np.allclose(net.edge_len, [278.4, 277.5, 222.8], atol=0.5)


def test_simulator_lanes_make_a_directed_lane_network() -> None:
    from sim import generate_scene

    scene = generate_scene("urban-clutter")
    net = load_lanes(scene.lanes, scene.street_x_range_m, node_spacing_m=20.0)
    driving = [ln for ln in scene.lanes if ln.kind == "driving"]
    # Along-lane edges point along each lane's direction.
    d = net.seg_b - net.seg_a
    along = np.abs(d[:, 1]) < 1e-9
    for ln in driving:
        on = along & np.isclose(net.seg_a[:, 1], ln.center_y_m)
        assert on.any() and np.all(np.sign(d[on, 0]) == ln.direction)
    # Every node reaches every other (U-turns at the street ends close the loop).
    rm = syn.RouteMaker(net)
    assert len(rm.nodes) == net.num_nodes


@given(st.integers(0, 10_000), st.floats(1.0, 120.0), st.integers(1, 6))
@settings(max_examples=25, deadline=None)
def test_candidate_search_equals_brute_force(seed: int, radius: float, k: int) -> None:
    rng = np.random.default_rng(seed)
    net = syn.grid_network(rng, nx=5, ny=5, spacing_m=60.0)
    xy = rng.uniform(net.bounds[:2] - 30, net.bounds[2:] + 30, (20, 2))
    got = candidates.search(net, xy, np.full(20, radius), k)
    lines = [shapely.LineString(net.edge_coords(e)) for e in range(net.num_edges)]
    for i, p in enumerate(shapely.points(xy)):
        d = np.array([ln.distance(p) for ln in lines])
        inside = np.sort(d[d <= radius])[:k]
        mine = np.sort(got.dist[i][got.valid[i]])
        # shapely and our projection compute the same distances up to float64 rounding.
        assert np.allclose(mine, inside, atol=1e-7)
        pos = net.point_on_edge(got.edge[i][got.valid[i]], got.offset[i][got.valid[i]])
        assert np.allclose(pos, got.xy[i][got.valid[i]], atol=1e-7)


@given(st.integers(0, 10_000), st.floats(50.0, 2000.0))
@settings(max_examples=15, deadline=None)
def test_ubodt_equals_networkx_dijkstra_within_the_bound(seed: int, delta: float) -> None:
    net = syn.grid_network(np.random.default_rng(seed), nx=6, ny=6, spacing_m=100.0)
    u = build_ubodt(net, delta)
    g = nx.DiGraph()
    for e in range(net.num_edges):
        a, b, w = int(net.source[e]), int(net.target[e]), float(net.edge_len[e])
        if not g.has_edge(a, b) or g[a][b]["w"] > w:
            g.add_edge(a, b, w=w)
    for s in range(0, net.num_nodes, 5):
        ref = nx.single_source_dijkstra_path_length(g, s, cutoff=delta, weight="w")
        t = np.arange(net.num_nodes)
        got = u.lookup(np.full(len(t), s), t)
        want = np.array([ref.get(int(x), np.inf) for x in t])
        # Both add the same float64 lengths; only the order of additions differs.
        assert np.allclose(got, want, rtol=1e-12, atol=1e-9)
        for x in t[np.isfinite(want) & (t != s)][:3]:
            edges = u.path(s, int(x), net)
            assert np.isclose(net.edge_len[edges].sum(), want[x])


def test_projection_choices() -> None:
    lonlat = np.array([[24.9, 60.1], [25.0, 60.2]])
    utm = choose_projection("EPSG:4326", lonlat, "auto")
    assert "UTM zone 35N" in utm.metric
    assert np.allclose(utm.from_metric(utm.to_metric(lonlat)), lonlat, atol=1e-9)
    assert choose_projection("EPSG:4326", lonlat, "planar").identity
    assert choose_projection("EPSG:3067", lonlat * 1e4, "auto").identity  # metres already
    with pytest.raises(ProjectionError, match="unknown CRS"):
        choose_projection("EPSG:999999", lonlat, "auto")
    with pytest.raises(ProjectionError, match="outside lon"):
        choose_projection("EPSG:4326", lonlat * 10, "auto")
