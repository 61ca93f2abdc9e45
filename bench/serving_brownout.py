"""Brownout section of ``robomr bench serving``: BrownoutServe's dial under bursts, swept.

Bucket batching with brownout on vs off on the same bursty arrivals (3x the mean rate for 5 s
every 20 s, mean load ``--brownout-load`` x capacity) and seeds, over a grid of

- the degraded path's strength, the model's own reduced mode (BrownoutServe's "united expert"):
  the detector's grid half-width (``--brownout-ranges-m``: a shorter range is cheaper and misses
  the boxes beyond it), the renderer's resolution divisor (``--brownout-scales``); each level's
  service time is calibrated on the real model and its accuracy measured (detector car AP per
  tau, renderer PSNR/SSIM);
- the control law's period (``--brownout-periods-s``) and multiplicative step
  (``--brownout-factors``; the paper: 5 s and x0.8);
- rescue (``--brownout-rescue off,on``; not in the paper): a request the full path cannot serve
  by its deadline is offered the brownout path before it is refused;
- the law (``--brownout-laws``): the paper's dial, or the slack law (ours,
  ``offload.serving.scheduler``: per request, the full path while its predicted finish is within
  a share ``--brownout-headrooms`` of its budget, else the cheap path, else 429).

Reported per configuration: SLO violations (rejected requests count), their reduction against
brownout off, 1 - mean(on) / mean(off) over seeds with a paired bootstrap 95% CI (seeds
resampled), the time-weighted mean tau, the share of answers that took the brownout path and
the accuracy cost at that share (detector: BEV AP@0.7 lost). The headline
(``brownout_violation_reduction``) is the slack-law setting with the smallest accuracy cost
among those reaching ``--brownout-target`` (else the one with the largest reduction); the
paper's law at its own constants (5 s, x0.8, no rescue) on the first level is the reference
(``brownout_violation_reduction_paper``). A burst-shape sweep (length, height) repeats both, and
``--brownout-plot`` draws one run's timeline (arrivals, violations, tau) for off / paper / slack.
"""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Callable
from typing import Any

import numpy as np

from bench.report import BenchReport, Table
from bench.serving_models import level_label
from bench.serving_sim import Workload, run_one
from offload.loadgen import bursty_arrivals
from offload.serving.simulate import SimResult

TAUS = (1.0, 0.8, 0.6, 0.4, 0.2, 0.0)
BASE_SHAPE = {"on_s": 5.0, "off_s": 15.0, "burst_factor": 3.0}


def _runs(
    w: Workload,
    policy: str,
    on: bool,
    args: argparse.Namespace,
    shape: dict[str, float],
    period_s: float = 5.0,
    factor: float = 0.8,
    rescue: bool = False,
    law: str = "paper",
    headroom: float = 1.0,
) -> np.ndarray:
    """[seeds, 4]: violation share, goodput (req/s), mean tau, share of the answered requests
    served on the brownout path, per seed (the same arrivals per seed in every configuration)."""
    rows = []
    for seed in range(args.brownout_seeds):
        r, _ = _run(w, policy, on, args, shape, seed, period_s, factor, rescue, law, headroom)
        ok = r.status == "ok"
        cheap = float(np.mean(r.path[ok] == "brownout")) if ok.any() else 0.0
        rows.append((1 - r.attainment(w.slo_s), r.goodput_hz(w.slo_s), r.mean_tau(), cheap))
    return np.asarray(rows)


def _run(
    w: Workload,
    policy: str,
    on: bool,
    args: argparse.Namespace,
    shape: dict[str, float],
    seed: int,
    period_s: float = 5.0,
    factor: float = 0.8,
    rescue: bool = False,
    law: str = "paper",
    headroom: float = 1.0,
) -> tuple[SimResult, np.ndarray]:
    """One simulated run on the seed's bursty arrivals; (result, arrival times)."""
    duration = max(args.brownout_duration, 16 * shape["on_s"])  # at least four on/off cycles
    arr = bursty_arrivals(args.brownout_load * w.capacity_hz, duration, seed, **shape)
    r = run_one(
        w,
        policy,
        arr,
        duration,
        seed,
        on,
        brownout_period_s=period_s,
        brownout_factor=factor,
        brownout_rescue=rescue,
        brownout_law=law,
        brownout_headroom=headroom,
    )
    return r, arr.times_s


