"""``robomr bench autoscale``: autoscalers on real traces (docs/autoscaling.md).

1. Cold start of a replica with and without the three-level artifact cache (real processes,
   ``offload.cluster.autoscaling.coldstart``); the cached start-up delays are the simulation's
   scale-up lag.
2. Live replay (``--live-s`` > 0): a time-scaled segment of the trace against real replica
   processes under one policy (``offload.cluster.autoscaling.live``), after calibrating the
   service-time model on one replica; the same segment through the simulation calibrated from
   those measurements: ``sim_vs_real_error`` = |p99 sim - p99 real| / p99 real.
3. Simulated sweep (``bench.autoscale_sweep``): every policy x knob setting x seed on the trace
   (Azure conversation trace by default) and on synthetic diurnal, bursty and step traces; per
   trace HPA's reference setting and each policy at no more replica-seconds, ratios against HPA.
4. Ablation: the chosen settings again with the no-cache start-up delays.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.report import BenchReport, Table

DESCRIPTION = (
    "autoscalers (HPA, KPA, queueing, predictive HW/LSTM, PPO) on traces, cache cold start"
)
DEFAULT_TRACE = Path(__file__).resolve().parents[1] / "../shared/data/traces/" \
    "AzureLLMInferenceTrace_conv.csv"  # fmt: skip


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(x) for x in text.split(",") if x.strip())


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--trace", type=Path, default=DEFAULT_TRACE, help="Azure-format CSV")
    p.add_argument("--synthetic", default="diurnal,bursty,step", help="synthetic traces ('' none)")
    p.add_argument("--synthetic-s", type=float, default=3600.0, help="synthetic trace length")
    p.add_argument("--policies", default="hpa,kpa,queueing,predictive-hw,predictive-lstm,rl")
    p.add_argument("--utilizations", type=_floats, default=(0.5, 0.6, 0.7, 0.8, 0.9))
    p.add_argument("--windows", type=_floats, default=(15.0, 30.0, 60.0, 120.0, 300.0),
                   help="scale-down windows (s)")  # fmt: skip
    p.add_argument("--violation-targets", type=_floats, default=(0.01, 0.05),
                   help="tail targets of the model-based policies' M/G/c model")  # fmt: skip
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--load-replicas", type=float, default=6.0, help="mean offered load")
    p.add_argument("--slo-target", type=float, default=0.01, help="HPA reference: violations")
    p.add_argument("--coldstart-repeats", type=int, default=3, help="0: skip, use --startup-s")
    p.add_argument(
        "--startup-s",
        type=_floats,
        default=(5.0, 30.0),
        help="start-up delay with,without cache when cold start is not measured",
    )
    p.add_argument("--live-s", type=float, default=180.0, help="live segment length (0: skip)")
    p.add_argument("--live-policy", default="queueing")
    p.add_argument("--live-load", type=float, default=1.0, help="live offered load (replicas)")
    p.add_argument("--plot", type=Path, default=None, help="PNG: replicas and load over time")
    p.add_argument("--calibration", type=Path, default=None,
                   help="a previous run's --json: its live service-time samples calibrate the "
                   "sweep when this run has no live part (--live-s 0)")  # fmt: skip
    p.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                   help="worker processes for the simulated sweep (1: none)")  # fmt: skip
    p.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> BenchReport:
    from bench.autoscale_sweep import (
        SweepSettings,
        confirm,
        confirmed_claim,
        frontier_dominance,
        policy_entry,
        select,
        sweep_trace,
    )
    from offload.cluster.autoscaling.calibration import ServiceModel, StartupModel
    from offload.cluster.autoscaling.traces import SYNTHETIC, azure_csv, synthetic

    t0 = time.perf_counter()

    def say(msg: str) -> None:
        if not args.no_progress:
            print(f"[autoscale {time.perf_counter() - t0:5.0f} s] {msg}", file=sys.stderr,
                  flush=True)  # fmt: skip

    report = BenchReport("autoscale", {k: str(v) for k, v in sorted(vars(args).items())})
    figures: dict[str, Any] = {}
    service = ServiceModel.constant(0.1, 0.5)  # replaced by the live calibration when it runs
    startup, startup_nc = StartupModel.constant(5.0), StartupModel.constant(30.0)
    if args.coldstart_repeats > 0:
        from offload.cluster.autoscaling.coldstart import measure

        say("cold start with and without the artifact cache (real replica processes)")
        cs = measure(args.coldstart_repeats, progress=say)
        figures["cold_start_s"] = {"cache": cs["cache"], "no_cache": cs["no_cache"],
                                   "l2_only": cs["l2_only"], "reduction": cs["reduction"],
                                   "samples_s": cs["samples_s"]}  # fmt: skip
        startup = StartupModel(tuple(cs["samples_s"]["cache"]))
        startup_nc = StartupModel(tuple(cs["samples_s"]["no_cache"]))
        t = Table("cold start (s, request to /readyz 200)", ["way", "median", "samples"])
        for way, key in (("no cache (L3)", "no_cache"), ("L2 only", "l2"), ("L1+L2", "cache")):
            t.add(way, float(np.median(cs["samples_s"][key])), str(
                [round(x, 2) for x in cs["samples_s"][key]]))  # fmt: skip
        report.tables.append(t)
    else:
        report.notes.append(
            f"cold start not measured in this run: start-up {args.startup_s[0]} s (cache) / "
            f"{args.startup_s[1]} s (no cache) from --startup-s"
        )
        startup = StartupModel.constant(args.startup_s[0])
        startup_nc = StartupModel.constant(args.startup_s[1])
        figures["cold_start_s"] = {"cache": math.nan, "no_cache": math.nan}

    trace_path = args.trace if args.trace and Path(args.trace).is_file() else None
    if trace_path is None:
        report.notes.append(f"no trace at {args.trace}: synthetic traces only")
    if args.live_s > 0 and trace_path is not None:
        from bench.autoscale_live import live_section

        service, live = live_section(args, trace_path, say)
        figures["sim_vs_real_error"] = live["sim_vs_real_error"]
        figures["live"] = live
        report.tables.append(live.pop("table"))
    else:
        figures["sim_vs_real_error"] = math.nan
        if args.calibration is not None:
            service = _calibration(args.calibration)
            report.notes.append(f"service-time model from the live calibration in "
                                f"{args.calibration}")  # fmt: skip
    settings = SweepSettings(
        service, startup, load_replicas=args.load_replicas, utilizations=args.utilizations,
        windows_s=args.windows, violation_targets=args.violation_targets, seeds=args.seeds,
    )  # fmt: skip
    traces: dict[str, Any] = {}
    if trace_path is not None:
        full = azure_csv(trace_path)
        traces[full.name] = lambda seed, tr=full: tr
    for kind in (k for k in args.synthetic.split(",") if k):
        if kind not in SYNTHETIC:
            raise ValueError(f"unknown synthetic trace {kind!r} (one of {', '.join(SYNTHETIC)})")
        traces[kind] = lambda seed, k=kind: synthetic(k, 5.0, args.synthetic_s, seed)
    from offload.cluster.autoscaling import AutoscalingError, make_policy

    policies = []
    for p in (p for p in args.policies.split(",") if p):
        try:
            make_policy(p, bounds=settings.bounds)
            policies.append(p)
        except AutoscalingError as err:  # e.g. rl without trained weights: say so, go on
            report.notes.append(f"policy {p} left out: {err}")
            say(f"policy {p} left out: {err}")
    if "hpa" not in policies:
        raise ValueError("the comparison needs hpa in --policies")
    figures["traces"], timelines = {}, {}
    for name, make in traces.items():
        say(f"trace {name}: sweep of {len(policies)} policies")
        points, kept = sweep_trace(make, policies, settings, say, keep=lambda *a: True,
                                   jobs=args.jobs)  # fmt: skip
        sel = select(points, args.slo_target)
        entries = {p: policy_entry(pt, sel.hpa, sel.comparable[p]) for p, pt in sel.chosen.items()}
        for p in entries:
            entries[p]["frontier_dominance_vs_hpa"] = frontier_dominance(points, p)
        # ablation: the chosen settings with the no-cache start-up delays
        from dataclasses import replace

        from bench.autoscale_sweep import build, run_metrics
        from offload.cluster.autoscaling.simulate import simulate

        nc = replace(settings, startup=startup_nc)
        for p, pt in sel.chosen.items():
            vals = []
            for seed in range(settings.seeds):
                tr = make(seed)
                r = simulate(tr, build(p, pt.knobs, nc), nc.sim_config(tr, seed))
                vals.append(run_metrics(r)["slo_violation_rate"])
            entries[p]["slo_violation_rate_no_cache"] = float(np.mean(vals))
        say(f"trace {name}: the chosen settings again on {settings.seeds} fresh seeds")
        fresh = confirm(make, sel, settings, jobs=args.jobs)
        for p, pt in fresh.items():
            entries[p]["fresh_seeds"] = {
                "slo_violation_rate": pt.mean("slo_violation_rate"),
                "slo_violation_rate_ci95": pt.ci95("slo_violation_rate"),
                "replica_seconds": pt.mean("replica_seconds"),
            }
        figures["traces"][name] = {
            "policies": entries, "best_policy": sel.best, "claim_holds": sel.claim_holds,
            "claim_holds_fresh_seeds": confirmed_claim(sel, fresh),
            "mean_rate_hz": make(0).mean_rate_hz,
            "hpa_reference": {"target_utilization": sel.hpa.utilization,
                              "scale_down_window_s": sel.hpa.window_s},
            # every setting (the frontier behind the selection): policy, knobs, means, CI
            "points": [[pt.policy, pt.utilization, pt.window_s, pt.violation_target,
                        pt.mean("slo_violation_rate"), pt.mean("replica_seconds"),
                        pt.ci95("slo_violation_rate")] for pt in points],
        }  # fmt: skip
        timelines[name] = {p: kept[(p, pt.knobs)] for p, pt in sel.chosen.items()}
        report.tables.append(_table(name, entries, sel.best))
        report.tables.append(_fresh_table(name, entries, sel.best, confirmed_claim(sel, fresh)))
        ops = _operating_points(points, args.slo_target)
        figures["traces"][name]["operating_points"] = ops
        report.tables.append(_ops_table(name, ops))
    first = next(iter(figures["traces"]), None)
    if first is not None:  # the top-level keys: the trace given (Azure by default)
        figures["policies"] = figures["traces"][first]["policies"]
        figures["best_policy"] = figures["traces"][first]["best_policy"]
    for name, t in figures["traces"].items():
        for p, e in t["policies"].items():
            if p != "hpa":
                report.ratios[f"{name}: {p} violations / hpa"] = e["violations_vs_hpa"]
                report.ratios[f"{name}: {p} replica-seconds / hpa"] = e["replica_seconds_vs_hpa"]
    cs = figures["cold_start_s"]
    if cs["no_cache"] > 0:
        report.ratios["cold start cache / no cache"] = cs["cache"] / cs["no_cache"]
    report.figures = figures
    if args.plot and timelines:
        from bench.autoscale_plot import plot

        plot(timelines, args.plot)
        report.notes.append(f"plot: {args.plot}")
    report.notes.append(
        "violations: share of requests not answered within the SLO (3 x mean service time), "
        "dropped included; each policy at its best knob setting with no more replica-seconds "
        "than HPA's reference (the cheapest HPA setting with <= slo-target violations); "
        "'*' = not comparable (every setting costs more than HPA's reference)"
    )
    return report


def _table(name: str, entries: dict[str, dict], best: str | None) -> Table:
    t = Table(
        f"trace {name} (simulation; mean over seeds, 95% CI of violations; best: {best})",
        ["policy", "util", "window s", "tail", "violations", "CI95", "p99 ms", "replica-s",
         "actions", "forecast err", "viol/HPA", "cost/HPA", "viol no-cache"],
    )  # fmt: skip
    for p, e in entries.items():
        lo, hi = e["slo_violation_rate_ci95"]
        tail = e["target_violation"]
        t.add(
            p + ("" if e["within_hpa_cost"] else "*"), e["target_utilization"],
            e["scale_down_window_s"], "-" if tail is None else f"{tail:g}",
            e["slo_violation_rate"], f"[{lo:.4f}, {hi:.4f}]",
            e["p99_ms"], e["replica_seconds"], e["scaling_actions"], e["forecast_error"],
            e["violations_vs_hpa"], e["replica_seconds_vs_hpa"],
            e["slo_violation_rate_no_cache"],
        )  # fmt: skip
    return t


def _calibration(path: Path) -> Any:
    """The service model fitted to a previous run's live calibration samples."""
    import json

    from offload.cluster.autoscaling.calibration import ServiceModel

    try:
        samples = json.loads(Path(path).read_text())["live"]["service_samples"]
        rank, secs = (np.array(x, float) for x in zip(*samples, strict=True))
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ValueError(f"--calibration {path}: no live service samples ({err})") from None
    return ServiceModel.from_samples(rank, secs, bins=len(set(rank.tolist())))


