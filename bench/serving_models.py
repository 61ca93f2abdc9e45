"""The served models of ``robomr bench serving``, their request pools and calibrated workloads."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import numpy as np

from bench.report import Table
from bench.serving_sim import Workload
from bench.serving_workload import calibrate, render_pool, scan_pool
from offload.serving.model import PATHS, ServedModel
from offload.serving.scheduler import ModelSpec

SCENE_SEED = 7  # urban-clutter scene the scans and the render map come from
MAP_SPACING_M = 0.6  # render map sample spacing: a mid-size map (tens of thousands of Gaussians)


def _sizes(text: str) -> list[tuple[int, int]]:
    out = []
    for item in text.split(","):
        w, _, h = item.strip().partition("x")
        out.append((int(w), int(h)))
    return out


def _models(names: list[str], args: argparse.Namespace) -> dict[str, tuple[ServedModel, list[Any]]]:
    out: dict[str, tuple[ServedModel, list[Any]]] = {}
    if "detector" in names:
        from offload.serving.models.detector import DetectorModel

        pool = scan_pool([int(b) for b in args.beams], args.ranges, SCENE_SEED)
        out["detector"] = (DetectorModel.from_options(), [points for _, points in pool])
    if "gs_render" in names:
        from offload.serving.models.renderer import RenderModel
        from robomr_nodes.nodes.gs_render import build_map

        model = RenderModel(build_map("urban-clutter", SCENE_SEED, MAP_SPACING_M))
        out["gs_render"] = (model, render_pool(_sizes(args.render_sizes), SCENE_SEED))
    return out


def build_workloads(
    args: argparse.Namespace, say: Callable[[str], None]
) -> tuple[list[Workload], dict[str, ServedModel], dict[str, Any]]:
    """Models, request pools, calibration fits and SLOs (see ``bench.bench_serving``)."""
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    unknown = set(names) - {"detector", "gs_render"}
    if unknown or not names:
        raise ValueError(f"--models: unknown {sorted(unknown)}; use detector and/or gs_render")
    table = Table(
        "calibration: t = a + b U + c n fitted to batches timed on this machine",
        ["model", "path", "a_ms", "b_us_per_1k_units", "c_ms", "noise_log_std", "r2", "batches"],
    )
    workloads, models, extras = [], {}, {"calibration": table, "pools": {}}
    for name, (model, pool) in _models(names, args).items():
        say(f"calibrating {name} ({len(pool)} requests in the pool)")
        fits = {
            p: calibrate(model, pool, p, per_size=args.calib_per_size, seed=i)
            for i, p in enumerate(PATHS)
        }
        for p, f in fits.items():
            table.add(
                name,
                p,
                1e3 * f.overhead_s,
                1e9 * f.per_unit_s,
                1e3 * f.per_item_s,
                f.log_std,
                f.r2,
                f.samples,
            )
        order = np.argsort([model.cost(r, "full") for r in pool], kind="stable")
        costs = {p: np.asarray([model.cost(pool[i], p) for i in order]) for p in PATHS}
        spec = ModelSpec(
            name, model.max_cost, model.has_brownout, {p: model.memory(p) for p in PATHS}
        )
        median_s = fits["full"].predict(float(np.median(costs["full"])), 1)
        workloads.append(
            Workload(
                name, spec, costs, fits, args.slo_factor * median_s, args.memory_budget_mb * 2**20
            )
        )
        models[name] = model
        extras["pools"][name] = [pool[i] for i in order]
    return workloads, models, extras
