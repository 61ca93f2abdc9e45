"""``robomr bench mapmatch``: LNSP (arXiv 2505.23123) against baselines on sparse trajectories.

Synthetic seeded trips with deliberate detours over real road networks (FMM's toy network
scaled to 400 m blocks, central Helsinki and a Kouvola suburb from OpenStreetMap),
region-dependent GNSS noise (5 m open sky to 30-50 m urban canyons, times ``--noise-levels``),
sampled every 15/30/60/120 s (:mod:`bench.mapmatch_data`). LNSP's LED model is trained per
unit on bus routes in the same noise field. Every method sees only the fixes and their
timestamps; the true routes score them. Parameters of LNSP and of the HMM were tuned on a
synthetic street grid (``--networks grid``), never on these.

Methods (same ``match_many`` interface): ``lnsp``; ``hmm`` (Newson-Krumm, one global sigma,
tuned: sigma 40 m, beta 100 m, radius 150 m); ``nearest`` (nearest edge, joined by shortest
paths); ``leuven`` (leuvenmapmatching's DistanceMatcher, on ``--external-trips`` trips per
unit: it is slow). Ablations of LNSP and an HMM with LNSP's U-turn term are a second table.

Per method and interval: route mismatch (missed + added length over true length), length
precision and recall (each pooled over a unit's trips; mean over units with a bootstrap 95%
CI), and points/s (all points of a unit over the wall time of one ``match_many`` call,
median over units; one process, one thread) with, beside it, points per CPU-second of the
process (what a quiet core would give when other processes share the machine). A units' 30
trips are a small batch; the throughput table matches ``--throughput-trips`` trips in one call.
``--json FILE`` writes ``{method: {interval: {mismatch, precision, recall, points_per_s}}}``
(means over units; points_per_s the median).
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from bench import mapmatch_data as data
from bench.report import BenchReport, Table
from mapmatch import HmmMatcher, LedModel, LnspConfig, LnspMatcher, NearestMatcher
from mapmatch.metrics import route_score

DESCRIPTION = (
    "LNSP vs HMM (global sigma), nearest-edge and leuvenmapmatching on sparse synthetic trips "
    "with detours over real road networks: route mismatch, precision, recall, points/s"
)
MAIN = ("lnsp", "hmm", "nearest")
HMM = {"sigma_m": 40.0, "beta_m": 100.0, "radius_m": 150.0, "k": 8}  # tuned on "grid"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seeds", type=int, default=5, help="seeds per network and noise level")
    parser.add_argument("--trips", type=int, default=30, help="trips per unit")
    parser.add_argument("--trip-m", type=float, default=6000.0, help="trip length (m)")
    parser.add_argument("--intervals", default="15,30,60,120", help="sampling intervals (s)")
    parser.add_argument("--networks", default="toy,helsinki,kouvola",
                        help="toy, helsinki, kouvola (grid: the tuning network)")  # fmt: skip
    parser.add_argument("--noise-levels", default="1.0,1.5", help="noise sigma multipliers")
    parser.add_argument("--external-trips", type=int, default=3,
                        help="trips per unit for leuvenmapmatching (0: skip it)")  # fmt: skip
    parser.add_argument("--no-ablations", action="store_true", help="skip the ablation table")
    parser.add_argument("--throughput-trips", type=int, default=200,
                        help="trips of one Helsinki unit matched in one call per method for "
                        "the throughput table (0: skip)")  # fmt: skip
    parser.add_argument("--report-json", type=Path, help="also write the full report as JSON")
    parser.add_argument("--sweep", action="store_true",
                        help="instead: sweep the HMM's and LNSP's parameters (use with "
                        "--networks grid, the tuning network)")  # fmt: skip
    parser.add_argument("--plot", type=Path, metavar="PNG", help="figure of one matched trip")


def _methods(net, ubodt, led: LedModel, ablations: bool) -> dict:
    m = {
        "lnsp": LnspMatcher(net, ubodt, led),
        "hmm": HmmMatcher(net, ubodt, **HMM),
        "nearest": NearestMatcher(net, ubodt, radius_m=HMM["radius_m"]),
    }
    if ablations:
        uniform = LedModel.uniform(led.global_sigma_m)
        m |= {
            "lnsp, one global LED": LnspMatcher(net, ubodt, uniform),
            "lnsp, no window test": LnspMatcher(net, ubodt, led, LnspConfig(outliers=False)),
            "lnsp, no U-turn term": LnspMatcher(net, ubodt, led, LnspConfig(uturn_penalty=0)),
            "lnsp + speed term": LnspMatcher(net, ubodt, led, LnspConfig(speed_term=True)),
            "lnsp + via-node detours": LnspMatcher(net, ubodt, led, LnspConfig(detours=True)),
            "hmm + U-turn term": HmmMatcher(net, ubodt, **HMM, uturn_penalty=10.0),
        }
    return m


def _score(net, samples, results) -> dict[str, float]:
    common = true = matched = 0.0
    for (_, truth), r in zip(samples, results, strict=True):
        idx = np.array([net.edge_index[int(e)] for e in r.cpath], dtype=np.int64)
        s = route_score(truth, idx, net.edge_len)
        t_len = float(net.edge_len[truth].sum())
        m_len = float(net.edge_len[idx].sum()) if len(idx) else 0.0
        c = s.recall * t_len
        common, true, matched = common + c, true + t_len, matched + m_len
    return {
        "mismatch": (true - common + matched - common) / true,
        "precision": common / matched if matched else 0.0,
        "recall": common / true,
    }


def _ci(values: list[float], rng: np.random.Generator) -> tuple[float, float, float]:
    v = np.asarray(values, dtype=np.float64)
    if len(v) < 2:
        return float(v.mean()), float(v.mean()), float(v.mean())
    boots = rng.choice(v, size=(2000, len(v))).mean(axis=1)
    return float(v.mean()), float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5))


def run(args: argparse.Namespace) -> BenchReport:
    if args.sweep:
        from bench.mapmatch_sweep import sweep

        report = sweep(args, _score)
        report.ratios["summed mismatch, best lnsp / best hmm"] = _best_ratio(report)
        return report
    intervals = [int(x) for x in args.intervals.split(",")]
    levels = [float(x) for x in args.noise_levels.split(",")]
    nets = [x.strip() for x in args.networks.split(",")]
    from bench.mapmatch_external import LeuvenMatcher, available

    external = args.external_trips > 0 and available()
    # (method, interval) -> list of per-unit dicts; plus per network and noise level.
    rows: dict[tuple[str, int], list[dict]] = defaultdict(list)
    by_net: dict[tuple[str, str, int], list[float]] = defaultdict(list)
    by_noise: dict[tuple[str, float, int], list[float]] = defaultdict(list)
    detour_share, example = [], None
    for name in nets:
        net, ubodt, _ = data.network(name)
        leuven = (
            LeuvenMatcher(net, HMM["sigma_m"], HMM["radius_m"], HMM["beta_m"]) if external else None
        )
        for level in levels:
            for seed in range(args.seeds):
                unit = data.make_unit(name, seed, level, args.trips, args.trip_m)
                detour_share.append(unit.detour_share)
                methods = _methods(net, ubodt, unit.led, not args.no_ablations)
                if leuven is not None:
                    methods["leuven"] = leuven
                print(f"  {name} noise x{level} seed {seed}: LED global sigma "
                      f"{unit.led.global_sigma_m:.1f} m, {unit.detour_share:.0%} of route length "
                      "on detours", flush=True)  # fmt: skip
                for iv in intervals:
                    samples = data.sample_unit(unit, iv)
                    for mname, matcher in methods.items():
                        sub = samples[: args.external_trips] if mname == "leuven" else samples
                        t0, c0 = time.perf_counter(), time.process_time()
                        res = matcher.match_many([t for t, _ in sub])
                        wall = time.perf_counter() - t0
                        cpu = time.process_time() - c0
                        sc = _score(net, sub, res)
                        points = sum(len(t.xy) for t, _ in sub)
                        sc["points_per_s"] = points / max(wall, 1e-9)
                        sc["points_per_cpu_s"] = points / max(cpu, 1e-9)
                        rows[(mname, iv)].append(sc)
                        by_net[(mname, name, iv)].append(sc["mismatch"])
                        by_noise[(mname, level, iv)].append(sc["mismatch"])
                    if example is None and name == "helsinki" and iv == _plot_interval(intervals):
                        example = (net, ubodt, unit, samples)
    report = _report(args, rows, by_net, by_noise, intervals, nets, levels, detour_share)
    if args.plot and example is not None:
        from bench.mapmatch_plot import plot_example

        report.notes.append(plot_example(args.plot, *example, HMM))
    if args.throughput_trips > 0:
        report.tables.append(_throughput(args.throughput_trips, intervals, args.trip_m))
    report.exact = _exact(rows, intervals, external)
    if args.report_json:
        BenchReport.write_json(report, args.report_json)
    return report


class MapmatchReport(BenchReport):
    """``write_json`` (``--json``) writes the issue's layout, nothing else."""

    exact: dict

    def write_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.exact, indent=2) + "\n")


