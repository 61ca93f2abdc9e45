"""``robomr bench cluster``: C-Koordinator on the local cluster, all from real processes in one
run.

1. **CPI prediction**: ``robomr cluster collect``'s seeded mixes on this cluster; the
   gradient-boosted trees and the baselines (last value, linear regression) are trained on the
   first runs and scored on held-out runs (within 10% of measured CPI, MAPE).
   The label is the trimmed mean of an interval's probe bursts over the reference, predicted
   from the same interval's metrics (horizon 0); the other label aggregates and the
   next-interval task are scored beside it from the same rows. Before the cluster starts, the
   probe's own repeatability (CV over intervals, pinned to one cpu) is measured.
2. **Latency under co-runners**: the schedule of :mod:`bench.cluster_latency` under mitigation
   ``off``, Koordinator CPU ``suppress`` only, and ``full`` C-Koordinator (prediction + steering
   + suppress + escalation cap -> pause -> resume), with the model trained in step 1; ablations:
   ``full-pause`` (pauses the culprit at once instead of capping first), ``steer`` (prediction
   and steering alone) and, on request, ``full-measured`` (full on measured CPI).
   Variants take turns (the order rotates each repeat) so that drift hits all alike.

JSON keys: ``cpi_within10_accuracy``, ``cpi_mape``, ``baseline_within10_accuracy`` (the better
baseline), ``latency_ms`` {off, suppress, full, ...} x {p50, p90, p99}, ``be_throughput_kept``
(full vs off).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.cluster_latency import (
    SCHEDULE,
    be_kept,
    bootstrap_ratio_ci,
    percentiles_ms,
    run_variant,
    variant_config,
)
from bench.report import BenchReport, Table

DESCRIPTION = (
    "C-Koordinator on the local cluster: held-out CPI prediction accuracy vs last-value and "
    "linear baselines; P50/P90/P99 latency with co-runners under mitigation off, CPU suppress, "
    "and full (prediction + steering + suppress); best-effort throughput kept"
)
PRIMARY = ("off", "suppress", "full")
REPEAT_WINDOWS = (1, 2, 4)
LABELS = ((0, "trimmed"), (0, "median"), (0, "mean"), (1, "trimmed"), (1, "mean"))


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--replicas", type=int, default=2, help="serving replicas (one per core)")
    p.add_argument("--collect-runs", type=int, default=8, help="runs of the data collection")
    p.add_argument("--run-s", type=float, default=30.0, help="seconds per collection run")
    p.add_argument("--phase-s", type=float, default=6.0, help="seconds per collection mix")
    p.add_argument(
        "--schedule-phase-s",
        type=float,
        default=12.0,
        help=f"seconds per phase of the latency schedule ({len(SCHEDULE)} phases)",
    )
    p.add_argument(
        "--phases", type=int, default=len(SCHEDULE), help="use the first N phases of the schedule"
    )
    p.add_argument("--repeats", type=int, default=2, help="passes of the schedule per variant")
    p.add_argument("--calibrate-s", type=float, default=8.0, help="quiet latency measurement")
    p.add_argument("--load", type=float, default=0.45, help="offered load / quiet capacity")
    p.add_argument(
        "--variants",
        default="off,suppress,full,koordinator,qos",
        help="off, suppress and full, plus any of full-pause, steer, full-measured; NAME:X runs "
        "NAME with the threshold raise X (e.g. full:0.35, a sweep in one run)",
    )
    p.add_argument("--interval", type=float, default=1.0, help="agent interval (s)")
    p.add_argument("--probe-bursts", type=int, default=10, help="probe bursts per interval")
    p.add_argument(
        "--probe-intervals",
        type=int,
        default=10,
        help="intervals of the probe's repeatability check before the cluster starts",
    )
    p.add_argument(
        "--cluster-shares",
        type=int,
        default=1024,
        help="CPU weight of the cluster's cgroup against the rest of the machine",
    )
    p.add_argument(
        "--full-relax",
        type=float,
        default=None,
        help="threshold raise of the full variants while the requests meet little interference "
        "(MitigationConfig.full_relax_frac, 0..0.35; default its default)",
    )
    p.add_argument(
        "--model",
        type=Path,
        help="skip the collection and drive the variants with this trained CPI model (e.g. "
        "models/cpi_predictor.txt); the CPI accuracy figures are then not measured",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--work-dir",
        type=Path,
        help="logs, rows.jsonl and meta.json of the collection (default: a temp folder)",
    )


def run(args: argparse.Namespace) -> BenchReport:
    import tempfile

    from offload.cluster.api import ClusterApiError
    from offload.cluster.collect import CollectConfig, collect, label_repeatability, to_arrays
    from offload.cluster.local import LocalCluster, LocalClusterConfig
    from offload.cluster.mitigation import MitigationError
    from offload.cluster.predictor import ACCURACY_DEFINITION

    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    missing = [v for v in PRIMARY if v not in variants]
    if missing:
        raise SystemExit(f"--variants must include {', '.join(PRIMARY)} (missing {missing})")
    for v in variants:  # a typo fails here, not after the collection
        try:
            variant_config(v, args.full_relax)
        except MitigationError as err:
            raise SystemExit(f"--variants: {err}") from err
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="robomr-bench-cluster-"))
    token = secrets.token_urlsafe(24)
    load_before = os.getloadavg()
    probe_cv = _probe_repeatability(args)
    config = LocalClusterConfig(
        token=token,
        work_dir=Path(work),
        name="bench",
        replica_args=("--policy", "none", "--no-brownout"),
        cluster_cpu_shares=args.cluster_shares,
    )
    t_start = time.monotonic()
    with LocalCluster(config) as cluster:
        url = cluster.up(args.replicas)
        print(
            f"cluster up at {url} ({args.replicas} replicas, cgroups {cluster.support.version})",
            flush=True,
        )
        cc = CollectConfig(
            runs=args.collect_runs,
            run_s=args.run_s,
            phase_s=args.phase_s,
            seed=args.seed,
            interval_s=args.interval,
            probe_bursts=args.probe_bursts,
            calibrate_s=args.calibrate_s,
        )
        if args.model:
            rows, meta, by_label = [], _calibrate_only(url, token, cc), {}
            scores, model = _given_model(args.model)
            data = {"y": np.zeros(0)}
        else:
            rows, meta = collect(url, token, cc, progress=lambda m: print(m, flush=True))
            # kept for `robomr cluster collect --from-rows DIR --train` (a model from this run)
            (Path(work) / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
            (Path(work) / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
            data = to_arrays(rows, meta["quiet_latency_ms"])
            by_label = _score_labels(rows, meta, cc, args.seed)
            scores, model = by_label[LABELS[0]]
            if "gbt_latency" in by_label[(1, "trimmed")][0]:
                scores = {**scores, "gbt_latency": by_label[(1, "trimmed")][0]["gbt_latency"]}
        rate = args.load * meta["capacity_per_s"]
        deadline = max(5.0, 40 * meta["quiet_latency_ms"] / 1e3)
        runs, lost = [], []
        for rep in range(args.repeats):
            order = variants[rep % len(variants) :] + variants[: rep % len(variants)]
            for v in order:
                for attempt in (1, 2):  # a starved router can drop a call: one retry, then skip
                    print(f"latency: {v} (pass {rep + 1}/{args.repeats})", flush=True)
                    try:
                        runs.append(
                            run_variant(
                                url,
                                token,
                                v,
                                model,
                                rate_per_s=rate,
                                phase_s=args.schedule_phase_s,
                                interval_s=args.interval,
                                probe_bursts=args.probe_bursts,
                                deadline_s=deadline,
                                seed=args.seed,
                                repeat=rep,
                                schedule=SCHEDULE[: args.phases],
                                full_relax_frac=args.full_relax,
                            )
                        )
                        break
                    except ClusterApiError as err:
                        print(f"latency: {v} pass {rep + 1} try {attempt} failed: {err}")
                        if attempt == 2:
                            lost.append(f"{v} pass {rep + 1}: {err}")
    report = _report(
        args,
        variants,
        scores,
        runs,
        meta,
        rate,
        load_before,
        ACCURACY_DEFINITION,
        time.monotonic() - t_start,
        len(data["y"]),
        cc,
        lost,
    )
    if by_label:
        report.tables.insert(1, _label_table({k: s for k, (s, _) in by_label.items()}))
        rep = {w: label_repeatability(rows, w) for w in REPEAT_WINDOWS}
        report.tables.insert(2, _repeatability_table(rep))
        report.figures["cpi_label_repeatability_within10"] = rep[1]["within"]
        report.ratios["gbt_within10_over_label_repeatability"] = (
            scores["gbt"]["within10"] / rep[1]["within"] if rep[1]["within"] > 0 else float("nan")
        )
        report.notes.append(
            f"collection: {meta['intervals_dropped_mixed']} intervals dropped because a mix "
            "changed while they were measured"
        )
    else:
        report.notes.append(
            f"no collection (--model {args.model}): CPI accuracy not measured in this run"
        )
    report.tables.insert(3 if by_label else 1, _probe_table(probe_cv, args))
    return report


def _repeatability_table(rep: dict[int, dict[str, float]]) -> Table:
    t = Table(
        "How well the CPI label agrees with itself (split-half: each label's probe bursts in two "
        "alternate halves, share with |a - b| / (a + b) <= 0.10; about the most within-10% any "
        "predictor can score against labels of that many bursts; all runs)",
        ["intervals per label", "bursts per label", "within 10% of itself", "labels"],
    )
    for w, r in rep.items():
        t.add(w, r["bursts"], r["within"], r["n"])
    return t


def _calibrate_only(url: str, token: str, cc: Any) -> dict:
    """The collection's quiet latency and capacity, without the collection (``--model``)."""
    from offload.cluster.api import ClusterApi
    from offload.cluster.load import closed_loop_latency, street_scan

    n = len(ClusterApi(url, token).status()["replicas"])
    quiet = closed_loop_latency(url, token, street_scan(seed=cc.seed), cc.calibrate_s)
    return {
        "quiet_latency_ms": float(np.median(quiet) * 1e3),
        "capacity_per_s": n / float(np.mean(quiet)),
    }


