"""``robomr bench serving``: bucket batching, brownout and the edge bridge, against baselines.

1. Calibration: the real served models (detector; renderer) run batches of this workload's
   requests on this machine; t = a + b U + c n is fitted per path (``bench.serving_workload``).
2. Policy sweep (simulated, ``bench.serving_sim``): every policy on the same arrivals (Azure trace
   scaled, Poisson, bursty on/off) at offered loads of 0.25..2 x capacity, several seeds: goodput
   at the SLO, SLO attainment, p50/p90/p99 latency, peak batch memory; load at 80% attainment.
3. Brownout on vs off (bucket batching, bursty arrivals): SLO violations; accuracy of each tau
   level (detector AP, render PSNR, ``bench.serving_quality``).
4. Live (``bench.serving_live``): the same arrivals over HTTP against a replica process per
   policy, next to the simulation's prediction; the edge bridge, local vs offloaded latency and
   frames lost when the replica is killed halfway.
"""

from __future__ import annotations

import argparse
import sys
import time
from math import nan
from pathlib import Path

import numpy as np

from bench.report import BenchReport, Table
from bench.serving_sim import PATTERNS, POLICIES, Sweep, Workload, load_at_attainment, sweep

DESCRIPTION = (
    "inference service: BucketServe vs static/FIFO/no batching (goodput at the SLO, attainment "
    "vs load), brownout on vs off under bursts with its accuracy cost, edge bridge"
)
DEFAULT_TRACE = (
    Path(__file__).resolve().parents[2]
    / "shared"
    / "data"
    / "traces"
    / "AzureLLMInferenceTrace_conv.csv"
)
TAUS = (1.0, 0.8, 0.6, 0.4, 0.2, 0.0)


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v.strip()]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--trace", type=Path, default=DEFAULT_TRACE, help="Azure-format trace CSV")
    p.add_argument("--models", default="detector,gs_render", help="models to benchmark")
    p.add_argument(
        "--loads", type=_floats, default=[0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0], help="x capacity"
    )
    p.add_argument("--seeds", type=int, default=5, help="seeds per (pattern, load)")
    p.add_argument("--duration", type=float, default=60.0, help="simulated seconds per run")
    p.add_argument("--beams", type=_floats, default=[16, 32, 64], help="scan beam counts")
    p.add_argument("--ranges", type=_floats, default=[30, 60, 100], help="scan max ranges (m)")
    p.add_argument("--render-sizes", default="160x120,320x240,480x360", help="render sizes")
    p.add_argument("--slo-factor", type=float, default=3.0, help="SLO = this x median service time")
    p.add_argument("--memory-budget-mb", type=float, default=512.0, help="batch memory budget")
    p.add_argument(
        "--static-delays-ms",
        type=_floats,
        default=[0, 5, 10, 20, 50, 100],
        help="static queue delays tried (ms)",
    )
    p.add_argument(
        "--static-timeouts",
        type=_floats,
        default=[0, 0.8, 0.6, 0.4],
        help="static queue-policy timeouts tried, as shares of the SLO (0: drop past the deadline)",
    )
    p.add_argument(
        "--whatif-overhead",
        type=_floats,
        default=[],
        help="also sweep with this share of a request's time made per-batch overhead (a GPU-like "
        "batching economy; e.g. 0.6), bucket vs static",
    )
    p.add_argument("--calib-per-size", type=int, default=4, help="batches timed per batch size")
    p.add_argument(
        "--calib-cache", type=Path, metavar="JSON", help="reuse/keep calibration fits in this file"
    )
    p.add_argument(
        "--service-scale-s",
        type=float,
        default=0.0,
        help="scale every calibrated time so a median full request takes this long (0: as "
        "measured; use on a loaded machine, where times are inflated many-fold)",
    )
    p.add_argument(
        "--sections",
        default="sweep,brownout,live",
        help="parts to run: sweep (policies), brownout, live (HTTP replay, bridge)",
    )
    p.add_argument("--brownout-duration", type=float, default=120.0, help="simulated s per run")
    p.add_argument("--brownout-load", type=float, default=1.0, help="mean load x capacity (bursty)")
    p.add_argument(
        "--brownout-bursts-s", type=_floats, default=[5, 20, 60], help="burst lengths swept (s)"
    )
    p.add_argument("--brownout-seeds", type=int, default=10, help="seeds per brownout setting")
    p.add_argument(
        "--brownout-ranges-m",
        type=_floats,
        default=[24, 16, 12, 8],
        help="detector brownout grid half-widths swept (m; the first is the headline)",
    )
    p.add_argument(
        "--brownout-scales",
        type=lambda text: [v.strip() for v in text.split(",") if v.strip()],
        default=["2", "4", "2:0.25"],
        help="renderer brownout levels swept: S (1/S resolution) or S:K (and a share K of the "
        "map's Gaussians)",
    )
    p.add_argument(
        "--brownout-laws",
        default="paper,slack",
        help="brownout laws swept: paper (BrownoutServe's dial) and/or slack (per request)",
    )
    p.add_argument(
        "--brownout-headrooms",
        type=_floats,
        default=[1.0, 0.8, 0.6, 0.4],
        help="slack law: share of a request's budget the full path may use, swept",
    )
    p.add_argument(
        "--brownout-target",
        type=float,
        default=0.8,
        help="violation reduction the headline setting must reach (the cheapest that does)",
    )
    p.add_argument("--brownout-plot", type=Path, metavar="PNG", help="draw the burst timeline")
    p.add_argument(
        "--brownout-periods-s",
        type=_floats,
        default=[5, 2, 1, 0.5],
        help="brownout control periods swept (s; the first is the headline)",
    )
    p.add_argument(
        "--brownout-factors",
        type=_floats,
        default=[0.8, 0.5],
        help="brownout multiplicative steps swept (the first is the headline)",
    )
    p.add_argument(
        "--brownout-rescue",
        default="off,on",
        help="brownout rescue of late requests swept: off and/or on (the first is the headline)",
    )
    p.add_argument("--ap-frames", type=int, default=30, help="held-out frames for AP per tau")
    p.add_argument("--http-duration", type=float, default=20.0, help="live replay s (0: skip)")
    p.add_argument("--http-load", type=float, default=1.25, help="live replay load x capacity")
    p.add_argument("--http-policies", default="bucket,static,none", help="live policies")
    p.add_argument("--bridge-frames", type=int, default=30, help="bridge scans (0: skip)")
    p.add_argument(
        "--bridge-rate-hz",
        type=float,
        default=0.0,
        help="bridge scan rate (0: 10 Hz, or half the rate the local detector sustains here)",
    )
    p.add_argument("--plot", type=Path, metavar="PNG", help="draw attainment/goodput vs load")
    p.add_argument("--no-progress", action="store_true", help="no progress lines on stderr")


