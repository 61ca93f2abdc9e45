"""``robomr bench croa``: CROA (arXiv 2412.18453) against its baselines in the simulator.

For each seeded scene of a scenario (default ``occluded-target`` seeds 0..N-1, moving vehicles
removed: the simulator's movers drive through the robot and every planner treats obstacles as
static) and each method (croa, stay, straight, greedy_nbv, obca_offset), the MAD loop runs with
the simulator's robot (planning/croa/sim_adapter.py): measure, decide, plan, then drive the
plan with ``sim.BicycleRobot`` under ``sim.PurePursuit`` at 20 Hz until it comes to rest, and
plan again from the real state, for at most ``--cycles`` plans. The MAD confidence is the
detector's score when a model is loaded, else the true visibility (1 - occlusion).

Per method: final occlusion ratio (sim ground truth), lidar points on the target in a scan at
the final pose, the detector on that scan (detection rate; centre and yaw-mod-pi errors of the
detected target), path length, collisions (exact footprint-box distance < 0 at any 20 Hz step
of the driven path; must be 0) and wall time per plan call. A second table gives every method
the same budget (``--budget-cycles`` plans, no early stop) and reports the same measures at its
end. Ratios CROA / baseline are of numbers measured in the same run.
"""

from __future__ import annotations

import argparse
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import cache
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from bench.report import BenchReport, Table
from perception.config import DEFAULT_MODEL_PATH
from planning.croa import (
    CroaConfig,
    CroaPlanner,
    GreedyNbvPlanner,
    MadAction,
    MadConfig,
    MadController,
    ObcaOffsetPlanner,
    Planner,
    StayPlanner,
    StraightPlanner,  # fmt: skip
)
from planning.croa.scenes import random_scene
from planning.croa.sim_adapter import SimTask, detection_error, planner_robot, run_sim_episode
from sim import Lidar, LidarConfig, RobotConfig, generate_scene
from sim import RobotState as SimRobotState

DESCRIPTION = (
    "CROA vs stay/straight/greedy_nbv/obca_offset in the simulator's closed loop: final "
    "occlusion, points on the target, detection error/rate, path length, collisions, plan time"
)
METHODS = ("croa", "stay", "straight", "greedy_nbv", "obca_offset")


def _positive(value: str) -> int:
    if int(value) < 1:
        raise argparse.ArgumentTypeError(f"{value} must be >= 1")
    return int(value)


def _unit(value: str) -> float:
    if not 0.0 <= float(value) <= 1.0:
        raise argparse.ArgumentTypeError(f"{value} must be in [0, 1]")
    return float(value)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scenes", type=_positive, default=50, help="scene seeds 0..N-1")
    parser.add_argument("--cycles", type=_positive, default=6, help="MAD plan cycles at most")
    parser.add_argument("--workers", type=_positive, default=1, help="worker processes")
    parser.add_argument("--scenario", default="occluded-target", help="scenario name or file")
    parser.add_argument("--beams", type=int, default=32, choices=(16, 32, 64, 128),
                        help="lidar beams of the evaluation scans")  # fmt: skip
    parser.add_argument("--detector", type=Path, default=DEFAULT_MODEL_PATH,
                        help="detector model (.pt); metrics skipped if missing")  # fmt: skip
    parser.add_argument("--min-score", type=_unit, default=0.3, help="detection score threshold")
    parser.add_argument("--plot", type=Path, metavar="PNG", help="figure of the first scene")
    parser.add_argument(
        "--budget-cycles",
        type=int,
        default=2,
        help="also run every method for exactly this many plans without the "
        "MAD early stop (equal-budget comparison); 0: skip",
    )


@dataclass(frozen=True)
class _Settings:
    scenario: str
    cycles: int
    budget_cycles: int
    beams: int
    detector: str | None  # model path, None: no detector
    min_score: float