def _no_scores() -> dict[str, dict[str, float]]:
    """The scores of a model that was not measured (no collection, or too few rows)."""
    nan = {"within10": float("nan"), "mape": float("nan"), "n": 0}
    return {"gbt": nan, "linear": nan, "last_value": nan}


def _given_model(path: Path) -> tuple[dict, Any]:
    from offload.cluster.predictor import CpiPredictor

    return _no_scores(), CpiPredictor.load(path)


def _score_labels(rows: list[dict], meta: dict, cc: Any, seed: int) -> dict:
    """Every label definition scored on the same held-out runs: {(horizon, how): (scores, model)};
    also records how noisy the labels are in ``meta`` (other work on the node inflates every
    probe alike)."""
    from offload.cluster.collect import held_out, split, to_arrays
    from offload.cluster.predictor import PredictorError, evaluate

    data = to_arrays(rows, meta["quiet_latency_ms"])
    meta["label_median_inflation"] = float(np.nanmedian(data["y"])) if len(rows) else None
    meta["node_runq_median"] = (
        float(np.nanmedian([r["features"]["node_runq"] for r in rows])) if rows else None
    )
    meta["intervals_dropped_mixed"] = sum(bool(r.get("mixed")) for r in rows)
    by_label = {}
    for horizon, how in LABELS:
        d = to_arrays(rows, meta["quiet_latency_ms"], horizon, how)
        try:
            s, m = evaluate(*split(d, held_out(cc.runs)), seed)
        except PredictorError as err:  # a tiny run: the latency part runs on measured CPI
            print(f"no model ({horizon}, {how}): {err}", flush=True)
            s, m = _no_scores(), None
        by_label[(horizon, how)] = (s, m)
    return by_label