def run(args: argparse.Namespace) -> BenchReport:
    from bench.serving_models import build_workloads

    t0 = time.perf_counter()

    def say(message: str) -> None:
        if not args.no_progress:
            print(
                f"[serving {time.perf_counter() - t0:5.0f} s] {message}",
                file=sys.stderr,
                flush=True,
            )

    trace = args.trace if args.trace and args.trace.is_file() else None
    patterns = [p for p in PATTERNS if p != "trace" or trace is not None]
    report = BenchReport("serving", {k: str(v) for k, v in sorted(vars(args).items())})
    if trace is None:
        report.notes.append(f"no trace at {args.trace}: the trace pattern is skipped")
    sections = {x.strip() for x in args.sections.split(",") if x.strip()}
    if not sections or sections - {"sweep", "brownout", "live"}:
        raise ValueError(f"--sections {args.sections!r}: use sweep, brownout and/or live")
    workloads, models, extras = build_workloads(args, say)
    report.tables.append(extras["calibration"])
    figures: dict = {"goodput": {}, "slo_attainment": {}, "load_at_80pct_slo": {}}
    figures["goodput_ratio_bucket_over_static"] = {}
    figures["goodput_ratio_bucket_over_static_perload"] = {}
    for w in workloads if "sweep" in sections else []:
        s = sweep(
            w,
            args.loads,
            args.seeds,
            args.duration,
            trace,
            [d / 1e3 for d in args.static_delays_ms],
            patterns,
            say,
            args.static_timeouts,
        )
        _sweep_tables(report, figures, w, s, args.loads, patterns)
        figures.setdefault("static_tuned", {})[w.name] = {
            p: {"max_batch": b, "max_delay_ms": 1e3 * d, "queue_timeout_x_slo": t}
            for p, (b, d, t) in s.static.items()
        }
        figures.setdefault("static_grid", {})[w.name] = {
            p: {f"{b}x{1e3 * d:g}ms/t{t:g}": g for (b, d, t), g in grid.items()}
            for p, grid in s.static_grid.items()
        }
        perload: dict[str, dict] = figures.setdefault("static_perload", {}).setdefault(w.name, {})
        for (p, load), (b, d, t) in s.static_perload.items():
            perload.setdefault(p, {})[f"{load:g}"] = {
                "max_batch": b,
                "max_delay_ms": 1e3 * d,
                "queue_timeout_x_slo": t,
            }
        report.tables.append(_static_table(w.name, s))
        if args.whatif_overhead:
            from bench.serving_sections import whatif_section

            whatif_section(report, figures, w, args, trace, patterns, say)
    from bench.serving_brownout import brownout_section
    from bench.serving_sections import live_section

    if "brownout" in sections:
        brownout_section(report, figures, workloads, models, extras, args, say)
    if "live" in sections:
        live_section(report, figures, workloads, extras, args, trace, say)
    report.figures = figures
    if args.plot and "sweep" in sections:
        from bench.serving_plot import plot

        plot(figures, args.plot)
        report.notes.append(f"plot: {args.plot}")
    return report