@cache
def _planners() -> dict[str, Planner]:
    """One set per process, each planned once so that cvxpy's canonicalization (about a
    second per program) is not in the timed plan calls."""
    config = CroaConfig(robot=planner_robot(RobotConfig()))
    made = [CroaPlanner(config), StayPlanner(config), StraightPlanner(config),
            GreedyNbvPlanner(config), ObcaOffsetPlanner(config)]  # fmt: skip
    warm_up = random_scene(0, config=config).observation()
    for planner in made:
        planner.plan(warm_up)
    return {p.name: p for p in made}


@cache
def _model(path: str) -> Any:
    from perception.checkpoint import load_detector  # torch: only when a model is used

    return load_detector(path, "cpu")


def _scene(seed: int, s: _Settings) -> dict[str, Any]:
    """Every method on one scene: per-method metrics plus what the figure needs."""
    task = SimTask.from_scene(generate_scene(s.scenario, seed).static())
    lidar = Lidar(LidarConfig(beams=s.beams))
    model = None if s.detector is None else _model(s.detector)

    def detector(*stream: int) -> Any:
        """The detector on a fresh scan per call, with its own noise stream per episode so
        that no episode's scans depend on which episodes ran before it."""
        rng = np.random.default_rng([seed, *stream])

        def detect(state: SimRobotState) -> Any:
            return task.detect(state, model, lidar, s.min_score, rng)

        return detect if model is not None else None

    start = task.scan(task.start(), lidar, None)
    out: dict[str, Any] = {"start_occ": task.measure_occlusion(task.start()),
                           "start_points": task.points_on_target(start), "methods": {}}  # fmt: skip
    for index, name in enumerate(METHODS):
        ep = run_sim_episode(_planners()[name], task, s.cycles,
                             MadController(MadConfig(max_cycles=s.cycles)),
                             detector(3, index))  # fmt: skip
        final = SimRobotState(*ep.states[-1, :3])
        scan = task.scan(final, lidar, np.random.default_rng([seed, 1]))
        hit = scan.object_index == task.scene.target_index
        found = None if model is None else task.detect_in_scan(scan, final, model, s.min_score)
        out["methods"][name] = {
            "occ": float(ep.occlusion[-1]), "occ1": float(ep.occlusion[min(1, len(ep.statuses))]),
            "points": int(np.count_nonzero(hit)),
            "error": None if found is None else detection_error(found.box, task.target_box),
            "done": ep.done is MadAction.DONE_DETECTED, "plans": len(ep.statuses),
            "path_m": ep.path_length_m,
            "clearance_m": ep.min_clearance_m, "plan_ms": ep.plan_ms.tolist(),
            "states": ep.states, "target_points": _to_world(task, final, scan.points[hit]),
        }  # fmt: skip
        if s.budget_cycles > 0:
            budget = _budget_episode(name, task, lidar, seed, s, model, detector(4, index))
            out["methods"][name]["budget"] = budget
    return out


def _budget_episode(
    name: str,
    task: SimTask,
    lidar: Lidar,
    seed: int,
    s: _Settings,
    model: Any,
    detect: Any,
) -> dict[str, Any]:
    """Exactly ``budget_cycles`` plans (no early stop: max_occlusion 0, an unreachable
    confidence), so every method gets the same planning budget; the detector (when loaded)
    aims each plan and scores the final scan, as in the MAD episodes."""
    never_done = MadConfig(max_cycles=s.budget_cycles, max_occlusion=0.0, min_confidence=1.0)
    ep = run_sim_episode(_planners()[name], task, s.budget_cycles, MadController(never_done),
                         detect)  # fmt: skip
    final = SimRobotState(*ep.states[-1, :3])
    scan = task.scan(final, lidar, np.random.default_rng([seed, 2]))
    found = None if model is None else task.detect_in_scan(scan, final, model, s.min_score)
    return {
        "occ": float(ep.occlusion[-1]),
        "path_m": ep.path_length_m,
        "points": int(np.count_nonzero(scan.object_index == task.scene.target_index)),
        "clearance_m": ep.min_clearance_m,
        "error": None if found is None else detection_error(found.box, task.target_box),
    }