def _throughput(trips: int, intervals: list[int], trip_m: float) -> Table:
    """Points/s of one ``match_many`` call over many trips (a fleet's backlog), per method."""
    net, ubodt, _ = data.network("helsinki")
    unit = data.make_unit("helsinki", 99, 1.0, trips, trip_m)
    t = Table(
        f"throughput: {trips} Helsinki trips in one match_many call (after one warm-up call)",
        ["method", "interval_s", "points", "points_per_s", "points_per_cpu_s"],
    )
    for iv in intervals:
        trajs = [tr for tr, _ in data.sample_unit(unit, iv)]
        points = sum(len(tr.xy) for tr in trajs)
        for name, m in _methods(net, ubodt, unit.led, ablations=False).items():
            m.match_many(trajs)
            t0, c0 = time.perf_counter(), time.process_time()
            m.match_many(trajs)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            t.add(name, iv, points, points / max(wall, 1e-9), points / max(cpu, 1e-9))
    return t


def _best_ratio(report: BenchReport) -> float:
    sums = {}
    for row in report.tables[0].rows:
        sums.setdefault(row[0], []).append(row[-1])
    return float(min(sums["lnsp"]) / min(sums["hmm"]))


def _plot_interval(intervals: list[int]) -> int:
    """The figure's sampling interval: 60 s if run (sparse, yet a readable number of fixes)."""
    return 60 if 60 in intervals else max(intervals)


