"""``robomr bench mapmatch --sweep``: the parameter sweep behind the methods' defaults.

Run on the tuning network (``--networks grid``) it reproduces how the HMM baseline's sigma,
beta and radius and LNSP's transition scales were chosen: the setting with the lowest summed
mean route mismatch over the intervals wins. It reuses the benchmark's units and scoring.
"""

from __future__ import annotations

import argparse
import itertools

import numpy as np

from bench import mapmatch_data as data
from bench.report import BenchReport, Table
from mapmatch import HmmMatcher, LnspConfig, LnspMatcher

HMM_GRID = {"sigma_m": (10.0, 20.0, 30.0, 40.0), "beta_m": (30.0, 100.0, 200.0, 400.0),
            "radius_m": (100.0, 150.0, 200.0)}  # fmt: skip
LNSP_GRID = {"beta_sigma": (1.0, 1.5, 2.0, 3.0), "beta_gc": (0.02, 0.05, 0.1),
             "uturn_penalty": (5.0, 10.0)}  # fmt: skip


def sweep(args: argparse.Namespace, score) -> BenchReport:
    intervals = [int(x) for x in args.intervals.split(",")]
    levels = [float(x) for x in args.noise_levels.split(",")]
    nets = [x.strip() for x in args.networks.split(",")]
    sets = []
    for name in nets:
        net, ubodt, _ = data.network(name)
        for level in levels:
            for seed in range(args.seeds):
                unit = data.make_unit(name, seed, level, args.trips, args.trip_m)
                sets += [(net, ubodt, unit, iv, data.sample_unit(unit, iv)) for iv in intervals]
    cands = [("hmm", dict(zip(HMM_GRID, v, strict=True)))
             for v in itertools.product(*HMM_GRID.values())]  # fmt: skip
    cands += [("lnsp", dict(zip(LNSP_GRID, v, strict=True)))
              for v in itertools.product(*LNSP_GRID.values())]  # fmt: skip
    table = Table(
        f"sweep on {args.networks}: mean route mismatch per interval, and their sum",
        ["method", "setting", *[f"{iv}s" for iv in intervals], "sum"],
    )
    rows = []
    for method, setting in cands:
        per: dict[int, list[float]] = {iv: [] for iv in intervals}
        for net, ubodt, unit, iv, samples in sets:
            m = (HmmMatcher(net, ubodt, k=8, **setting) if method == "hmm"
                 else LnspMatcher(net, ubodt, unit.led, LnspConfig(**setting)))  # fmt: skip
            res = m.match_many([t for t, _ in samples])
            per[iv].append(score(net, samples, res)["mismatch"])
        means = [float(np.mean(per[iv])) for iv in intervals]
        rows.append((method, setting, means))
        print(f"  {method} {setting}: {np.round(means, 4).tolist()}", flush=True)
    for method, setting, means in sorted(rows, key=lambda r: (r[0], sum(r[2]))):
        text = ", ".join(f"{k}={v:g}" for k, v in setting.items())
        table.add(method, text, *means, sum(means))
    report = BenchReport(name="mapmatch-sweep", settings={"networks": args.networks,
                         "seeds": args.seeds, "trips": args.trips})  # fmt: skip
    report.tables.append(table)
    for method in ("hmm", "lnsp"):
        best = min((r for r in rows if r[0] == method), key=lambda r: sum(r[2]))
        report.notes.append(f"best {method}: {best[1]} (summed mismatch {sum(best[2]):.4f})")
    return report