def _probe_repeatability(args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """The probe's own noise on this machine before anything of the bench runs: one probe
    pinned to the last cpu, ``probe_intervals`` intervals of ``probe_bursts`` bursts."""
    from offload.cluster.probe import ProbeError, TscProbe, repeatability

    if args.probe_intervals < 2:
        return {}
    before = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, {max(before)})  # this thread only
        probe = TscProbe()
        probe.calibrate()
        gap = args.interval / args.probe_bursts
        return repeatability(probe, args.probe_intervals, args.probe_bursts, gap)
    except ProbeError as err:
        print(f"no probe repeatability: {err}", flush=True)
        return {}
    finally:
        os.sched_setaffinity(0, before)


def _label_table(by_label: dict) -> Table:
    t = Table(
        "CPI accuracy by label definition (same rows and held-out runs; horizon 0 = features "
        "and label over the same interval, 1 = the next interval; aggregate of the interval's "
        "probe bursts)",
        ["horizon", "aggregate", "gbt w10", "linear w10", "last w10", "gbt MAPE", "n"],
    )
    for (h, how), s in by_label.items():
        t.add(
            h,
            how,
            s["gbt"]["within10"],
            s["linear"]["within10"],
            s["last_value"]["within10"],
            s["gbt"]["mape"],
            s["gbt"]["n"],
        )
    return t