def _exact(rows, intervals, external: bool) -> dict:
    out: dict = {}
    for m in (*MAIN, *(("leuven",) if external else ())):
        out[m] = {}
        for iv in intervals:
            units = rows[(m, iv)]
            out[m][str(iv)] = {
                k: float(np.mean([u[k] for u in units]))
                if k != "points_per_s"
                else float(np.median([u[k] for u in units]))
                for k in ("mismatch", "precision", "recall", "points_per_s")
            }
    return out


def _report(args, rows, by_net, by_noise, intervals, nets, levels, detour_share) -> BenchReport:
    rng = np.random.default_rng(0)
    report = MapmatchReport(
        name="mapmatch",
        settings={
            "networks": ",".join(nets),
            "seeds": args.seeds,
            "noise_levels": args.noise_levels,
            "trips_per_unit": args.trips,
            "trip_m": args.trip_m,
            "intervals_s": args.intervals,
            "external_trips": args.external_trips,
            "hmm": HMM,
            "lnsp": LnspConfig().__dict__,
        },
    )
    methods = sorted({m for m, _ in rows}, key=lambda m: (m not in MAIN, m != "leuven", m))
    main = [m for m in methods if m in (*MAIN, "leuven")]
    for title, names in (("main", main), ("ablations", [m for m in methods if m not in main])):
        if not names:
            continue
        t = Table(
            f"{title}: route mismatch (mean over units [95% CI]), precision, recall, points/s",
            ["method", "interval_s", "mismatch", "ci_low", "ci_high", "precision", "recall",
             "points_per_s", "points_per_cpu_s"],
        )  # fmt: skip
        for m in names:
            for iv in intervals:
                u = rows[(m, iv)]
                mean, lo, hi = _ci([x["mismatch"] for x in u], rng)
                t.add(m, iv, mean, lo, hi, float(np.mean([x["precision"] for x in u])),
                      float(np.mean([x["recall"] for x in u])),
                      float(np.median([x["points_per_s"] for x in u])),
                      float(np.median([x["points_per_cpu_s"] for x in u])))  # fmt: skip
        report.tables.append(t)
    t = Table(
        "paired: mismatch of lnsp minus each method on the same units (mean [95% CI]; < 0: "
        "lnsp better)",
        ["method", *[f"{iv}s" for iv in intervals]],
    )
    for m in [x for x in methods if x != "lnsp"]:
        cells = []
        for iv in intervals:
            a = [x["mismatch"] for x in rows[("lnsp", iv)]]
            b = [x["mismatch"] for x in rows[(m, iv)]]
            if m == "leuven":  # run on fewer trips of each unit: not paired with lnsp's figures
                cells.append("n/a")
                continue
            mean, lo, hi = _ci(list(np.subtract(a, b)), rng)
            cells.append(f"{mean:+.3f} [{lo:+.3f}, {hi:+.3f}]")
        t.add(m, *cells)
    report.tables.append(t)
    for key, groups, label in (("network", nets, "network"), ("noise", levels, "noise x")):
        t = Table(f"route mismatch by {label} (mean over seeds)",
                  [label, *[f"{m} {iv}s" for m in main for iv in intervals]])  # fmt: skip
        src = by_net if key == "network" else by_noise
        for g in groups:
            t.add(g, *[float(np.mean(src[(m, g, iv)])) for m in main for iv in intervals])
        report.tables.append(t)
    for iv in intervals:
        lnsp = np.mean([x["mismatch"] for x in rows[("lnsp", iv)]])
        for m in main:
            if m != "lnsp":
                other = np.mean([x["mismatch"] for x in rows[(m, iv)]])
                report.ratios[f"mismatch lnsp/{m} at {iv}s"] = float(lnsp / max(other, 1e-12))
    report.notes.append(
        f"{np.mean(detour_share):.0%} of the true route length lies on deliberate detours; "
        "leuven runs on the first --external-trips trips of each unit only"
    )
    return report
