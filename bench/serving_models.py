"""The served models of ``robomr bench serving``, their request pools and calibrated workloads.

Calibrations can be kept in a JSON file (``--calib-cache``): a later run with the same file
reuses the fits instead of timing the models again (keyed by model, path and brownout level; a
model's variants are reused only all together, since they are timed together; delete the file
after changing the models or the machine).
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
from bench.serving_workload import ServiceFit, calibrate_paired, render_pool, scan_pool
from offload.serving.model import PATHS, Path, ServedModel
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


def level_label(level: float | str) -> str:
    """How a brownout level is named in tables, JSON keys and the calibration cache."""
    return f"{level:g}" if isinstance(level, float | int) else str(level)


def render_level(token: str) -> tuple[int, float]:
    """A renderer brownout level ``S`` or ``S:K``: resolution divisor S, share K of the map's
    Gaussians (default 1).

    Raises:
        ValueError: a malformed token.
    """
    scale, _, keep = token.strip().partition(":")
    try:
        return int(scale), float(keep) if keep else 1.0
    except ValueError as err:
        raise ValueError(
            f"renderer brownout level {token!r}: use S or S:K (e.g. 2, 2:0.25)"
        ) from err


def _level_models(name: str, model: Any, args: argparse.Namespace) -> dict[Any, ServedModel]:
    """The brownout levels swept for ``model``: the detector's grid half-width
    (``--brownout-ranges-m``, float keys), the renderer's resolution divisor and share of the map
    (``--brownout-scales`` tokens S or S:K, str keys), each a copy sharing the weights / map.
    Calibrated with the model's paths even when the brownout section does not run, so that a
    cached calibration serves every section."""
    if name == "detector":
        from offload.serving.models.detector import DetectorModel

        return {r: DetectorModel(model.model, r, model.max_cost) for r in args.brownout_ranges_m}
    from offload.serving.models.renderer import RenderModel

    out: dict[Any, ServedModel] = {}
    for token in args.brownout_scales:
        k, keep = render_level(str(token))
        m = RenderModel(model.renderer.model, brownout_scale=k, brownout_keep=keep)
        m.renderer = model.renderer  # the same map and rasterizer
        if keep == 1.0:
            m.cheap_renderer = model.renderer
        out[str(token).strip()] = m
    return out


def build_workloads(
    args: argparse.Namespace, say: Callable[[str], None]
) -> tuple[list[Workload], dict[str, ServedModel], dict[str, Any]]:
    """Models, request pools, calibration fits and SLOs (see ``bench.bench_serving``).

    Every path of a model and every brownout level swept is timed on the same batches,
    interleaved (``calibrate_paired``): their ratios are measured side by side."""
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    unknown = set(names) - {"detector", "gs_render"}
    if unknown or not names:
        raise ValueError(f"--models: unknown {sorted(unknown)}; use detector and/or gs_render")
    table = Table(
        "calibration: t = a + b U + c n fitted to batches timed on this machine (paths and "
        "brownout levels interleaved on the same batches)",
        ["model", "path", "a_ms", "b_us_per_1k_units", "c_ms", "noise_log_std", "r2", "batches"],
    )
    workloads, models = [], {}
    extras: dict[str, Any] = {"calibration": table, "pools": {}, "levels": {}}
    for name, (model, pool) in _models(names, args).items():
        levels = _level_models(name, model, args)
        variants: dict[str, tuple[ServedModel, Path]] = {p: (model, p) for p in PATHS}
        variants.update({f"brownout@{level_label(k)}": (m, "brownout") for k, m in levels.items()})
        say(f"calibrating {name}: {', '.join(variants)} ({len(pool)} requests in the pool)")
        fits = cached_fits(
            args,
            name,
            list(variants),
            lambda v=variants, q=pool: calibrate_paired(v, q, per_size=args.calib_per_size),
        )
        fits = _normalized(fits, model, pool, getattr(args, "service_scale_s", 0.0))
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
        w = Workload(
            name,
            spec,
            costs,
            {p: fits[p] for p in PATHS},
            args.slo_factor * median_s,
            args.memory_budget_mb * 2**20,
        )
        workloads.append(w)
        models[name] = model
        extras["pools"][name] = [pool[i] for i in order]
        extras["levels"][name] = [
            (k, _level_workload(w, m, extras["pools"][name], fits[f"brownout@{level_label(k)}"]), m)
            for k, m in levels.items()
        ]
    return workloads, models, extras


def _normalized(
    fits: dict[str, ServiceFit], model: ServedModel, pool: list[Any], median_s: float
) -> dict[str, ServiceFit]:
    """Every fit scaled by one factor so that the median request takes ``median_s`` on the full
    path (0: as measured). The ratios between paths and levels, measured side by side, are
    kept; what changes is the time scale against which the absolute settings (control period,
    burst length, run duration) act. On a machine loaded 20x, a 19 s detection would otherwise
    leave a handful of requests in a 120 s run and make a 5 s control period look fast."""
    if median_s <= 0:
        return fits
    median = float(np.median([model.cost(r, "full") for r in pool]))
    factor = median_s / fits["full"].predict(median, 1)
    return {
        k: replace(
            f,
            overhead_s=f.overhead_s * factor,
            per_unit_s=f.per_unit_s * factor,
            per_item_s=f.per_item_s * factor,
        )
        for k, f in fits.items()
    }


def _level_workload(w: Workload, m: ServedModel, pool: list[Any], fit: ServiceFit) -> Workload:
    """``w`` with its brownout path replaced by level model ``m``'s (costs, memory, fit)."""
    costs = dict(w.costs, brownout=np.asarray([m.cost(r, "brownout") for r in pool]))
    memory = dict(w.spec.memory, brownout=m.memory("brownout"))
    return replace(
        w, spec=replace(w.spec, memory=memory), costs=costs, fits=dict(w.fits, brownout=fit)
    )


def cached_fits(
    args: argparse.Namespace,
    model: str,
    keys: list[str],
    measure: Callable[[], dict[str, ServiceFit]],
) -> dict[str, ServiceFit]:
    """The fits ``model/key`` for ``keys`` from ``args.calib_cache`` (a JSON file) if it holds
    all of them, else all measured together and written to the file."""
    path: FilePath | None = getattr(args, "calib_cache", None)
    cache: dict[str, Any] = {}
    if path is not None and path.is_file():
        try:
            cache = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            raise ValueError(f"--calib-cache {path}: not a calibration file ({err})") from err
    if all(f"{model}/{k}" in cache for k in keys):
        return {k: ServiceFit(**cache[f"{model}/{k}"]) for k in keys}
    fits = measure()
    if path is not None:
        cache.update({f"{model}/{k}": asdict(f) for k, f in fits.items()})
        path.write_text(json.dumps(cache, indent=1))
    return fits
