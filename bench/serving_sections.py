"""Live section of ``robomr bench serving`` (see ``bench.bench_serving``; brownout:
``bench.serving_brownout``)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from bench.report import BenchReport, Table
from bench.serving_sim import Workload, arrivals, run_one

TAUS = (1.0, 0.8, 0.6, 0.4, 0.2, 0.0)


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
            tuned = figures.get("static_tuned", {}).get("detector", {}).get(pattern, {})
            static = (
                int(tuned.get("max_batch", 1)),
                float(tuned.get("max_delay_ms", 0)) / 1e3,
                float(tuned.get("queue_timeout_x_slo", 0)),
            )
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
        # the bridge accepts deadlines up to 10 s (its parameter bound): on a heavily loaded
        # machine three local service times can exceed it
        deadline_ms = min(max(250.0, 3e3 * local_s), 10_000.0)
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


def whatif_section(
    report: BenchReport,
    figures: dict,
    w: Workload,
    args: argparse.Namespace,
    trace: Any,
    patterns: list[str],
    say: Callable[[str], None],
) -> None:
    """What if batching had an economy: every path's fit t = a + b U + c n rescaled to
    t' = s t1 + (1 - s) t, with t1 a median request's time alone, so one median request takes as
    long as measured but a share ``s`` of it is paid once per batch (GPUs batch like this, these
    CPUs do not). The same policy sweep (static re-tuned on the new times); peak goodput bucket /
    static. Simulated only."""
    from bench.serving_sim import POLICIES, sweep

    table = Table(
        f"{w.name}: what-if batching economy (a share of a median request's time made per-batch "
        "overhead; simulated): peak goodput at the SLO (req/s) and mean batch at the peak load",
        ["overhead_share", "pattern", "policy", "peak_goodput_hz", "batch", "static_tuned"],
    )
    median = float(np.median(w.costs["full"]))
    for share in args.whatif_overhead:
        if not 0 <= share < 1:
            raise ValueError(f"--whatif-overhead {share}: use shares in [0, 1)")
        fits = {}
        for path, f in w.fits.items():
            t1 = f.predict(median, 1)
            keep = 1.0 - share
            fits[path] = replace(
                f,
                overhead_s=share * t1 + keep * f.overhead_s,
                per_unit_s=keep * f.per_unit_s,
                per_item_s=keep * f.per_item_s,
            )
        say(f"{w.name}: what-if sweep, per-batch overhead {share:g} of a request")
        wi = replace(w, fits=fits)
        s = sweep(
            wi,
            args.loads,
            args.seeds,
            args.duration,
            trace,
            [d / 1e3 for d in args.static_delays_ms],
            patterns,
            None,
            args.static_timeouts,
        )
        for pattern in patterns:
            peaks = {}
            for policy in POLICIES:
                goodput = [float(np.mean(s.goodput[(pattern, policy, x)])) for x in args.loads]
                at = int(np.argmax(goodput))
                batch = float(np.mean(s.batch_mean[(pattern, policy, args.loads[at])]))
                peaks[policy] = goodput[at]
                b, d, t = s.static[pattern]
                tuned = f"batch {b}, {1e3 * d:g} ms, timeout {t:g}"
                table.add(
                    share, pattern, policy, goodput[at], batch, tuned if policy == "static" else "-"
                )
            ratio = peaks["bucket"] / max(peaks["static"], 1e-12)
            figures.setdefault("whatif_goodput_ratio_bucket_over_static", {}).setdefault(
                w.name, {}
            ).setdefault(f"{share:g}", {})[pattern] = ratio
            report.ratios[f"{w.name} {pattern}, what-if overhead {share:g}: bucket / static"] = (
                ratio
            )
    report.tables.append(table)
