"""Statistics of ``robomr bench croa``: means with percentile-bootstrap 95% confidence
intervals, paired per-scene differences, and the aggregation of episode records into the
benchmark's figures (budget sweep, MAD early stop, ablation, cycle timing).

Bootstrap: resample the scenes with replacement ``BOOTSTRAP`` times (seeded), take the 2.5th
and 97.5th percentiles of the resampled means. Paired comparisons resample the per-scene
differences, so a method that wins on the same scenes shows a tight interval even when the
scene-to-scene spread is wide.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

BOOTSTRAP = 2000
Records = dict[str, list[dict[str, Any]]]  # method -> one episode record per scene, same order


def mean_ci(values: np.ndarray, seed: int = 0) -> tuple[float, list[float]]:
    """Mean and [lo, hi] 95% percentile-bootstrap interval (NaN for no values)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return float("nan"), [float("nan"), float("nan")]
    idx = np.random.default_rng(seed).integers(0, len(v), (BOOTSTRAP, len(v)))
    means = v[idx].mean(axis=1)
    return float(v.mean()), [float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))]


def paired(a: np.ndarray, b: np.ndarray, tie: float = 1e-3) -> dict[str, Any]:
    """a - b per scene: mean with CI, and how often a is lower (wins), equal within ``tie``,
    or higher (losses)."""
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    mean, ci = mean_ci(d)
    return {"diff_mean": mean, "diff_ci95": ci, "wins": int(np.sum(d < -tie)),
            "ties": int(np.sum(np.abs(d) <= tie)), "losses": int(np.sum(d > tie))}  # fmt: skip


def budget_figures(records: Records, budget: int) -> dict[str, dict[str, Any]]:
    """Per method after ``budget`` plans: occlusion mean/CI, centre error, detection rate,
    path length and collisions (scenes with any collision up to then)."""
    out = {}
    for method, eps in records.items():
        after = [e["after"][budget] for e in eps]
        occ, ci = mean_ci(np.array([a["occ"] for a in after]))
        err, err_ci = mean_ci(np.array([a["error"] for a in after]))
        out[method] = {
            "occlusion_mean": occ, "occlusion_ci95": ci, "center_error_mean": err,
            "center_error_ci95": err_ci,
            "detected_fraction": float(np.mean([a["detected"] for a in after])),
            "points_mean": float(np.mean([a["points"] for a in after])),
            "path_m_mean": float(np.mean([a["path_m"] for a in after])),
            "collisions": int(sum(a["collided"] for a in after)),
        }  # fmt: skip
    return out


def mad_figures(records: Records, threshold: str | None = None) -> dict[str, dict[str, Any]]:
    """Per method under the MAD early stop (bench/croa_sim.py): plans, path, time to the
    confident detection, final occlusion and centre error, how often it was reached
    (``threshold``: one of the swept stop thresholds instead of the main one)."""
    out = {}
    for method, eps in records.items():
        mad = [e["mad"] if threshold is None else e["mad_sweep"][threshold] for e in eps]
        row: dict[str, Any] = {}
        for key, name in (("plans", "plans"), ("path_m", "path_m"), ("occ", "final_occlusion"),
                          ("error", "center_error")):  # fmt: skip
            row[f"{name}_mean"], row[f"{name}_ci95"] = mean_ci(np.array([m[key] for m in mad]))
        times = np.array([m["time_s"] if m["confident"] else np.nan for m in mad], dtype=float)
        row["time_s_mean"], row["time_s_ci95"] = mean_ci(times)
        row["confident_fraction"] = float(np.mean([m["confident"] for m in mad]))
        row["collisions"] = int(sum(m["collided"] for m in mad))
        out[method] = row
    return out


def ablation_figures(records: Records) -> dict[str, Any]:
    """What the CCP loop does from its start, per planning cycle and per scene (the exact
    occlusion along the trajectory, report spacing, on the perceived obstacles).

    For every CROA variant with a CCP loop: per scene, the mean over its cycles of (result -
    start) of the loop whose result became the plan; ``ccp_improves_fraction`` is the share of
    scenes where that mean is below 0 (the CCP lowered the exact occlusion below its start);
    ``ccp_loop_improves_fraction`` the same for the loops' own results (they differ only where
    ``ScpConfig.keep_better_start`` kept a start).
    """
    out: dict[str, Any] = {}
    for method, eps in records.items():
        per_scene, per_start, loop_scene = [], {}, []
        for e in eps:
            deltas, loop_deltas = [], []
            for cycle in e["cycles"]:
                for s in cycle["starts"]:
                    d = s["result_occlusion"] - s["start_occlusion"]
                    per_start.setdefault(s["name"], []).append(d)
                    if s["chosen"]:
                        deltas.append(d)
                        loop = s.get("loop_occlusion", float("nan"))
                        loop_deltas.append((s["result_occlusion"] if math.isnan(loop) else loop)
                                           - s["start_occlusion"])  # fmt: skip
            if deltas:
                per_scene.append(float(np.mean(deltas)))
                loop_scene.append(float(np.mean(loop_deltas)))
        if not per_scene or all(not s["solves"] for e in eps for c in e["cycles"]
                                for s in c["starts"]):  # fmt: skip
            continue
        d = np.array(per_scene)
        mean, ci = mean_ci(d)
        out[method] = {
            "ccp_improves_fraction": float(np.mean(d < 0.0)),
            # the loops' own results (before ScpConfig.keep_better_start; equal without it)
            "ccp_loop_improves_fraction": float(np.mean(np.array(loop_scene) < 0.0)),
            "ccp_worsens_fraction": float(np.mean(d > 0.0)),
            "ccp_delta_mean": mean, "ccp_delta_ci95": ci, "scenes": len(d),
            "per_start_delta_mean": {k: float(np.mean(v)) for k, v in per_start.items()},
            "per_start_improves_fraction": {k: float(np.mean(np.array(v) < 0.0))
                                            for k, v in per_start.items()},
        }  # fmt: skip
    return out


def timing_figures(records: Records) -> dict[str, dict[str, float]]:
    """Per method, over every planning cycle: the perception update (tracker and world model,
    ms), building the observation, the plan and its convex solves; p50 and p90."""
    out = {}
    for method, eps in records.items():
        t = [c for e in eps for c in e["timing"]]
        if not t:
            continue
        cycle = np.array([c["update_ms"] + c["observe_ms"] + c["plan_ms"] for c in t])
        row = {"cycle_ms_p50": float(np.percentile(cycle, 50)),
               "cycle_ms_p90": float(np.percentile(cycle, 90))}  # fmt: skip
        for key in ("update_ms", "observe_ms", "plan_ms", "solve_ms", "solves"):
            row[f"{key}_p50"] = float(np.percentile([c[key] for c in t], 50))
        cpu = np.array([c["cycle_cpu_ms"] for c in t if "cycle_cpu_ms" in c])
        if len(cpu):
            row["cycle_cpu_ms_p50"] = float(np.percentile(cpu, 50))
            row["cycle_cpu_ms_p90"] = float(np.percentile(cpu, 90))
        out[method] = row
    return out
