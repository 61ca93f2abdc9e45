"""``robomr bench gsclo``: GSCLO with a map learned from the robot's sensors (arXiv 2504.13697).

A simulator drive is recorded once (:mod:`bench.gsclo_drive`: camera, lidar, poses). Each
policy then runs closed loop (:mod:`bench.gsclo_closed_loop`): its uploads teach its own
Gaussian map (lidar geometry, colours and refinement from uploaded frames), so L_t is what
*that* policy's map shows. Fading is drawn afresh for every seed (Rayleigh, or Rician with
``--rician-k``); energies are reported as median and inter-quartile range over the seeds, and
the ratios RoboMR / APO and content-only / APO per seed.

Policies: ``robomr`` (always upload), ``never``, ``content_only`` (largest L_t first until the
block budget holds, channel ignored, known L), ``threshold`` (upload when L_t > theta, theta
tuned closed loop to the largest value that keeps every block within budget), ``random`` (as
many uploads per block as ``apo_online``), ``apo_online`` (receding horizon ``--horizon`` with
forecasts), ``apo_online_h1`` (H = 1), ``apo_offline`` and ``exact`` (known future L and
gains per block). Quality at equal energy: APO online is run at several budgets (on
``--equal-energy-seeds`` seeds) and its operator-view PSNR/SSIM is interpolated (in log
energy) at each policy's energy, beside that policy's own.

Solver studies (:mod:`bench.gsclo_solvers`) use the discrepancies of the content-only run
(the same for every seed) with fresh fading per window.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np
import torch

from bench.gsclo_closed_loop import (
    MapReplay,
    RunResult,
    content_only,
    offline_apo,
    offline_exact,
    online_apo,
    progress_bar,
    random_count,
    run_policy,
    threshold,
)
from bench.gsclo_drive import record_drive
from bench.gsclo_solvers import coupled_study, power_study, solver_study
from bench.report import BenchReport, Table
from gs_render.lidar_map import LidarMapConfig
from gs_render.sensor_map import SensorMapConfig
from planning.gsclo import FadingConfig, LinkConfig, PayloadConfig, simulate_channel_gain

DESCRIPTION = (
    "GSCLO with a Gaussian map learned online from the robot's lidar and uploaded frames: "
    "energy (median, IQR over fading seeds) of APO online/offline, exact and five baselines; "
    "operator-view quality at equal energy; APO vs HiGHS (direct, cvxpy); coupled airtime"
)
POLICIES = ("robomr", "never", "content_only", "threshold", "random", "apo_online",
            "apo_online_h1", "apo_offline", "exact")  # fmt: skip


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",")]


def _size(text: str) -> tuple[int, int]:
    width, height = (int(v) for v in text.split("x"))
    if width < 16 or height < 16:
        raise argparse.ArgumentTypeError("camera size must be at least 16x16")
    return width, height


# The default run finishes in minutes on 2 cores; --full is the heavy variant (the issue's
# 150-frame drive at 160x120 with a 64-beam lidar, more equal-energy seeds and solver windows).
# An option given on the command line wins over either preset.
PRESETS = {
    "default": {"frames": 90, "size": (96, 72), "lidar_beams": 32, "equal_energy_seeds": 5,
                "equal_energy_budgets": [0.1, 0.2, 0.3, 0.45], "gap_windows": 10,
                "coupled_windows": 8, "power_windows": 8},
    "full": {"frames": 150, "size": (160, 120), "lidar_beams": 64, "equal_energy_seeds": 10,
             "equal_energy_budgets": [0.05, 0.1, 0.2, 0.25, 0.3, 0.35, 0.45], "gap_windows": 20,
             "coupled_windows": 20, "power_windows": 20},
}  # fmt: skip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--full", action="store_true", help="the heavy variant (PRESETS['full']; an hour or "
        "more on 2 loaded cores) instead of the few-minute default")  # fmt: skip
    add("--scenario", default="urban-clutter", help="simulator scenario of the drive")
    add("--frames", type=int, help="camera frames of the drive (10 Hz; default 90, full 150)")
    add("--window", type=int, default=30, help="frames per scheduling block (T)")
    add("--size", type=_size, help="camera WxH (L_t and operator view; 96x72, full 160x120)")
    add("--lidar-beams", type=int, choices=(16, 32, 64, 128), help="lidar beams (32, full 64)")
    add("--seeds", type=int, default=20, help="fading seeds (>= 20 for the reported figures)")
    add("--rician-k", type=float, default=0.0, help="Rician K-factor (0: Rayleigh fading)")
    add("--fidelity-budget", type=float, default=0.3, help="L_th: allowed block mean of 1 - SSIM")
    add("--horizon", type=int, default=30, help="H of apo_online (frames, <= window)")
    add("--refine-iterations", type=int, default=2, help="photometric steps per block update")
    add("--equal-energy-seeds", type=int, help="seeds of the equal-energy sweep (5, full 10)")
    add("--equal-energy-budgets", type=lambda t: [float(v) for v in t.split(",")],
        help="L_th values of APO online's sweep (0.1,0.2,0.3,0.45; full 7 values)")  # fmt: skip
    add("--timing-sizes", type=_ints, default=[12, 30, 100, 300], help="T of the solver study")
    add("--gap-windows", type=int, help="windows per T in the solver study (10, full 20)")
    add("--coupled-windows", type=int, help="12-frame windows, airtime study (8, full 20)")
    add("--power-windows", type=int, help="12-frame windows, average-power study (8, full 20)")
    add("--repeats", type=int, default=3, help="timing repeats per window (median)")
    add("--threads", type=int, default=1, help="torch/numba threads (1: best on shared cores)")
    add("--workers", type=int, default=1, help="processes for the per-seed runs (spawned)")
    add("--progress", action="store_true", help="progress bars")


def apply_preset(args: argparse.Namespace) -> argparse.Namespace:
    """Fills the options left unset from ``PRESETS`` (``--full`` picks the heavy one)."""
    preset = PRESETS["full" if getattr(args, "full", False) else "default"]
    for name, value in preset.items():
        if getattr(args, name, None) is None:
            setattr(args, name, value)
    return args


def _always(ctx, block, r) -> np.ndarray:
    return np.ones(len(r.discrepancy), bool)


def _never(ctx, block, r) -> np.ndarray:
    return np.zeros(len(r.discrepancy), bool)


_WORKER: dict = {}


def _init_worker(replay, link, payload) -> None:
    torch.set_num_threads(1)
    _WORKER.update(replay=replay, link=link, payload=payload)


def _seed_policies(job: tuple) -> dict[str, RunResult]:
    """The channel-aware policies on one fading seed (in a worker, or in this process)."""
    seed, gain, budget, horizon = job
    replay, link, payload = _WORKER["replay"], _WORKER["link"], _WORKER["payload"]
    out = {}
    for name, policy in (("apo_online", online_apo(horizon)), ("apo_online_h1", online_apo(1)),
                         ("apo_offline", offline_apo), ("exact", offline_exact)):  # fmt: skip
        out[name] = run_policy(replay, policy, gain, budget, link, payload, seed)
    counts = out["apo_online"].per_block_uploads
    out["random"] = run_policy(replay, random_count, gain, budget, link, payload, seed, counts)
    return out


def _apo_at(job: tuple) -> RunResult:
    seed, gain, budget, horizon = job
    w = _WORKER
    return run_policy(w["replay"], online_apo(horizon), gain, budget, w["link"], w["payload"], seed)


def _map_seeds(replay, jobs, workers, link, payload, fn=None):
    """``fn`` (default: the channel-aware policies) over ``jobs``, in ``workers`` spawned
    processes (each gets the replay without its scans and cache) or in this one."""
    fn = fn or _seed_policies
    if workers <= 1:
        _init_worker(replay, link, payload)
        yield from map(fn, jobs)
        return
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")  # fork is unsafe with numba's and torch's pools
    with ctx.Pool(workers, _init_worker, (replay.light(), link, payload)) as pool:
        yield from pool.imap(fn, jobs)


def _tune_threshold(replay, gain, budget, link, payload) -> tuple[float, int]:
    """Largest theta (bisection, 8 closed-loop runs) whose run keeps every block in budget."""
    low, high, runs = 0.0, 1.0, 0
    for _ in range(8):
        mid = 0.5 * (low + high)
        result = run_policy(replay, threshold(mid), gain, budget, link, payload, seed=0)
        runs += 1
        low, high = (mid, high) if result.blocks_over_budget == 0 else (low, mid)
    return low, runs


def _stats(values: list[float]) -> tuple[float, float, float]:
    q1, med, q3 = np.percentile(values, [25, 50, 75])
    return float(med), float(q1), float(q3)


def run(args: argparse.Namespace) -> BenchReport:
    args = apply_preset(args)
    if args.window < 2 or args.frames < args.window or not 1 <= args.horizon <= args.window:
        raise ValueError("need 2 <= window <= frames and 1 <= horizon <= window")
    torch.set_num_threads(max(1, args.threads))
    start = time.perf_counter()
    link, payload = LinkConfig(), PayloadConfig()
    fading = FadingConfig(rician_k=args.rician_k)
    width, height = args.size
    drive = record_drive(args.scenario, args.frames, width_px=width, height_px=height,
                         lidar_beams=args.lidar_beams, progress=args.progress)  # fmt: skip
    map_cfg = SensorMapConfig(refine_iterations=args.refine_iterations, lidar=LidarMapConfig())
    replay = MapReplay(drive, map_cfg, args.window, progress=args.progress)
    budget = args.fidelity_budget
    theta, tuning_runs = _tune_threshold(
        replay, simulate_channel_gain(drive.distance_m, fading, 10_000), budget, link, payload
    )
    blind = {
        "robomr": _always,
        "never": _never,
        "content_only": content_only,
        "threshold": threshold(theta),
    }
    results: dict[str, list[RunResult]] = {name: [] for name in POLICIES}
    gains = [simulate_channel_gain(drive.distance_m, fading, s) for s in range(args.seeds)]
    bar = progress_bar(len(POLICIES) * args.seeds, args.progress)
    # Channel-blind policies first, policy-major: they repeat their uploads across seeds, so
    # their maps come from the replay's cache.
    for name, policy in blind.items():
        for seed, gain in enumerate(gains):
            results[name].append(run_policy(replay, policy, gain, budget, link, payload, seed))
            bar.update()
    jobs = [(seed, gain, budget, args.horizon) for seed, gain in enumerate(gains)]
    for per_seed in _map_seeds(replay, jobs, args.workers, link, payload):
        for name, result in per_seed.items():
            results[name].append(result)
        bar.update(len(per_seed))
    bar.close()
    report = BenchReport("gsclo", {**vars(args), "theta": theta, "source": drive.source})
    report.settings.pop("func", None)
    report.settings.pop("bench_module", None)
    report.settings.pop("json", None)
    _energy_tables(report, results, args)
    _map_ablation(report, replay, results, gains[0], budget, link, payload, args)
    _equal_energy(report, replay, results, args, fading, link, payload)
    disc, dist = results["content_only"][0].discrepancy, drive.distance_m
    study_budget = min(budget, 0.5 * float(np.mean(disc)))
    table, overall, gap_by_t, speed_by_t = solver_study(
        disc, dist, args.timing_sizes, args.gap_windows, args.repeats, study_budget,
        fading, link, payload,
    )  # fmt: skip
    report.tables.append(table)
    report.figures["apo_gap_median"] = overall["apo_gap_median_pct"]
    report.figures["apo_gap_median_per_T"] = {str(k): v for k, v in gap_by_t.items()}
    report.figures["apo_speedup_vs_highs_direct"] = {str(k): v for k, v in speed_by_t.items()}
    report.tables.append(
        coupled_study(
            disc,
            dist,
            args.coupled_windows,
            study_budget,
            [2.0, 0.3, 0.15, 0.08],
            fading,
            link,
            payload,
        )
    )
    shares, circuit_powers = [2.0, 0.8, 0.5], [0.0, 0.05]
    power = power_study(
        disc, dist, args.power_windows, study_budget, shares, circuit_powers, fading, link,
        payload,
    )  # fmt: skip
    report.tables.append(power)
    report.notes += [
        f"map: {drive.source}; {replay.renders_computed} frames rendered in "
        f"{time.perf_counter() - start:.0f} s; threshold theta={theta:.4f} tuned in "
        f"{tuning_runs} closed-loop runs",
        "operator view: an uploaded frame counts as the camera image itself (JPEG loss "
        "ignored); a pose-only frame shows the render of the map as it stood at its block",
        "apo_gap_median is in percent; apo_speedup_vs_highs_direct = HiGHS (scipy.optimize."
        "milp) time / APO time, medians per T",
        "energy_ratio_*_over_apo: APO = apo_online (what the node runs); the *_apo_offline "
        "keys use the known-future APO",
    ]
    return report


def _energy_tables(report: BenchReport, results: dict, args: argparse.Namespace) -> None:
    fading = f"Rician K={args.rician_k}" if args.rician_k else "Rayleigh"
    table = Table(
        f"energy over {args.seeds} fading seeds ({fading}), "
        f"L_th={args.fidelity_budget}, blocks of {args.window}",
        ["policy", "energy_median_J", "energy_q1_J", "energy_q3_J", "vs_apo_online_median",
         "upload_rate", "blocks_over_budget", "deadline_misses", "psnr_seen_db", "ssim_seen"],
    )  # fmt: skip
    apo = np.array([r.energy_j for r in results["apo_online"]])
    for name in POLICIES:
        runs = results[name]
        energy = np.array([r.energy_j for r in runs])
        med, q1, q3 = _stats(list(energy))
        table.add(
            name, med, q1, q3, float(np.median(energy / apo)),
            float(np.mean([r.upload.mean() for r in runs])),
            int(sum(r.blocks_over_budget for r in runs)),
            int(sum(r.deadline_misses for r in runs)),
            float(np.median([r.psnr_seen_db for r in runs])),
            float(np.median([r.ssim_seen for r in runs])),
        )  # fmt: skip
    report.tables.append(table)
    ratios = report.figures
    for ref in ("apo_online", "apo_offline"):
        base = np.array([r.energy_j for r in results[ref]])
        suffix = "apo" if ref == "apo_online" else "apo_offline"
        for name, key in (("robomr", "robomr"), ("content_only", "content")):
            per_seed = np.array([r.energy_j for r in results[name]]) / base
            med, q1, q3 = _stats(list(per_seed))
            ratios[f"energy_ratio_{key}_over_{suffix}_median"] = med
            ratios[f"energy_ratio_{key}_over_{suffix}_iqr"] = [q1, q3]
    on_time = np.array([r.energy_on_time_j for r in results["robomr"]]) / apo
    ratios["energy_ratio_robomr_on_time_over_apo_median"] = float(np.median(on_time))
    ratios["energy_ratio_apo_online_h1_over_apo_median"] = float(
        np.median(np.array([r.energy_j for r in results["apo_online_h1"]]) / apo)
    )
    ratios["energy_ratio_apo_online_over_apo_offline_median"] = float(
        np.median(apo / np.array([r.energy_j for r in results["apo_offline"]]))
    )
    ratios["seeds"] = args.seeds
    for key in ("energy_ratio_robomr_over_apo_median", "energy_ratio_content_over_apo_median"):
        report.ratios[key] = ratios[key]


def _map_ablation(report, replay, results, gain, budget, link, payload, args) -> None:
    """Which part of the map learning does the work: content_only (channel-blind, so one run
    per variant) with the photometric refinement off, and with neither colours nor refinement
    learned after the first block (uploads then teach nothing)."""
    table = Table(
        "map ablation, content_only policy: what the uploads teach the map",
        ["map", "mean_L", "upload_rate", "ssim_seen", "psnr_seen_db", "blocks_over_budget"],
    )
    variants = {
        f"colour + sky + {args.refine_iterations} refinement steps per block": results[
            "content_only"
        ][0],
    }
    cfg = replay.config
    no_refine = MapReplay(replay.drive, replace(cfg, refine_iterations=0), replay.window,
                          geometry=replay.geometry)  # fmt: skip
    variants["colour + sky, no refinement"] = run_policy(
        no_refine, content_only, gain, budget, link, payload, 0
    )
    for name, r in variants.items():
        table.add(name, float(r.discrepancy.mean()), float(r.upload.mean()), r.ssim_seen,
                  r.psnr_seen_db, r.blocks_over_budget)  # fmt: skip
    report.tables.append(table)


def _equal_energy(report, replay, results, args, fading, link, payload) -> None:
    """APO online's operator quality interpolated at each policy's energy (log scale), per
    seed; the per-seed differences (APO minus the policy) as median and IQR over seeds."""
    seeds = min(args.equal_energy_seeds, args.seeds)
    table = Table(
        f"operator view at equal energy ({seeds} seeds): APO online interpolated at each "
        f"policy's energy (budget sweep {args.equal_energy_budgets}); differences APO - policy "
        "per seed, median [IQR]; in_sweep = seeds whose energy lies inside APO's sweep",
        ["policy", "energy_J", "psnr_db", "ssim", "apo_psnr_db_same_energy",
         "apo_ssim_same_energy", "d_psnr_db", "d_psnr_iqr", "d_ssim", "d_ssim_iqr",
         "in_sweep"],
    )  # fmt: skip
    keys = ("psnr", "ssim", "apo_psnr", "apo_ssim", "energy", "inside")
    per_policy: dict[str, dict[str, list[float]]] = {n: {k: [] for k in keys} for n in POLICIES}
    jobs = [
        (seed, simulate_channel_gain(replay.drive.distance_m, fading, seed), b, args.horizon)
        for seed in range(seeds)
        for b in args.equal_energy_budgets
    ]
    runs = list(_map_seeds(replay, jobs, args.workers, link, payload, _apo_at))
    per_budget = len(args.equal_energy_budgets)
    for seed in range(seeds):
        sweep = sorted(runs[seed * per_budget : (seed + 1) * per_budget], key=lambda r: r.energy_j)
        log_e = np.log([max(r.energy_j, 1e-30) for r in sweep])
        for name in POLICIES:
            r = results[name][seed]
            e = np.log(max(r.energy_j, 1e-30))
            p = per_policy[name]
            p["energy"].append(r.energy_j)
            p["psnr"].append(min(r.psnr_seen_db, 99.0))
            p["ssim"].append(r.ssim_seen)
            p["apo_psnr"].append(
                float(np.interp(e, log_e, [min(s.psnr_seen_db, 99.0) for s in sweep]))
            )
            p["apo_ssim"].append(float(np.interp(e, log_e, [s.ssim_seen for s in sweep])))
            p["inside"].append(float(log_e[0] <= e <= log_e[-1]))
    psnr_out, ssim_out = {}, {}
    for name, p in per_policy.items():
        row = {k: float(np.median(v)) for k, v in p.items()}
        d_psnr = np.array(p["apo_psnr"]) - np.array(p["psnr"])
        d_ssim = np.array(p["apo_ssim"]) - np.array(p["ssim"])
        dp, dp1, dp3 = _stats(list(d_psnr))
        ds, ds1, ds3 = _stats(list(d_ssim))
        inside = int(sum(p["inside"]))
        table.add(name, row["energy"], row["psnr"], row["ssim"], row["apo_psnr"],
                  row["apo_ssim"], dp, f"{dp1:.2f}..{dp3:.2f}", ds, f"{ds1:.3f}..{ds3:.3f}",
                  f"{inside}/{seeds}")  # fmt: skip
        common = {"seeds": seeds, "seeds_in_sweep": inside}
        psnr_out[name] = {
            "policy": row["psnr"],
            "apo_online_same_energy": row["apo_psnr"],
            "difference_median": dp,
            "difference_iqr": [dp1, dp3],
            **common,
        }
        ssim_out[name] = {
            "policy": row["ssim"],
            "apo_online_same_energy": row["apo_ssim"],
            "difference_median": ds,
            "difference_iqr": [ds1, ds3],
            **common,
        }
    report.tables.append(table)
    report.figures["psnr_at_equal_energy"] = psnr_out
    report.figures["ssim_at_equal_energy"] = ssim_out
    report.notes.append(
        "equal energy: APO online's quality is clamped to its sweep's ends outside the swept "
        "energies (in_sweep counts the seeds where it is not); PSNR is capped at 99 dB (all "
        "frames uploaded gives infinity)"
    )