def _fresh_table(name: str, entries: dict[str, dict], best: str | None, holds: bool) -> Table:
    t = Table(
        f"trace {name}: the chosen settings on fresh seeds (best: {best}; claim holds: {holds})",
        ["policy", "violations", "CI95", "replica-s", "viol/HPA", "cost/HPA"],
    )
    hpa = entries["hpa"]["fresh_seeds"]
    for p, e in entries.items():
        f = e["fresh_seeds"]
        lo, hi = f["slo_violation_rate_ci95"]
        hv, hc = hpa["slo_violation_rate"], hpa["replica_seconds"]
        t.add(p + ("" if e["within_hpa_cost"] else "*"), f["slo_violation_rate"],
              f"[{lo:.4f}, {hi:.4f}]", f["replica_seconds"],
              f["slo_violation_rate"] / hv if hv > 0 else math.nan,
              f["replica_seconds"] / hc if hc > 0 else math.nan)  # fmt: skip
    return t


def _operating_points(points: list, slo_target: float) -> dict[str, dict[str, Any]]:
    """The selection again with HPA tuned to stricter violation targets (1, 1/2, 1/5 of
    ``slo_target``): the claim at other operating points of the same sweep (no new runs)."""
    from bench.autoscale_sweep import select

    out = {}
    for target in (slo_target, slo_target / 2, slo_target / 5):
        sel = select(points, target)
        best = sel.chosen[sel.best] if sel.best else None
        out[f"{target:g}"] = {
            "hpa": [sel.hpa.setting, sel.hpa.mean("slo_violation_rate"),
                    sel.hpa.mean("replica_seconds"), sel.hpa.ci95("slo_violation_rate")],
            "best_policy": sel.best,
            "best": None if best is None else [
                best.setting, best.mean("slo_violation_rate"),
                best.mean("replica_seconds"), best.ci95("slo_violation_rate")],
            "claim_holds": sel.claim_holds,
        }  # fmt: skip
    return out


def _ops_table(name: str, ops: dict[str, dict[str, Any]]) -> Table:
    t = Table(
        f"trace {name}: HPA tuned to other violation targets (same sweep)",
        ["HPA target", "HPA setting", "HPA violations", "HPA replica-s", "best", "setting",
         "violations", "replica-s", "claim"],
    )  # fmt: skip
    for target, o in ops.items():
        h, b = o["hpa"], o["best"]
        t.add(target, h[0], h[1], h[2], o["best_policy"] or "-",
              "-" if b is None else b[0], math.nan if b is None else b[1],
              math.nan if b is None else b[2], str(o["claim_holds"]))  # fmt: skip
    return t
