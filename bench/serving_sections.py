"""Brownout and live sections of ``robomr bench serving`` (see ``bench.bench_serving``)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench.report import BenchReport, Table
from bench.serving_sim import Workload, arrivals, run_one

TAUS = (1.0, 0.8, 0.6, 0.4, 0.2, 0.0)


def brownout_section(
    report: BenchReport,
    figures: dict,
    workloads: list[Workload],
    models: dict[str, Any],
    args: argparse.Namespace,
    say: Callable[[str], None],
) -> None:
    """Bucket batching with brownout on vs off under bursty arrivals (same arrivals, seeds),
    and the accuracy of each tau level."""
    from bench.serving_quality import detector_ap_by_tau, render_brownout_quality

    table = Table(
        f"brownout under bursts (bucket batching, mean load {args.brownout_load} x capacity, "
        f"bursts 3x for 5 s every 20 s, {args.brownout_duration:.0f} s, {args.seeds} seeds)",
        ["model", "brownout", "violations", "attainment", "goodput_hz", "mean_tau", "p90_ms"],
    )
    figures["brownout_violation_reduction"] = {}
    mean_tau: dict[str, float] = {}
    for w in workloads:
        say(f"{w.name}: brownout on vs off")
        runs: dict[bool, list[Any]] = {False: [], True: []}
        for seed in range(args.seeds):
            rate = args.brownout_load * w.capacity_hz
            arr = arrivals("bursty", rate, args.brownout_duration, seed, None)
            for on in (False, True):
                runs[on].append(
                    run_one(w, "bucket", arr, args.brownout_duration, seed, brownout=on)
                )
        viol = {
            on: float(np.mean([1 - r.attainment(w.slo_s) for r in rs])) for on, rs in runs.items()
        }
        for on, rs in runs.items():
            table.add(
                w.name,
                "on" if on else "off",
                viol[on],
                1 - viol[on],
                float(np.mean([r.goodput_hz(w.slo_s) for r in rs])),
                float(np.mean([r.mean_tau() for r in rs])),
                float(np.median([r.percentile_ms(90) for r in rs])),
            )
        reduction = 1.0 - viol[True] / viol[False] if viol[False] > 0 else 0.0
        figures["brownout_violation_reduction"][w.name] = reduction
        report.ratios[f"{w.name}: SLO violations cut by brownout"] = reduction
        mean_tau[w.name] = float(np.mean([r.mean_tau() for r in runs[True]]))
    report.tables.append(table)
    if "detector" in models and args.ap_frames > 0:
        say(f"detector AP per tau level ({args.ap_frames} held-out frames)")
        ap = detector_ap_by_tau(models["detector"], args.ap_frames, TAUS)
        acc = Table(
            "detector accuracy per brownout level: share 1 - tau of frames on the "
            f"{models['detector'].brownout_range_m:g} m range (car R40 AP, held-out sim set)",
            ["tau", "bev_ap_0.7", "bev_ap_0.5", "ap_0.7_cost"],
        )
        for tau in TAUS:
            acc.add(
                tau, ap[tau]["bev_0.7"], ap[tau]["bev_0.5"], ap[1.0]["bev_0.7"] - ap[tau]["bev_0.7"]
            )
        report.tables.append(acc)
        tau = mean_tau.get("detector", 1.0)
        curve = [ap[t]["bev_0.7"] for t in TAUS]
        cost = ap[1.0]["bev_0.7"] - float(np.interp(tau, TAUS[::-1], curve[::-1]))
        figures["brownout_ap_cost"] = cost
        figures["brownout_ap_by_tau"] = {f"{t:g}": ap[t] for t in TAUS}
        report.notes.append(
            f"brownout_ap_cost: BEV AP@0.7 lost at the bursty run's mean tau {tau:.2f} "
            f"(interpolated between tau levels): {cost:.4f}"
        )
    if "gs_render" in models:
        from bench.serving_workload import render_pool

        poses = render_pool([(160, 120), (320, 240)], poses=2)
        q = render_brownout_quality(models["gs_render"], poses)
        report.tables.append(
            _one_row_table("renderer brownout path vs full render (same poses)", q)
        )
        figures["brownout_render_quality"] = q


def _one_row_table(title: str, values: dict[str, float]) -> Table:
    table = Table(title, list(values))
    table.add(*values.values())
    return table


def live_section(
    report: BenchReport,
    figures: dict,
    workloads: list[Workload],
    extras: dict[str, Any],
    args: argparse.Namespace,
    trace: Path | None,
    say: Callable[[str], None],
) -> None:
    """Real replicas over HTTP next to the simulation; the edge bridge."""
    from bench.serving_live import bridge_run, http_replay

    w = next((w for w in workloads if w.name == "detector"), None)
    if w is None:
        return
    pool = extras["pools"]["detector"]
    if args.http_duration > 0:
        pattern = "trace" if trace is not None else "poisson"
        arr = arrivals(pattern, args.http_load * w.capacity_hz, args.http_duration, 0, trace)
        table = Table(
            f"detector over HTTP, one replica process ({pattern}, {args.http_load} x capacity, "
            f"{args.http_duration:.0f} s): live vs simulated on the same arrivals",
            [
                "policy",
                "live_goodput_hz",
                "sim_goodput_hz",
                "live_attainment",
                "sim_attainment",
                "live_429",
                "live_p90_ms",
            ],
        )
        live = {}
        for policy in [p.strip() for p in args.http_policies.split(",") if p.strip()]:
            say(f"live HTTP replay: {policy}")
            tuned = figures["static_tuned"]["detector"].get(pattern, {})
            static = (int(tuned.get("max_batch", 1)), float(tuned.get("max_delay_ms", 0)) / 1e3)
            m = http_replay(
                policy, pool, arr, w.slo_s, args.http_duration, static, args.memory_budget_mb
            )
            sim = run_one(w, policy, arr, args.http_duration, 0, static=static)
            table.add(
                policy,
                m["goodput_hz"],
                sim.goodput_hz(w.slo_s),
                m["attainment"],
                sim.attainment(w.slo_s),
                m["rejected_429"],
                m["p90_ms"],
            )
            live[policy] = m
        report.tables.append(table)
        figures["http_live"] = live
    if args.bridge_frames > 0:
        clouds = [pool[i % len(pool)] for i in range(args.bridge_frames)]
        say("edge bridge: local detector, then offloaded with the replica killed halfway")
        local = bridge_run(clouds, args.bridge_rate_hz, None)
        bridged = bridge_run(clouds, args.bridge_rate_hz, args.bridge_frames // 2)
        table = Table(
            f"edge bridge at {args.bridge_rate_hz:g} Hz, {args.bridge_frames} scans; the replica "
            "is killed after half (async mode, wall clock)",
            ["run", "served", "frames", "p50_ms", "p90_ms", "frames_lost"],
        )
        for name, run in (("local lidar_detector", local), ("edge_bridge", bridged)):
            for kind, lat in run["latency_ms"].items():
                if lat:
                    table.add(
                        name,
                        kind,
                        len(lat),
                        float(np.median(lat)),
                        float(np.percentile(lat, 90)),
                        run["frames_lost"],
                    )
        report.tables.append(table)
        figures["bridge_frames_lost"] = bridged["frames_lost"]
        figures["bridge_local_frames_lost"] = local["frames_lost"]
        figures["bridge_latency_ms"] = {
            name: {k: float(np.median(v)) for k, v in run["latency_ms"].items() if v}
            for name, run in (("local", local), ("bridge", bridged))
        }
