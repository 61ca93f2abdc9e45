"""Side checks of ``robomr bench croa``: the occlusion surrogate against exact ray-cast occlusion
over random viewpoints, and the figure of the first scene.

Surrogate check, per scene (the true boxes at t = 0, the planner's surrogate settings, one
scan): random lidar positions on the street (not inside an obstacle), and three occlusions of
the target from each: the surrogate O (planning/croa/surrogate.py, without and with its depth
term), the exact slab-test occlusion on the same boxes (planning/croa/occlusion.py, 0.2 m
cells) and the simulator's ray-cast ground truth (sim.occlusion_ratio: open3d rays against the
scene's meshes). Reported: Spearman rank correlation, mean absolute error and mean error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import spearmanr

from bench.croa_sim import planner_robot
from bench.report import BenchReport, Table
from planning.croa import (
    CroaConfig,
    PlanObservation,
    Polytope,
    RobotState,
    exact_occlusion,
    plot_plans,
)
from planning.croa.surrogate import build_shadows
from sim import RobotConfig, World, generate_scene, occlusion_ratio


def surrogate_check(report: BenchReport, scenes: list[tuple[str, int]], views: int) -> dict:
    """Adds the check's table to ``report`` and returns its figures."""
    c = CroaConfig(robot=planner_robot(RobotConfig()))
    cols: dict[str, list[float]] = {"surrogate": [], "surrogate_depth": [], "slab": [], "ray": []}
    for scenario, seed in scenes:
        for key, values in _one_scene(scenario, seed, views, c).items():
            cols[key].extend(values)
    v = {k: np.array(x) for k, x in cols.items()}
    out: dict[str, Any] = {"scenes": len(scenes), "viewpoints": len(v["ray"])}
    table = Table(f"occlusion surrogate vs exact, {len(v['ray'])} random viewpoints in "
                  f"{len(scenes)} scenes", ["pair", "spearman", "MAE", "mean error"])  # fmt: skip
    for a, b in (("surrogate", "slab"), ("surrogate", "ray"), ("surrogate_depth", "ray"),
                 ("slab", "ray")):  # fmt: skip
        rho = float(spearmanr(v[a], v[b]).statistic)
        mae, bias = float(np.mean(np.abs(v[a] - v[b]))), float(np.mean(v[a] - v[b]))
        out[f"{a}_vs_{b}"] = {"spearman": rho, "mae": mae, "mean_error": bias}
        table.add(f"{a} vs {b}", rho, mae, bias)
    report.tables.append(table)
    return out


def _one_scene(scenario: str, seed: int, views: int, c: CroaConfig) -> dict[str, list[float]]:
    scene = generate_scene(scenario, seed)
    target = np.asarray(scene.objects[scene.target_index].box, dtype=np.float64)
    boxes, _ = scene.obstacle_boxes(exclude_names=(scene.target_name,))
    prisms = [Polytope.from_box(b) for b in boxes]
    rng = np.random.default_rng([seed, 99])
    x0, y0 = scene.ego_start[0] - 5.0, min(scene.ego_start[1], target[1]) - 2.0
    x1, y1 = target[0] + 8.0, max(scene.ego_start[1], target[1]) + 2.0
    xy = rng.uniform([x0, y0], [x1, y1], (4 * views, 2))
    inside = np.zeros(len(xy), dtype=bool)
    for p in prisms:
        inside |= np.all(xy @ p.A.T - p.b <= 0.0, axis=1)
    xy = xy[~inside][:views]
    h = c.robot.lidar_z_m
    shadows = build_shadows(target, prisms, c.surrogate, h, 80.0, xy, np.array([0.0]))
    world = World(scene)
    origins = np.hstack([xy, np.full((len(xy), 1), h)])
    return {
        "surrogate": shadows.scan_values(xy[:, None, :], depth=False)[:, 0].tolist(),
        "surrogate_depth": shadows.scan_values(xy[:, None, :])[:, 0].tolist(),
        "slab": exact_occlusion(origins, target, prisms, 0.2).tolist(),
        "ray": [occlusion_ratio(world, o, target, scene.target_index) for o in origins],
    }


def plot_first_scene(path: Path, scene_key: tuple[str, int], records: dict[str, Any]) -> None:
    """The scene at t = 0 with each method's driven path and its final occlusion."""
    scene = generate_scene(*scene_key)
    target = np.asarray(scene.objects[scene.target_index].box, dtype=np.float64)
    boxes, _ = scene.obstacle_boxes(exclude_names=(scene.target_name,))
    obs = PlanObservation.from_boxes(0, RobotState(*scene.ego_start), target, boxes)
    fig = plot_plans(obs, {}, title=f"{scene_key[0]} seed {scene_key[1]}: driven paths")
    ax = fig.axes[0]
    tracks = [np.array(r["track"]) for r in records.values()]
    for (name, r), track in zip(records.items(), tracks, strict=True):
        last = r["after"][-1]
        ax.plot(track[:, 1], track[:, 2], "-", lw=1.6,
                label=f"{name}: occl {last['occ']:.2f}, {last['points']} pts")  # fmt: skip
    both = np.vstack([t[:, 1:] for t in tracks] + [target[None, :2]])
    lo, hi = both.min(axis=0) - 8.0, both.max(axis=0) + 8.0
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    ax.legend(loc="upper left", fontsize=7)
    fig.savefig(path)


def plot_budgets(path: Path, budgets: dict[str, dict[str, dict[str, Any]]]) -> None:
    """Mean true occlusion (with its 95% interval) after b plans, one line per method."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.0), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    plans = sorted(int(b) for b in budgets)
    for method in budgets[str(plans[0])]:
        mean = np.array([budgets[str(b)][method]["occlusion_mean"] for b in plans])
        ci = np.array([budgets[str(b)][method]["occlusion_ci95"] for b in plans])
        line = ax.plot(plans, mean, "o-", lw=1.5, ms=3, label=method)[0]
        ax.fill_between(plans, ci[:, 0], ci[:, 1], color=line.get_color(), alpha=0.15)
    ax.set_xlabel("plans (budget)")
    ax.set_ylabel("true occlusion of the target")
    ax.set_ylim(0.0, 1.0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