def _to_world(task: SimTask, state: SimRobotState, points: np.ndarray) -> np.ndarray:
    """Scan points [N, >=3] in the lidar frame of ``state`` -> world [N, 3]."""
    T = task.T_world_lidar(state)
    return points[:, :3] @ T[:3, :3].T + T[:3, 3]


def _run_all(settings: _Settings, scenes: int, workers: int) -> list[dict[str, Any]]:
    seeds = range(scenes)
    if workers == 1:
        return [_scene(seed, settings) for seed in seeds]
    # spawn, not fork: torch and open3d thread pools do not survive a fork
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        return list(pool.map(_scene, seeds, [settings] * scenes))


def run(args: argparse.Namespace) -> BenchReport:
    start = time.perf_counter()
    has_model = Path(args.detector).is_file()
    settings = _Settings(args.scenario, args.cycles, args.budget_cycles, args.beams,
                         str(args.detector) if has_model else None, args.min_score)  # fmt: skip
    results = _run_all(settings, args.scenes, args.workers)
    report = BenchReport(
        name="croa",
        settings={"scenario": args.scenario, "scenes": args.scenes, "cycles": args.cycles,
                  "beams": args.beams, "workers": args.workers,
                  "detector": str(args.detector) if has_model else None,
                  "min_score": args.min_score, "omp_threads": os.environ.get("OMP_NUM_THREADS")},
    )  # fmt: skip
    table = Table(
        f"MAD episodes, {args.scenes} scenes (means; detection error over detected scenes)",
        ["method", "final occl", "occl 1st plan", "points on target", "MAD done", "plans",
         "detected", "centre err m", "yaw err rad", "path m", "collisions", "min clear m",
         "plan ms p50", "plan ms p90"],
    )  # fmt: skip
    table.add("start", float(np.mean([r["start_occ"] for r in results])), "-",
              float(np.mean([r["start_points"] for r in results])), *["-"] * 10)  # fmt: skip
    summary = {name: _summary([r["methods"][name] for r in results]) for name in METHODS}
    for name, m in summary.items():
        detection = [m["detected"], m["centre"], m["yaw"]] if has_model else ["-"] * 3
        table.add(name, m["occ"], m["occ1"], m["points"], m["done"], m["plans"], *detection,
                  m["path_m"], m["collisions"], m["min_clear"], m["p50"], m["p90"])  # fmt: skip
    report.tables.append(table)
    ratios = [("final occlusion", "occ"), ("occlusion after the 1st plan", "occ1"),
              ("path length", "path_m"), ("centre error", "centre")]  # fmt: skip
    for label, key in ratios:
        for name in METHODS[1:]:
            base = summary[name][key]
            if base > 0.0 and np.isfinite(summary["croa"][key]):  # NaN: nothing detected
                report.ratios[f"{label} croa/{name}"] = summary["croa"][key] / base
    if args.budget_cycles > 0:
        _budget_table(report, results, args.budget_cycles, has_model)
    report.notes += _notes(args, has_model, time.perf_counter() - start)
    if args.plot:
        _plot(args.plot, args.scenario, results[0])
        report.notes.append(f"figure of seed 0 written to {args.plot}")
    return report


def _budget_table(
    report: BenchReport, results: list[dict[str, Any]], cycles: int, has_model: bool
) -> None:
    table = Table(
        f"equal budget: exactly {cycles} plans per method, no early stop (means; detection "
        "error over detected scenes)",
        ["method", "final occl", "points on target", "detected", "centre err m", "yaw err rad",
         "path m", "collisions"],
    )  # fmt: skip
    occ, centre = {}, {}
    for name in METHODS:
        rows = [r["methods"][name]["budget"] for r in results]
        occ[name] = float(np.mean([b["occ"] for b in rows]))
        errors = np.array([b["error"] for b in rows if b["error"] is not None]).reshape(-1, 2)
        centre[name] = float(errors[:, 0].mean()) if len(errors) else float("nan")
        detection = (
            [f"{len(errors)}/{len(rows)}", centre[name],
             float(errors[:, 1].mean()) if len(errors) else float("nan")]
            if has_model else ["-"] * 3
        )  # fmt: skip
        table.add(
            name,
            occ[name],
            float(np.mean([b["points"] for b in rows])),
            *detection,
            float(np.mean([b["path_m"] for b in rows])),
            sum(b["clearance_m"] < 0.0 for b in rows),
        )
    report.tables.append(table)
    for name in METHODS[1:]:
        if occ[name] > 0.0:
            report.ratios[f"equal-budget occlusion croa/{name}"] = occ["croa"] / occ[name]
        if has_model and centre[name] > 0.0 and np.isfinite(centre["croa"]):
            report.ratios[f"equal-budget centre error croa/{name}"] = centre["croa"] / centre[name]


