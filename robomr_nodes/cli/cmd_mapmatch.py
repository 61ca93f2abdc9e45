"""``robomr mapmatch``: match GNSS trajectories to a road network, with FMM's options and file
formats (github.com/cyang-kth/fmm), LNSP by default.

    robomr mapmatch --network edges.shp --gps trips.csv --output mr.txt -k 4 -r 0.4 -e 0.5 \\
        --crs planar

Unlike FMM, coordinates are projected to a metric frame first (``--crs auto``: geographic
data to its UTM zone), so ``-r``/``-e``/``--delta`` are metres; ``--crs planar`` keeps the
data's own units, as FMM does.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from pathlib import Path

import numpy as np

from robomr_nodes.cli.main import CliError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "mapmatch",
        help="match GNSS trajectories to a road network (LNSP; FMM's options and formats)",
        description=__doc__.split("\n\n")[0],
    )
    net = p.add_argument_group("network (FMM: --network, --network_id, --source, --target)")
    net.add_argument(
        "--network", required=True, type=Path, help="road network: .shp, .osm.pbf or .graphml"
    )
    net.add_argument("--network_id", "--network-id", default="id", help="edge id field (id)")
    net.add_argument("--source", default="source", help="edge source node field (source)")
    net.add_argument("--target", default="target", help="edge target node field (target)")
    net.add_argument("--crs", default="auto",
                     help="working frame: auto (geographic -> UTM), planar (data units, like "
                     "FMM) or a CRS such as EPSG:3857 (auto)")  # fmt: skip
    gps = p.add_argument_group("GPS input (FMM's options)")
    gps.add_argument(
        "--gps", required=True, type=Path,
        help="trajectory CSV (id;geom WKT), point CSV (with --gps_point) or .shp",
    )  # fmt: skip
    gps.add_argument("--gps_id", default="id", help="id column (id)")
    gps.add_argument("--gps_geom", default="geom", help="geometry column (geom)")
    gps.add_argument("--gps_x", default="x", help="x column of a point CSV (x)")
    gps.add_argument("--gps_y", default="y", help="y column of a point CSV (y)")
    gps.add_argument("--gps_timestamp", default="timestamp", help="timestamp column (timestamp)")
    gps.add_argument("--gps_point", action="store_true", help="the CSV has one fix per row")
    out = p.add_argument_group("output (FMM's format)")
    out.add_argument("--output", "--out", required=True, type=Path, help="result CSV")
    out.add_argument(
        "--output_fields",
        default=None,
        help="comma list of opath,error,offset,pgeom,cpath,tpath,mgeom,length,all and the "
        "extensions status,confidence (FMM's default: cpath,mgeom)",
    )
    alg = p.add_argument_group("matching (FMM: -k, -r, -e; UBODT --delta)")
    alg.add_argument("-k", "--candidates", type=int, default=8, help="candidates per point (8)")
    alg.add_argument("-r", "--radius", type=float, default=300.0, help="search radius (300)")
    alg.add_argument("-e", "--error", type=float, default=50.0, help="GPS error sigma (50)")
    alg.add_argument(
        "--delta", type=float, default=3000.0,
        help="UBODT bound: longest route between consecutive fixes (3000)",
    )  # fmt: skip
    alg.add_argument(
        "--vmax", type=float, default=0.0,
        help="speed limit on routes between timed fixes (units/s; 0: none)",
    )  # fmt: skip
    alg.add_argument("--method", choices=("lnsp", "hmm", "nearest"), default="lnsp",
                     help="matcher (lnsp)")  # fmt: skip
    alg.add_argument(
        "--bus-routes",
        type=Path,
        help="fit an LED model instead of matching: the --gps trajectories are buses whose "
        "routes this file gives (FMM's result format, id;cpath); writes the model (JSON) to "
        "--output for --led (cells of --led-cell; radii up to -r, sigmas from -e / 50)",
    )
    alg.add_argument("--led-cell", type=float, default=250.0, help="LED cell size (250)")
    alg.add_argument("--led", type=Path,
                     help="LNSP's sub-region LED model (JSON from mapmatch.led); "
                     "default: -e and -r everywhere")  # fmt: skip
    p.set_defaults(func=_run)


def _read_gps(args: argparse.Namespace) -> list:
    from mapmatch import fmm_io

    path: Path = args.gps
    if not path.is_file():
        raise CliError(f"no GPS file {path}")
    suffix = path.suffix.lower()
    if suffix == ".shp":
        return fmm_io.read_trajectory_shapefile(path, args.gps_id)
    if suffix not in (".csv", ".txt"):
        raise CliError(f"GPS file {path.name}: want .csv, .txt or .shp (as FMM)")
    if args.gps_point:
        return fmm_io.read_point_csv(path, args.gps_id, args.gps_x, args.gps_y, args.gps_timestamp)
    return fmm_io.read_trajectory_csv(path, args.gps_id, args.gps_geom, args.gps_timestamp)


def _run(args: argparse.Namespace) -> int:
    from mapmatch import MatcherError, Status, Trajectory, build_ubodt, fmm_io, make_matcher
    from mapmatch.led import LedError, LedModel
    from mapmatch.loaders import load_network
    from mapmatch.network import NetworkError
    from mapmatch.projection import ProjectionError
    from mapmatch.result import unmatched
    from mapmatch.ubodt import UbodtError

    start = time.perf_counter()
    try:
        fields = fmm_io.parse_fields(args.output_fields)
        fmm_fields = {}
        if args.network.suffix.lower() == ".shp":
            fmm_fields = {"id_field": args.network_id, "source_field": args.source,
                          "target_field": args.target}  # fmt: skip
        net = load_network(args.network, crs=args.crs, **fmm_fields)
        raw = _read_gps(args)
        ubodt = build_ubodt(net, args.delta)
        led = LedModel.load(args.led) if args.led else None
        matcher = make_matcher(
            args.method, net, ubodt, args.error, args.radius, args.candidates, led,
            max_speed_mps=args.vmax,
        )  # fmt: skip
    except (NetworkError, ProjectionError, fmm_io.FmmIoError, UbodtError, LedError,
            MatcherError) as err:  # fmt: skip
        raise CliError(str(err)) from None
    print(f"network: {net.num_edges} edges, {net.num_nodes} nodes; UBODT {len(ubodt)} pairs")
    if args.bus_routes:
        return _fit_led(args, net, raw)
    results: list = [None] * len(raw)
    todo, trajs = [], []
    for i, r in enumerate(raw):
        if r.error:
            results[i] = unmatched(r.traj_id, Status.INVALID, r.error, len(r.xy))
            continue
        xy = net.projection.to_metric(r.xy) if len(r.xy) else r.xy
        todo.append(i)
        trajs.append(Trajectory(r.traj_id, xy, r.t_s))
    match_start = time.perf_counter()
    for i, res in zip(todo, matcher.match_many(trajs), strict=True):
        results[i] = res
    match_s = time.perf_counter() - match_start
    lengths = dict(zip(net.edge_ids.tolist(), net.edge_len.tolist(), strict=True))
    fmm_io.write_results(args.output, results, fields, net.projection.from_metric, lengths)
    points = sum(len(r.xy) for r in raw)
    counts = Counter(r.status.value for r in results)
    print(
        f"matched {len(results)} trajectories ({points} points) with {matcher.name} in "
        f"{match_s:.3f} s ({points / max(match_s, 1e-9):,.0f} points/s); total "
        f"{time.perf_counter() - start:.2f} s; wrote {args.output}"
    )
    print("status: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    for r in results:
        if r.status != Status.OK:
            print(f"  trajectory {r.traj_id}: {r.status.value}: {r.message}")
    _warn_extent(net, trajs)
    return 0


def _fit_led(args: argparse.Namespace, net, raw: list) -> int:
    from mapmatch.led import LedConfig, LedError, fit_led

    try:
        lines = args.bus_routes.read_text().strip().split("\n")
    except OSError as err:
        raise CliError(f"cannot read {args.bus_routes}: {err.strerror or err}") from None
    head = lines[0].split(";")
    if "cpath" not in head or "id" not in head:
        raise CliError(f"{args.bus_routes}: want FMM's result format with id and cpath columns")
    routes = {}
    for line in lines[1:]:
        cols = dict(zip(head, line.split(";"), strict=False))
        try:
            ids = [int(e) for e in cols["cpath"].split(",") if e]
            routes[int(cols["id"])] = [net.edge_index[e] for e in ids]
        except (KeyError, ValueError) as err:
            raise CliError(f"{args.bus_routes}: bad route row {line[:60]!r}: {err}") from None
    fixes, paths = [], []
    for r in raw:
        if r.error or r.traj_id not in routes or not routes[r.traj_id] or len(r.xy) == 0:
            print(f"  bus {r.traj_id}: skipped (no route, or unreadable fixes)")
            continue
        fixes.append(net.projection.to_metric(r.xy))
        paths.append(np.asarray(routes[r.traj_id], dtype=np.int64))
    try:
        # The defaults of LedConfig, in the units of -e and -r (50 and 300: the same).
        cfg = LedConfig(
            cell_m=args.led_cell,
            min_sigma_m=args.error / 50.0,
            min_radius_m=args.radius / 20.0,
            max_radius_m=args.radius,
        )
        led = fit_led(net, fixes, paths, cfg)
    except LedError as err:
        raise CliError(str(err)) from None
    led.save(args.output)
    n = int(led.count_grid.sum())
    print(
        f"LED model from {len(fixes)} buses ({n} fixes): global sigma {led.global_sigma_m:.4g}, "
        f"cells {led.sigma_grid.shape}, sigma {led.sigma_grid.min():.4g}-"
        f"{led.sigma_grid.max():.4g}; wrote {args.output}"
    )
    return 0


def _warn_extent(net, trajs) -> None:
    if not trajs:
        return
    pts = (
        np.concatenate([t.xy for t in trajs if len(t.xy)])
        if any(len(t.xy) for t in trajs)
        else None
    )
    if pts is None or not np.all(np.isfinite(pts)):
        return
    lo, hi = net.bounds[:2], net.bounds[2:]
    span = float(np.max(hi - lo))
    inside = np.all((pts >= lo - span) & (pts <= hi + span), axis=1)
    if not inside.any():
        print(
            "warning: every GPS point lies far outside the network's extent: are the GPS "
            "coordinates in the network's CRS?"
        )