def _probe_table(cv: dict, args: argparse.Namespace) -> Table:
    t = Table(
        f"probe repeatability before the cluster starts ({args.probe_intervals} intervals of "
        f"{args.probe_bursts} bursts in {args.interval:g} s, pinned to one cpu; CV = standard "
        "deviation / mean)",
        ["measure", "median CPI", "CV", "n"],
    )
    for how, r in cv.items():
        t.add(
            "single burst" if how == "burst" else f"interval {how}",
            r["median_cpi"],
            r["cv"],
            r["n"],
        )
    return t


def _report(
    args: argparse.Namespace,
    variants: list[str],
    scores: dict,
    runs: list,
    meta: dict,
    rate: float,
    load_before: tuple,
    definition: str,
    wall_s: float,
    n_samples: int,
    cc: Any,
    lost: list[str],
) -> BenchReport:
    settings = {
        k: str(v) if isinstance(v, Path) else v
        for k, v in vars(args).items()
        if k not in ("json", "work_dir")
    }
    settings.update(
        quiet_latency_ms=round(meta["quiet_latency_ms"], 1),
        offered_rate_per_s=round(rate, 2),
        samples=n_samples,
        held_out_runs=f"{cc.runs - max(1, cc.runs // 4)}..{cc.runs - 1}",
    )
    report = BenchReport("cluster", settings)
    acc = Table(
        "CPI prediction on held-out runs ("
        + definition
        + "; measured CPI = trimmed mean (20% off each end) of the interval's "
        + f"{args.probe_bursts} probe bursts, "
        "predicted from the same interval's metrics, intervals with a mix change dropped; "
        "gbt_latency: next-interval mean latency / quiet median)",
        ["method", "within 10%", "MAPE", "samples"],
    )
    for m in ("gbt", "linear", "last_value", "gbt_latency"):
        if m in scores:
            s = scores[m]
            acc.add(m, s["within10"], s["mape"], s["n"])
    report.tables.append(acc)
    lat = {
        v: np.concatenate([r.all_latencies() for r in runs if r.variant == v] or [np.zeros(0)])
        for v in variants
    }
    table = Table(
        "serving latency with co-runners (ms; all phases, all passes)",
        [
            "variant",
            "p50",
            "p90",
            "p99",
            "p99 / off [95% CI]",
            "answers",
            "failed",
            "BE kept",
            "changes",
        ],
    )
    latency_ms = {}
    for v in variants:
        pct = percentiles_ms(lat[v])
        latency_ms[v] = pct
        lo, hi = bootstrap_ratio_ci(lat[v], lat["off"], seed=args.seed)
        fails = sum(sum(r.failures.values()) for r in runs if r.variant == v)
        acts = {}
        for r in runs:
            if r.variant == v:
                for k, n in r.actions.items():
                    acts[k] = acts.get(k, 0) + n
        table.add(
            v,
            pct["p50"],
            pct["p90"],
            pct["p99"],
            f"{pct['p99'] / latency_ms['off']['p99']:.3f} [{lo:.2f}, {hi:.2f}]"
            if latency_ms["off"]["p99"] > 0
            else "-",
            len(lat[v]),
            fails,
            be_kept(runs, v) if v != "off" else 1.0,
            ", ".join(f"{k} {n}" for k, n in sorted(acts.items())) or "-",
        )
    report.tables.append(table)
    report.tables.append(_phase_table(runs, variants, SCHEDULE[: args.phases]))
    bases = [scores["last_value"]["within10"], scores["linear"]["within10"]]
    best_base = max(bases) if all(np.isfinite(bases)) else float("nan")
    p99 = {v: latency_ms[v]["p99"] for v in variants}
    report.ratios.update(
        {
            "gbt_within10_over_best_baseline": scores["gbt"]["within10"] / best_base
            if best_base > 0
            else float("nan"),
            "p99_full_over_off": p99["full"] / p99["off"],
            "p99_suppress_over_off": p99["suppress"] / p99["off"],
            "p99_full_over_suppress": p99["full"] / p99["suppress"],
            "be_throughput_kept_full_over_off": be_kept(runs, "full"),
        }
    )
    for v in variants:
        if v not in ("off", "suppress", "full"):
            key = v.replace("-", "_")
            report.ratios[f"p99_{key}_over_off"] = p99[v] / p99["off"]
            report.ratios[f"be_throughput_kept_{key}_over_off"] = be_kept(runs, v)
    report.figures.update(
        {
            "cpi_within10_accuracy": scores["gbt"]["within10"],
            "cpi_mape": scores["gbt"]["mape"],
            "baseline_within10_accuracy": best_base,
            "latency_ms": latency_ms,
            "be_throughput_kept": be_kept(runs, "full"),
        }
    )
    load_after = os.getloadavg()
    report.notes += [
        f"load average before/after: {load_before[0]:.1f} / {load_after[0]:.1f} on "
        f"{os.cpu_count()} cpus (a loaded machine distorts CPI and latency: rerun quiet)",
        f"wall time {wall_s / 60:.1f} min; {len(runs)} variant passes of "
        f"{args.phases} x {args.schedule_phase_s:.0f} s",
        "BE kept: mean over (pass, phase, co-runner) of work units / the same under off",
    ]
    report.notes.append(
        f"collection: median CPI inflation label {meta.get('label_median_inflation')} (1 = the "
        f"node's least CPI), median node run queue {meta.get('node_runq_median')}"
    )
    report.notes += [f"LOST (cluster API failed twice; figures without it): {x}" for x in lost]
    return report


def _phase_table(runs: list, variants: list[str], schedule: tuple) -> Table:
    kept = [v for v in variants if v != "off"]
    t = Table(
        "P99 latency (ms) and BE kept (work units / under off) per schedule phase",
        ["phase", *variants, *(f"BE kept {v}" for v in kept)],
    )
    for title, _ in schedule:
        row = []
        for v in variants:
            x = np.concatenate(
                [np.asarray(r.latencies.get(title, [])) for r in runs if r.variant == v]
                or [np.zeros(0)]
            )
            row.append(float(np.percentile(x, 99) * 1e3) if len(x) else float("nan"))
        t.add(title, *row, *(be_kept(runs, v, title) for v in kept))
    return t