def _summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Means over the scenes of one method (detection errors over its detected scenes)."""
    errors = np.array([r["error"] for r in rows if r["error"] is not None]).reshape(-1, 2)
    plan_ms = np.concatenate([r["plan_ms"] for r in rows] + [[]])
    nan = float("nan")
    out = {k: float(np.mean([r[k] for r in rows])) for k in ("occ", "occ1", "points", "plans",
                                                             "path_m")}  # fmt: skip
    return out | {
        "done": f"{sum(r['done'] for r in rows)}/{len(rows)}",
        "detected": f"{len(errors)}/{len(rows)}",
        "centre": float(errors[:, 0].mean()) if len(errors) else nan,
        "yaw": float(errors[:, 1].mean()) if len(errors) else nan,
        "collisions": sum(r["clearance_m"] < 0.0 for r in rows),
        "min_clear": float(min(r["clearance_m"] for r in rows)),
        "p50": float(np.percentile(plan_ms, 50)) if len(plan_ms) else nan,
        "p90": float(np.percentile(plan_ms, 90)) if len(plan_ms) else nan,
    }


def _notes(args: argparse.Namespace, has_model: bool, seconds: float) -> list[str]:
    notes = [
        "scenes: generate_scene(scenario, seed).static() (moving vehicles removed); the robot "
        "starts at the scene's ego pose at rest; the plan target is the detection, else the "
        "true box",
        "detected = a box with score >= --min-score and BEV IoU >= 0.5 with the true target or "
        "centre error < 1 m, on a scan at the final pose; yaw error is folded modulo pi",
        f"MAD confidence: {'detector score' if has_model else 'true visibility (1 - occlusion)'}"
        "; 'MAD done' counts episodes that ended DONE_DETECTED within the cycle budget",
        f"took {seconds:.1f} s wall with {args.workers} worker(s)",
    ]
    if not has_model:
        notes.insert(0, f"detector metrics skipped: no model at {args.detector}")
    return notes


def _plot(path: Path, scenario: str, result: dict[str, Any]) -> None:
    """Scene 0: obstacles, target, each method's driven path and its visible target points."""
    from planning.croa import plot_plans

    task = SimTask.from_scene(generate_scene(scenario, 0).static())
    fig = plot_plans(task.croa_scene().observation(), {}, title=f"{scenario} seed 0")
    ax = fig.axes[0]
    colors = ["tab:green", "tab:orange", "tab:purple", "tab:brown", "tab:cyan"]
    seen = [task.target_box[None, :2]]
    for color, (name, m) in zip(colors, result["methods"].items(), strict=True):
        ax.plot(m["states"][:, 0], m["states"][:, 1], "-", color=color, lw=1.6,
                label=f"{name}: occl {m['occ']:.2f}, {m['points']} pts")  # fmt: skip
        pts = m["target_points"]
        ax.plot(pts[:, 0], pts[:, 1], ".", color=color, ms=4, zorder=5)
        seen.append(m["states"][:, :2])
    lo, hi = np.vstack(seen).min(axis=0) - 6.0, np.vstack(seen).max(axis=0) + 6.0
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    ax.legend(loc="upper left", fontsize=7)
    fig.savefig(path)
