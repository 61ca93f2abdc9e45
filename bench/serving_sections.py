"""Brownout and live sections of ``robomr bench serving`` (see ``bench.bench_serving``)."""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench.report import BenchReport, Table
from bench.serving_sim import Workload, arrivals, run_one
from offload.loadgen import bursty_arrivals

TAUS = (1.0, 0.8, 0.6, 0.4, 0.2, 0.0)


def _violations(
    w: Workload, policy: str, on: bool, seeds: int, duration: float, load: float, **burst: float
) -> tuple[float, float, float]:
    """Mean (violation share, goodput, tau) over seeds; rejected requests count as violations."""
    period = burst.pop("period_s", 5.0)
    rows = []
    for seed in range(seeds):
        arr = bursty_arrivals(load * w.capacity_hz, duration, seed, **burst)
        r = run_one(w, policy, arr, duration, seed, brownout=on, brownout_period_s=period)
        rows.append((1 - r.attainment(w.slo_s), r.goodput_hz(w.slo_s), r.mean_tau()))
    return tuple(float(v) for v in np.mean(rows, axis=0))  # type: ignore[return-value]


def brownout_section(
    report: BenchReport,
    figures: dict,
    workloads: list[Workload],
    models: dict[str, Any],
    args: argparse.Namespace,
    say: Callable[[str], None],
) -> None:
    """Bucket batching with brownout on vs off under the bursty pattern (same arrivals, seeds),
    a sweep of burst length and control period, and the accuracy of each tau level."""
    table = Table(
        f"brownout under bursts (bursty pattern: 3x the mean for 5 s every 20 s, mean load "
        f"{args.brownout_load} x capacity, {args.brownout_duration:.0f} s, {args.seeds} seeds; "
        "control period 5 s)",
        ["model", "policy", "brownout", "violations", "goodput_hz", "mean_tau"],
    )
    sweep = Table(
        "brownout sweep: violation reduction (on vs off, bucket batching) by burst length "
        "(off phase 3x as long), burst height (x the mean rate) and control period",
        [
            "model",
            "burst_s",
            "burst_x",
            "period_s",
            "violations_off",
            "violations_on",
            "reduction",
            "mean_tau",
        ],
    )
    figures["brownout_violation_reduction"] = {}
    figures["brownout_sweep"] = {}
    mean_tau: dict[str, float] = {}
    for w in workloads:
        say(f"{w.name}: brownout on vs off")
        base = {"on_s": 5.0, "off_s": 15.0, "burst_factor": 3.0}
        v = {
            (policy, on): _violations(
                w, policy, on, args.seeds, args.brownout_duration, args.brownout_load, **base
            )
            for policy, on in (("bucket", False), ("bucket", True), ("none", False))
        }
        for (policy, on), (viol, good, tau) in v.items():
            table.add(w.name, policy, "on" if on else "off", viol, good, tau)
        off, on = v[("bucket", False)][0], v[("bucket", True)][0]
        reduction = 1.0 - on / off if off > 0 else 0.0
        figures["brownout_violation_reduction"][w.name] = reduction
        report.ratios[f"{w.name}: SLO violations cut by brownout (bucket, on vs off)"] = reduction
        none_off = v[("none", False)][0]
        report.ratios[f"{w.name}: violations, bucket + brownout vs no batching, no brownout"] = (
            1.0 - on / none_off if none_off > 0 else 0.0
        )
        mean_tau[w.name] = v[("bucket", True)][2]
        for burst_s, height, period in itertools.product(
            args.brownout_bursts_s, (2.0, 3.0), (5.0, 1.0)
        ):
            shape = {"on_s": burst_s, "off_s": 3 * burst_s, "burst_factor": height}
            duration = max(args.brownout_duration, 4 * 4 * burst_s)  # four on/off cycles
            load = args.brownout_load
            o = _violations(w, "bucket", False, args.seeds, duration, load, **shape)
            n = _violations(w, "bucket", True, args.seeds, duration, load, **shape, period_s=period)
            red = 1.0 - n[0] / o[0] if o[0] > 0 else 0.0
            sweep.add(w.name, burst_s, height, period, o[0], n[0], red, n[2])
            figures["brownout_sweep"].setdefault(w.name, []).append(
                {"burst_s": burst_s, "burst_x": height, "period_s": period, "reduction": red}
            )
    report.tables += [table, sweep]
    _accuracy(report, figures, models, args, mean_tau, say)


def _accuracy(
    report: BenchReport,
    figures: dict,
    models: dict[str, Any],
    args: argparse.Namespace,
    mean_tau: dict[str, float],
    say: Callable[[str], None],
) -> None:
    """Detector AP per tau level; renderer brownout PSNR/SSIM."""
    from bench.serving_quality import detector_ap_by_tau, render_brownout_quality
    from bench.serving_workload import render_pool

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
        # seed 1: the window at 13.7% of the trace (its first minutes are unusually quiet)
        arr = arrivals(pattern, args.http_load * w.capacity_hz, args.http_duration, 1, trace)
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
            sim = run_one(w, policy, arr, args.http_duration, 1, static=static)
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
        local_s = w.fits["full"].predict(float(np.median(w.costs["full"])), 1)
        rate = args.bridge_rate_hz or min(10.0, 0.5 / local_s)
        deadline_ms = max(250.0, 3e3 * local_s)
        say(f"edge bridge at {rate:.1f} Hz: local, then offloaded with the replica killed halfway")
        local = bridge_run(clouds, rate, None)
        bridged = bridge_run(clouds, rate, args.bridge_frames // 2, deadline_ms)
        table = Table(
            f"edge bridge at {rate:.1f} Hz (half what the local detector sustains here, at most "
            f"10), {args.bridge_frames} scans, deadline {deadline_ms:.0f} ms; the replica is "
            "killed after half (async mode, wall clock)",
            ["run", "served", "frames", "p50_ms", "p90_ms", "frames_lost"],
        )
        for name, run in (("local lidar_detector", local), ("edge_bridge", bridged)):
            for kind, lat in run["latency_ms"].items():
                if lat:
                    p50, p90 = float(np.median(lat)), float(np.percentile(lat, 90))
                    table.add(name, kind, len(lat), p50, p90, run["frames_lost"])
        report.tables.append(table)
        figures["bridge_frames_lost"] = bridged["frames_lost"]
        figures["bridge_local_frames_lost"] = local["frames_lost"]
        figures["bridge_latency_ms"] = {
            name: {k: float(np.median(v)) for k, v in run["latency_ms"].items() if v}
            for name, run in (("local", local), ("bridge", bridged))
        }