def reduction_ci(off: np.ndarray, on: np.ndarray, draws: int = 2000) -> tuple[float, float, float]:
    """1 - mean(on) / mean(off) and a paired bootstrap 95% CI over seeds (seeded)."""
    point = 1.0 - on.mean() / off.mean() if off.mean() > 0 else 0.0
    if len(off) < 2:
        return float(point), float(point), float(point)
    idx = np.random.default_rng(0).integers(0, len(off), (draws, len(off)))
    den = np.maximum(off[idx].mean(axis=1), 1e-12)
    boot = 1.0 - on[idx].mean(axis=1) / den
    return float(point), float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))


def _rescues(args: argparse.Namespace) -> list[bool]:
    values = {"off": False, "on": True}
    out = [values[v.strip()] for v in args.brownout_rescue.split(",") if v.strip() in values]
    if not out:
        raise ValueError(f"--brownout-rescue {args.brownout_rescue!r}: use off and/or on")
    return out


def _laws(args: argparse.Namespace) -> list[str]:
    out = [v.strip() for v in args.brownout_laws.split(",") if v.strip()]
    if not out or set(out) - {"paper", "slack"}:
        raise ValueError(f"--brownout-laws {args.brownout_laws!r}: use paper and/or slack")
    return out


def _settings(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Law settings swept: the paper's (period x step x rescue), the slack law's (headroom)."""
    out: list[dict[str, Any]] = []
    laws = _laws(args)
    if "paper" in laws:
        for period, factor, rescue in itertools.product(
            args.brownout_periods_s, args.brownout_factors, _rescues(args)
        ):
            out.append({"law": "paper", "period_s": period, "factor": factor, "rescue": rescue})
    if "slack" in laws:
        for h in args.brownout_headrooms:
            if not 0 < h <= 1:
                raise ValueError(f"--brownout-headrooms: {h} is not in (0, 1]")
            out.append({"law": "slack", "headroom": h, "period_s": args.brownout_periods_s[0]})
    return out


def _describe(row: dict[str, Any]) -> str:
    level = level_label(row["level"])
    if row["law"] == "slack":
        return f"slack law, {level}, headroom {row['headroom']:g}"
    rescue = ", rescue" if row["rescue"] else ""
    return f"paper law, {level}, {row['period_s']:g} s, x{row['factor']:g}{rescue}"


def _setting_args(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "period_s": row["period_s"],
        "factor": row.get("factor", 0.8),
        "rescue": row.get("rescue", True),
        "law": row["law"],
        "headroom": row.get("headroom", 1.0),
    }


def _cost_at(quality: dict[str, Any], name: str, level: Any, tau: float) -> float:
    """Accuracy lost at mean ``tau``: detector BEV AP@0.7 (interpolated between tau levels);
    renderer: share (1 - tau) x the PSNR drop of a brownout frame below 40 dB (a proxy, dB)."""
    if name == "detector" and "detector" in quality:
        ap = quality["detector"][level]
        curve = [ap[t]["bev_0.7"] for t in TAUS]
        return float(curve[0] - np.interp(tau, TAUS[::-1], curve[::-1]))
    if name == "gs_render" and "gs_render" in quality:
        return float((1.0 - tau) * max(40.0 - quality["gs_render"][level]["psnr_db"], 0.0))
    return float("nan")


def brownout_section(
    report: BenchReport,
    figures: dict,
    workloads: list[Workload],
    models: dict[str, Any],
    extras: dict[str, Any],
    args: argparse.Namespace,
    say: Callable[[str], None],
) -> None:
    """See the module docstring."""
    levels = {k: v for k, v in extras["levels"].items() if v}
    quality = _quality(report, figures, levels, args, say)
    grid = Table(
        f"brownout grid (bucket batching; bursty: 3x the mean for 5 s every 20 s, mean load "
        f"{args.brownout_load} x capacity, {args.brownout_duration:.0f} s, "
        f"{args.brownout_seeds} seeds): violation reduction vs brownout off, paired bootstrap CI",
        [
            "model",
            "level",
            "speedup",
            "law",
            "period_s",
            "factor",
            "rescue",
            "headroom",
            "violations_on",
            "reduction",
            "ci95",
            "mean_tau",
            "cheap_share",
            "accuracy_cost",
        ],
    )
    main = Table(
        "brownout: the paper's law at its constants (reference), the headline (the slack-law "
        f"setting of least accuracy cost reaching a {args.brownout_target:.0%} cut) and the "
        "largest cut swept, same arrivals and seeds",
        ["model", "config", "violations", "goodput_hz", "mean_tau", "cheap_share", "reduction"],
    )
    shapes = Table(
        "brownout by burst shape (off phase 3x the burst): reference and headline",
        [
            "model",
            "config",
            "burst_s",
            "burst_x",
            "violations_off",
            "violations_on",
            "reduction",
            "ci95",
            "mean_tau",
        ],
    )
    keys = (
        "brownout_violation_reduction",
        "brownout_violation_reduction_ci",
        "brownout_violation_reduction_paper",
        "brownout_config",
        "brownout_paper",
        "brownout_best",
        "brownout_grid",
        "brownout_sweep",
    )
    for key in keys:
        figures.setdefault(key, {})
    timeline: dict[str, Any] = {}
    for w in workloads:
        if w.name not in levels:
            continue
        say(f"{w.name}: brownout grid")
        off = _runs(w, "bucket", False, args, BASE_SHAPE)
        none_off = _runs(w, "none", False, args, BASE_SHAPE)
        rows = []
        for (level, lw, _), setting in itertools.product(levels[w.name], _settings(args)):
            on = _runs(lw, "bucket", True, args, BASE_SHAPE, **_setting_args(setting))
            red, lo, hi = reduction_ci(off[:, 0], on[:, 0])
            tau, cheap = float(on[:, 2].mean()), float(on[:, 3].mean())
            speedup = lw.fits["full"].predict(float(np.median(lw.costs["full"])), 1) / max(
                lw.fits["brownout"].predict(float(np.median(lw.costs["brownout"])), 1), 1e-9
            )
            row = {
                "level": level,
                "speedup": speedup,
                **setting,
                "violations_on": float(on[:, 0].mean()),
                "reduction": red,
                "ci95": [lo, hi],
                "mean_tau": tau,
                "cheap_share": cheap,
                "accuracy_cost": _cost_at(quality, w.name, level, 1.0 - cheap),  # what is served
            }
            grid.add(
                w.name,
                level_label(level),
                speedup,
                row["law"],
                row["period_s"],
                row.get("factor", "-"),
                "on" if row.get("rescue", True) else "off",
                row.get("headroom", "-"),
                row["violations_on"],
                red,
                f"{lo:.2f}-{hi:.2f}",
                tau,
                cheap,
                row["accuracy_cost"],
            )
            rows.append((row, lw, on))
        figures["brownout_grid"][w.name] = [r for r, _, _ in rows]
        paper = next((r for r in rows if r[0]["law"] == "paper"), rows[0])
        head = _headline(rows, args.brownout_target)
        best = max(rows, key=lambda r: r[0]["reduction"])
        figures["brownout_violation_reduction"][w.name] = head[0]["reduction"]
        figures["brownout_violation_reduction_ci"][w.name] = head[0]["ci95"]
        figures["brownout_violation_reduction_paper"][w.name] = paper[0]["reduction"]
        figures["brownout_config"][w.name] = head[0]
        figures["brownout_paper"][w.name] = paper[0]
        figures["brownout_best"][w.name] = best[0]
        main.add(w.name, "off", float(off[:, 0].mean()), float(off[:, 1].mean()), 1.0, 0.0, 0.0)
        main.add(
            w.name,
            "no batching, off",
            float(none_off[:, 0].mean()),
            float(none_off[:, 1].mean()),
            1.0,
            0.0,
            "-",
        )
        for label, (row, _, on) in (("reference", paper), ("headline", head), ("largest", best)):
            main.add(
                w.name,
                f"{label}: {_describe(row)}",
                float(on[:, 0].mean()),
                float(on[:, 1].mean()),
                row["mean_tau"],
                row["cheap_share"],
                "{:.2f} ({:.2f}-{:.2f})".format(row["reduction"], *row["ci95"]),
            )
        report.ratios[
            f"{w.name}: SLO violations cut by brownout (headline: {_describe(head[0])})"
        ] = head[0]["reduction"]
        report.ratios[f"{w.name}: SLO violations cut by brownout (paper's law, constants)"] = paper[
            0
        ]["reduction"]
        report.ratios[f"{w.name}: violations, bucket + headline brownout vs no batching"] = (
            1.0 - head[2][:, 0].mean() / max(none_off[:, 0].mean(), 1e-12)
        )
        for label, (row, lw, _) in (("reference", paper), ("headline", head)):
            for burst_s, height in itertools.product(args.brownout_bursts_s, (2.0, 3.0)):
                shape = {"on_s": burst_s, "off_s": 3 * burst_s, "burst_factor": height}
                o = _runs(w, "bucket", False, args, shape)
                n = _runs(lw, "bucket", True, args, shape, **_setting_args(row))
                red, lo, hi = reduction_ci(o[:, 0], n[:, 0])
                shapes.add(
                    w.name,
                    label,
                    burst_s,
                    height,
                    float(o[:, 0].mean()),
                    float(n[:, 0].mean()),
                    red,
                    f"{lo:.2f}-{hi:.2f}",
                    float(n[:, 2].mean()),
                )
                figures["brownout_sweep"].setdefault(w.name, []).append(
                    {
                        "config": label,
                        "burst_s": burst_s,
                        "burst_x": height,
                        "reduction": red,
                        "ci95": [lo, hi],
                    }
                )
        if not timeline:
            timeline = _timeline(w, paper, head, args)
            figures["brownout_timeline"] = timeline
    report.tables += [main, grid, shapes]
    det = figures["brownout_config"].get("detector")
    if det is not None and "detector" in quality:
        figures["brownout_ap_cost"] = det["accuracy_cost"]
        figures["brownout_ap_by_tau"] = {
            f"{t:g}": quality["detector"][det["level"]][t] for t in TAUS
        }
        report.notes.append(
            f"brownout_ap_cost: BEV AP@0.7 lost with {det['cheap_share']:.0%} of answers on the "
            f"{det['level']:g} m path (headline): {det['accuracy_cost']:.4f}"
        )
    ren = figures["brownout_config"].get("gs_render")
    if ren is not None and "gs_render" in quality:
        figures["brownout_render_quality"] = quality["gs_render"][ren["level"]]
    if timeline and getattr(args, "brownout_plot", None):
        from bench.serving_plot import plot_timeline

        plot_timeline(timeline, args.brownout_plot)
        report.notes.append(f"brownout timeline plot: {args.brownout_plot}")


def _headline(rows: list[tuple[dict, Any, np.ndarray]], target: float) -> tuple[dict, Any, Any]:
    """The slack-law setting of least accuracy cost with a cut >= ``target``, else the slack
    setting (or, without one, any) with the largest cut."""
    slack = [r for r in rows if r[0]["law"] == "slack"] or rows
    meeting = [r for r in slack if r[0]["reduction"] >= target]
    if meeting:
        return min(
            meeting, key=lambda r: (np.nan_to_num(r[0]["accuracy_cost"]), r[0]["cheap_share"])
        )
    return max(slack, key=lambda r: r[0]["reduction"])


def _tau_steps(tau: list[tuple[float, float]], setting: dict[str, Any]) -> list[list[float]]:
    """(time, tau) steps to draw: the paper's dial from when it is set; the slack law's tau (the
    share of a period's admissions on the full path, known at its end) over that period."""
    if setting.get("law") != "slack":
        return [[float(t), float(v)] for t, v in tau]
    period = setting["period_s"]
    return [[0.0, 1.0]] + [[float(t) - period, float(v)] for t, v in tau[1:]]


def _timeline(
    w: Workload, paper: tuple, head: tuple, args: argparse.Namespace, bin_s: float = 1.0
) -> dict[str, Any]:
    """Seed 0's run per configuration (off, the paper's law, the headline) in bins of ``bin_s``:
    arrivals, violations and cheap answers per second, and tau over time."""
    out: dict[str, Any] = {"model": w.name, "slo_s": w.slo_s, "bin_s": bin_s, "runs": {}}
    runs = {
        "brownout off": (w, False, {}),
        f"paper's law ({_describe(paper[0])})": (paper[1], True, _setting_args(paper[0])),
        f"slack law ({_describe(head[0])})": (head[1], True, _setting_args(head[0])),
    }
    for label, (lw, on, setting) in runs.items():
        r, times = _run(lw, "bucket", on, args, BASE_SHAPE, 0, **setting)
        edges = np.arange(0.0, r.duration_s + bin_s, bin_s)
        late = r.latency_s > w.slo_s
        out["edges_s"] = edges.tolist()
        out["arrivals_hz"] = (np.histogram(times, edges)[0] / bin_s).tolist()
        out["runs"][label] = {
            "violations_hz": (np.histogram(times[late], edges)[0] / bin_s).tolist(),
            "cheap_hz": (np.histogram(times[r.path == "brownout"], edges)[0] / bin_s).tolist(),
            "tau": _tau_steps(r.tau, setting),
            "violations": float(np.mean(late)),
            # of the late requests, the share refused at arrival (429), not queued and late
            "refused_share_of_violations": float(np.mean(r.status[late] == "rejected"))
            if late.any()
            else 0.0,
        }
    return out


def _quality(
    report: BenchReport,
    figures: dict,
    levels: dict[str, list[tuple[float, Workload, Any]]],
    args: argparse.Namespace,
    say: Callable[[str], None],
) -> dict[str, Any]:
    """Detector AP per (level, tau); renderer PSNR/SSIM per level."""
    from bench.serving_quality import detector_ap_levels, render_brownout_quality
    from bench.serving_workload import render_pool

    out: dict[str, Any] = {}
    if "detector" in levels and args.ap_frames > 0:
        say(f"detector AP per brownout level and tau ({args.ap_frames} held-out frames)")
        cheap = {level: m for level, _, m in levels["detector"]}
        ap = detector_ap_levels(cheap, args.ap_frames, TAUS)
        out["detector"] = ap
        table = Table(
            "detector accuracy per brownout level: share 1 - tau of frames on a grid of half-width "
            "`range_m` (car R40 AP, held-out sim set)",
            ["range_m", *(f"ap0.7@tau{t:g}" for t in TAUS), "ap0.5@tau0"],
        )
        for level, per_tau in ap.items():
            table.add(level, *(per_tau[t]["bev_0.7"] for t in TAUS), per_tau[0.0]["bev_0.5"])
        report.tables.append(table)
        figures["brownout_ap_by_level"] = {
            f"{lv:g}": {f"{t:g}": v for t, v in per_tau.items()} for lv, per_tau in ap.items()
        }
    if "gs_render" in levels:
        poses = render_pool([(160, 120), (320, 240)], poses=2)
        table = Table(
            "renderer brownout path vs full render (same poses)",
            ["level", "psnr_db", "ssim", "frames"],
        )
        q = {}
        for level, _, m in levels["gs_render"]:
            say(f"renderer quality at brownout level {level_label(level)}")
            q[level] = render_brownout_quality(m, poses)
            table.add(level_label(level), q[level]["psnr_db"], q[level]["ssim"], q[level]["frames"])
        out["gs_render"] = q
        report.tables.append(table)
        figures["brownout_render_quality_by_scale"] = {level_label(k): v for k, v in q.items()}
    return out