def _mean_ci(values: list[float]) -> tuple[float, float, float]:
    """Mean and a bootstrap 95% CI of the mean (seeded: the same data give the same CI)."""
    v = np.asarray(values, dtype=np.float64)
    if len(v) < 2:
        return float(v.mean()), float(v.mean()), float(v.mean())
    rng = np.random.default_rng(0)
    means = v[rng.integers(0, len(v), (2000, len(v)))].mean(axis=1)
    return float(v.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def _sweep_tables(
    report: BenchReport,
    figures: dict,
    w: Workload,
    s: Sweep,
    loads: list[float],
    patterns: list[str],
) -> None:
    table = Table(
        f"{w.name}: policies on the same arrivals (simulated; SLO {w.slo_s * 1e3:.0f} ms, "
        f"capacity {w.capacity_hz:.2f} req/s)",
        [
            "pattern",
            "policy",
            "load",
            "goodput_hz",
            "ci95",
            "attainment",
            "p50_ms",
            "p90_ms",
            "p99_ms",
            "peak_mb",
            "batch",
        ],
    )
    summary = Table(
        f"{w.name}: peak goodput at the SLO and load at 80% attainment (x capacity)",
        ["pattern", "policy", "peak_goodput_hz", "load_at_80pct", "static_tuned"],
    )
    for pattern in patterns:
        for policy in POLICIES:
            goodputs, attains = [], []
            for load in loads:
                key = (pattern, policy, load)
                g, lo, hi = _mean_ci(s.goodput[key])
                a = float(np.mean(s.attainment[key]))
                lat = np.median(np.asarray(s.latency_ms[key]), axis=0)
                table.add(
                    pattern,
                    policy,
                    load,
                    g,
                    f"{lo:.2f}-{hi:.2f}",
                    a,
                    *lat,
                    float(np.max(s.peak_memory_mb[key])),
                    float(np.mean(s.batch_mean[key])),
                )
                goodputs.append(g)
                attains.append(a)
                for name, value in (("goodput", g), ("slo_attainment", a)):
                    figures[name].setdefault(w.name, {}).setdefault(pattern, {}).setdefault(
                        policy, {}
                    )[f"{load:g}"] = value
            at80 = load_at_attainment(loads, attains, 0.8)
            figures["load_at_80pct_slo"].setdefault(w.name, {}).setdefault(pattern, {})[policy] = (
                at80
            )
            batch, delay, timeout = s.static[pattern]
            tuned = f"batch {batch}, {delay * 1e3:g} ms, timeout {timeout:g} SLO"
            tuned = tuned if policy == "static" else "-"
            if policy == "static-perload":
                tuned = "per load"
            summary.add(pattern, policy, max(goodputs), at80, tuned)
        peak = {p: max(figures["goodput"][w.name][pattern][p].values()) for p in POLICIES}
        ratio = peak["bucket"] / peak["static"] if peak["static"] > 0 else float("inf")
        figures["goodput_ratio_bucket_over_static"].setdefault(w.name, {})[pattern] = ratio
        report.ratios[f"{w.name} {pattern}: peak goodput bucket / static"] = ratio
        oracle = peak["bucket"] / max(peak["static-perload"], 1e-12)
        figures["goodput_ratio_bucket_over_static_perload"].setdefault(w.name, {})[pattern] = oracle
        report.ratios[f"{w.name} {pattern}: peak goodput bucket / static tuned per load"] = oracle
        report.ratios[f"{w.name} {pattern}: peak goodput bucket / none"] = peak["bucket"] / max(
            peak["none"], 1e-12
        )
        l80 = figures["load_at_80pct_slo"][w.name][pattern]
        # static never reaching 80%: inf if bucket does, NaN if neither does (not 1e11)
        both = (l80["bucket"], l80["static"])
        ratio80 = both[0] / both[1] if both[1] > 0 else (float("inf") if both[0] > 0 else nan)
        report.ratios[f"{w.name} {pattern}: load at 80% SLO bucket / static"] = ratio80
    report.tables += [table, summary]


def _static_table(name: str, s: Sweep) -> Table:
    """Static batching's tuning grid: mean goodput over the loads (seed 0) per setting."""
    table = Table(
        f"{name}: static batching tuning grid, mean goodput at the SLO over the swept loads "
        "(req/s, seed 0; the best per pattern is `static`, the best per load `static-perload`)",
        ["pattern", "max_batch", "max_delay_ms", "timeout_x_slo", "mean_goodput_hz", "chosen"],
    )
    for pattern, grid in s.static_grid.items():
        for (b, d, t), g in sorted(grid.items()):
            table.add(pattern, b, 1e3 * d, t, g, "yes" if (b, d, t) == s.static[pattern] else "")
    return table
