"""The served models of ``robomr bench serving``, their request pools and calibrated workloads.

Calibrations can be kept in a JSON file (``--calib-cache``): a later run with the same file
reuses the fits instead of timing the models again (a cached fit is keyed by model, path and
brownout level; delete the file after changing the models or the machine).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path as FilePath
from typing import Any

import numpy as np

from bench.report import Table
from bench.serving_sim import Workload
from bench.serving_workload import ServiceFit, calibrate, render_pool, scan_pool
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
            p: cached_fit(
                args,
                f"{name}/{p}",
                lambda p=p, i=i, m=model, q=pool: calibrate(
                    m, q, p, per_size=args.calib_per_size, seed=i
                ),
            )
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


def cached_fit(args: argparse.Namespace, key: str, measure: Callable[[], ServiceFit]) -> ServiceFit:
    """The fit ``key`` from ``args.calib_cache`` (a JSON file) if it holds it, else measured and
    added to the file."""
    path: FilePath | None = getattr(args, "calib_cache", None)
    cache: dict[str, Any] = {}
    if path is not None and path.is_file():
        try:
            cache = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            raise ValueError(f"--calib-cache {path}: not a calibration file ({err})") from err
    if key in cache:
        return ServiceFit(**cache[key])
    fit = measure()
    if path is not None:
        cache[key] = asdict(fit)
        path.write_text(json.dumps(cache, indent=1))
    return fit


def brownout_levels(
    args: argparse.Namespace,
    workloads: list[Workload],
    models: dict[str, ServedModel],
    extras: dict[str, Any],
    say: Callable[[str], None],
) -> dict[str, list[tuple[float, Workload, ServedModel]]]:
    """Per model, one (level, workload, model) per brownout level swept: the detector's grid
    half-width (``--brownout-ranges-m``), the renderer's resolution divisor
    (``--brownout-scales``). Each level's brownout path is calibrated like the full one; the
    full path's fit is shared."""
    out: dict[str, list[tuple[float, Workload, ServedModel]]] = {}
    for w in workloads:
        model, pool = models[w.name], extras["pools"][w.name]
        levels: list[tuple[float, ServedModel]] = []
        if w.name == "detector":
            from offload.serving.models.detector import DetectorModel

            for r in args.brownout_ranges_m:
                levels.append((r, DetectorModel(model.model, r, model.max_cost)))  # type: ignore[attr-defined]
        elif w.name == "gs_render":
            from offload.serving.models.renderer import RenderModel

            for k in args.brownout_scales:
                m = RenderModel(model.renderer.model, brownout_scale=int(k))  # type: ignore[attr-defined]
                m.renderer = model.renderer  # type: ignore[attr-defined]  # same map and rasterizer
                levels.append((k, m))
        for level, m in levels:
            say(f"calibrating {w.name} brownout level {level:g}")
            fit = cached_fit(
                args,
                f"{w.name}/brownout@{level:g}",
                lambda m=m, q=pool: calibrate(
                    m, q, "brownout", per_size=args.calib_per_size, seed=1
                ),
            )
            costs = dict(w.costs, brownout=np.asarray([m.cost(r, "brownout") for r in pool]))
            memory = dict(w.spec.memory, brownout=m.memory("brownout"))
            lw = replace(
                w,
                spec=replace(w.spec, memory=memory),
                costs=costs,
                fits=dict(w.fits, brownout=fit),
            )
            out.setdefault(w.name, []).append((level, lw, m))
    return out
