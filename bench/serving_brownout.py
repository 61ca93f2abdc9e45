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
  by its deadline is offered the brownout path before it is refused.

Reported per configuration: SLO violations (rejected requests count), their reduction against
brownout off, 1 - mean(on) / mean(off) over seeds with a paired bootstrap 95% CI (seeds
resampled), the time-weighted mean tau, the share of answers that took the brownout path and
the accuracy cost at that share (detector: BEV AP@0.7 lost). The headline
(``brownout_violation_reduction``) is the first value of each list: the service's defaults
(24 m / half resolution, 5 s, x0.8, no rescue). A burst-shape sweep (length, height) repeats
the headline and the best configuration.
"""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Callable
from typing import Any

import numpy as np

from bench.report import BenchReport, Table
from bench.serving_sim import Workload, run_one
from offload.loadgen import bursty_arrivals

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
) -> np.ndarray:
    """[seeds, 4]: violation share, goodput (req/s), mean tau, share of the answered requests
    served on the brownout path, per seed (the same arrivals per seed in every configuration)."""
    duration = max(args.brownout_duration, 16 * shape["on_s"])  # at least four on/off cycles
    rows = []
    for seed in range(args.brownout_seeds):
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
        )
        ok = r.status == "ok"
        cheap = float(np.mean(r.path[ok] == "brownout")) if ok.any() else 0.0
        rows.append((1 - r.attainment(w.slo_s), r.goodput_hz(w.slo_s), r.mean_tau(), cheap))
    return np.asarray(rows)


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


def _cost_at(quality: dict[str, Any], name: str, level: float, tau: float) -> float:
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
            "period_s",
            "factor",
            "rescue",
            "violations_on",
            "reduction",
            "ci95",
            "mean_tau",
            "cheap_share",
            "accuracy_cost",
        ],
    )
    main = Table(
        "brownout at the service's defaults (first level, 5 s, x0.8) and at the best swept "
        "configuration, same arrivals and seeds",
        ["model", "config", "violations", "goodput_hz", "mean_tau", "reduction", "ci95"],
    )
    shapes = Table(
        "brownout by burst shape (off phase 3x the burst): headline and best configuration",
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
    for key in (
        "brownout_violation_reduction",
        "brownout_violation_reduction_ci",
        "brownout_config",
        "brownout_best",
        "brownout_grid",
        "brownout_sweep",
    ):
        figures.setdefault(key, {})
    for w in workloads:
        if w.name not in levels:
            continue
        say(f"{w.name}: brownout grid")
        off = _runs(w, "bucket", False, args, BASE_SHAPE)
        none_off = _runs(w, "none", False, args, BASE_SHAPE)
        rows = []
        for (level, lw, _), period, factor, rescue in itertools.product(
            levels[w.name], args.brownout_periods_s, args.brownout_factors, _rescues(args)
        ):
            on = _runs(lw, "bucket", True, args, BASE_SHAPE, period, factor, rescue)
            red, lo, hi = reduction_ci(off[:, 0], on[:, 0])
            tau, cheap = float(on[:, 2].mean()), float(on[:, 3].mean())
            speedup = lw.fits["full"].predict(float(np.median(lw.costs["full"])), 1) / max(
                lw.fits["brownout"].predict(float(np.median(lw.costs["brownout"])), 1), 1e-9
            )
            cost = _cost_at(quality, w.name, level, 1.0 - cheap)  # what the robot gets
            grid.add(
                w.name,
                level,
                speedup,
                period,
                factor,
                "on" if rescue else "off",
                float(on[:, 0].mean()),
                red,
                f"{lo:.2f}-{hi:.2f}",
                tau,
                cheap,
                cost,
            )
            row = {
                "level": level,
                "speedup": speedup,
                "period_s": period,
                "factor": factor,
                "rescue": rescue,
                "violations_on": float(on[:, 0].mean()),
                "reduction": red,
                "ci95": [lo, hi],
                "mean_tau": tau,
                "cheap_share": cheap,
                "accuracy_cost": cost,
            }
            rows.append((row, lw, on))
        figures["brownout_grid"][w.name] = [r for r, _, _ in rows]
        head, best = rows[0], max(rows, key=lambda r: r[0]["reduction"])
        figures["brownout_violation_reduction"][w.name] = head[0]["reduction"]
        figures["brownout_violation_reduction_ci"][w.name] = head[0]["ci95"]
        figures["brownout_config"][w.name] = head[0]
        figures["brownout_best"][w.name] = best[0]
        main.add(w.name, "off", float(off[:, 0].mean()), float(off[:, 1].mean()), 1.0, 0.0, "-")
        main.add(
            w.name,
            "no batching, off",
            float(none_off[:, 0].mean()),
            float(none_off[:, 1].mean()),
            1.0,
            "-",
            "-",
        )
        for label, (row, _, on) in (("defaults", head), ("best", best)):
            config = f"{label}: {row['level']:g}, {row['period_s']:g} s, x{row['factor']:g}" + (
                ", rescue" if row["rescue"] else ""
            )
            main.add(
                w.name,
                config,
                float(on[:, 0].mean()),
                float(on[:, 1].mean()),
                row["mean_tau"],
                row["reduction"],
                "{:.2f}-{:.2f}".format(*row["ci95"]),
            )
        report.ratios[f"{w.name}: SLO violations cut by brownout (defaults, bucket)"] = head[0][
            "reduction"
        ]
        report.ratios[f"{w.name}: SLO violations cut by brownout (best swept setting)"] = best[0][
            "reduction"
        ]
        report.ratios[f"{w.name}: violations, bucket + brownout vs no batching, no brownout"] = (
            1.0 - head[2][:, 0].mean() / max(none_off[:, 0].mean(), 1e-12)
        )
        for label, (row, lw, _) in (("defaults", head), ("best", best)):
            for burst_s, height in itertools.product(args.brownout_bursts_s, (2.0, 3.0)):
                shape = {"on_s": burst_s, "off_s": 3 * burst_s, "burst_factor": height}
                o = _runs(w, "bucket", False, args, shape)
                n = _runs(
                    lw, "bucket", True, args, shape, row["period_s"], row["factor"], row["rescue"]
                )
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
    report.tables += [main, grid, shapes]
    det = figures["brownout_config"].get("detector")
    if det is not None and "detector" in quality:
        figures["brownout_ap_cost"] = det["accuracy_cost"]
        figures["brownout_ap_by_tau"] = {
            f"{t:g}": quality["detector"][det["level"]][t] for t in TAUS
        }
        report.notes.append(
            f"brownout_ap_cost: BEV AP@0.7 lost at the bursty run's mean tau "
            f"{det['mean_tau']:.2f} on the {det['level']:g} m path: {det['accuracy_cost']:.4f}"
        )
    ren = figures["brownout_config"].get("gs_render")
    if ren is not None and "gs_render" in quality:
        figures["brownout_render_quality"] = quality["gs_render"][ren["level"]]


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
            ["scale", "psnr_db", "ssim", "frames"],
        )
        q = {}
        for level, _, m in levels["gs_render"]:
            say(f"renderer quality at 1/{level:g} resolution")
            q[level] = render_brownout_quality(m, poses)
            table.add(level, q[level]["psnr_db"], q[level]["ssim"], q[level]["frames"])
        out["gs_render"] = q
        report.tables.append(table)
        figures["brownout_render_quality_by_scale"] = {f"{k:g}": v for k, v in q.items()}
    return out
