"""Tables, ratios and JSON figures of ``robomr bench croa`` from its episode records
(bench/croa_stats.py computes the numbers)."""

from __future__ import annotations

from typing import Any

from bench import croa_stats as stats
from bench.report import BenchReport, Table

MAIN = ("croa", "greedy_nbv", "straight", "stay", "obca_only")  # the JSON's method names


def _ci(mean: float, ci: list[float]) -> str:
    return f"{mean:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]"


def fill_report(report: BenchReport, records: stats.Records, variants: stats.Records,
                plans: int) -> None:  # fmt: skip
    """Adds the tables, ratios and the JSON layout of the issue to ``report``: ``records`` are
    the main methods on every scene, ``variants`` croa and its ablations on the ablation
    scenes (empty lists when none ran)."""
    budgets = {b: stats.budget_figures(records, b) for b in range(1, plans + 1)}
    mad = stats.mad_figures(records)
    _budget_tables(report, records, budgets, plans, "")
    _paired_table(report, records, plans)
    threshold = records["croa"][0].get("confidence")
    _mad_table(report, mad, threshold)
    sweep = {t: stats.mad_figures(records, t) for t in records["croa"][0]["mad_sweep"]}
    for t, figures in sweep.items():
        _mad_table(report, figures, t)
    _mad_sweep_table(report, sweep)
    ablation = stats.ablation_figures(records)
    has_variants = len(variants) > 1 and len(variants["croa"]) > 0
    if has_variants:
        ablation |= {m: r for m, r in stats.ablation_figures(variants).items() if m != "croa"}
    _ablation_table(report, ablation)
    # the ablation variants' rows only: croa's row comes from every scene, not the subset
    extra = {m: r for m, r in variants.items() if m != "croa"} if has_variants else {}
    timing = stats.timing_figures(records | extra)
    _timing_table(report, timing)
    keys = ("occlusion_mean", "occlusion_ci95", "center_error_mean", "collisions")
    main = [m for m in MAIN if m in records]
    # the layout exactly; everything else measured per budget is in budget_details
    report.figures["budgets"] = {str(b): {m: {k: f[m][k] for k in keys} for m in main}
                                 for b, f in budgets.items()}  # fmt: skip
    report.figures["budget_details"] = {str(b): f for b, f in budgets.items()}
    croa = ablation.get("croa", {})
    report.figures["ablation"] = {
        "ccp_improves_fraction": croa.get("ccp_improves_fraction"),
        "ccp_delta_mean": croa.get("ccp_delta_mean"),
        "ccp_delta_ci95": croa.get("ccp_delta_ci95"),
        "ccp_worsens_fraction": croa.get("ccp_worsens_fraction"),
        "ccp_loop_improves_fraction": croa.get("ccp_loop_improves_fraction"),
        "scenes": croa.get("scenes"),
        "methods": ablation,
    }
    if has_variants:
        vb = {b: stats.budget_figures(variants, b) for b in range(1, plans + 1)}
        _budget_tables(report, variants, vb, plans, "ablation scenes: ")
        _paired_table(report, variants, plans, "ablation scenes: ")
        report.figures["ablation"] |= {
            "variant_scenes": len(variants["croa"]),
            "budgets": {str(b): {m: {k: f[m][k] for k in keys} for m in variants}
                        for b, f in vb.items()},
            "mad": stats.mad_figures(variants),
        }  # fmt: skip
    mad_keys = ("plans_mean", "path_m_mean", "final_occlusion_mean", "center_error_mean")
    report.figures["mad"] = {m: {k: mad[m][k] for k in mad_keys} for m in main}
    report.figures["mad_details"] = mad
    report.figures["mad_threshold"] = threshold
    report.figures["mad_threshold_sweep"] = sweep
    report.figures["timing"] = timing
    report.figures["paired_vs_croa"] = {
        str(b): {m: stats.paired(_occ(records, "croa", b), _occ(records, m, b))
                 for m in records if m != "croa"} for b in range(1, plans + 1)}  # fmt: skip
    for b, f in budgets.items():
        for m in main[1:]:
            if f[m]["occlusion_mean"] > 0:
                report.ratios[f"occlusion croa/{m}, {b} plans"] = (
                    f["croa"]["occlusion_mean"] / f[m]["occlusion_mean"])  # fmt: skip
    for key in ("plans_mean", "path_m_mean", "final_occlusion_mean", "center_error_mean"):
        if "greedy_nbv" in mad and mad["greedy_nbv"][key] > 0:
            report.ratios[f"MAD {key} croa/greedy_nbv"] = mad["croa"][key] / mad["greedy_nbv"][key]
    if "greedy_nbv" in timing:
        report.ratios["cycle time p90 croa/greedy_nbv"] = (
            timing["croa"]["cycle_ms_p90"] / timing["greedy_nbv"]["cycle_ms_p90"])  # fmt: skip


def _occ(records: stats.Records, method: str, budget: int) -> list[float]:
    return [e["after"][budget]["occ"] for e in records[method]]


def _budget_tables(report: BenchReport, records: stats.Records,
                   budgets: dict[int, dict[str, dict[str, Any]]], plans: int,
                   prefix: str) -> None:  # fmt: skip
    cols = [f"{b} plan{'s' if b > 1 else ''}" for b in range(1, plans + 1)]
    start = stats.mean_ci([e["after"][0]["occ"] for e in records["croa"]])
    for key, what in (("occlusion", "true occlusion of the target"),
                      ("center_error", "centre error of the target estimate (m)")):  # fmt: skip
        table = Table(f"{prefix}budget sweep: {what} after exactly b plans, mean "
                      f"[95% bootstrap CI] over {len(records['croa'])} scenes (start occlusion "
                      f"{_ci(*start)})", ["method", *cols, "collisions"])  # fmt: skip
        for m in records:
            table.add(m, *[_ci(budgets[b][m][f"{key}_mean"], budgets[b][m][f"{key}_ci95"])
                           for b in range(1, plans + 1)],
                      budgets[plans][m]["collisions"])  # fmt: skip
        report.tables.append(table)


def _paired_table(report: BenchReport, records: stats.Records, plans: int,
                  prefix: str = "") -> None:  # fmt: skip
    cols = [f"{b} plan{'s' if b > 1 else ''}" for b in range(1, plans + 1)]
    table = Table(f"{prefix}paired per scene: occlusion croa - method, mean [95% CI] (croa "
                  "lower / tie within 0.001 / higher)", ["method", *cols])  # fmt: skip
    for m in records:
        if m == "croa":
            continue
        cells = []
        for b in range(1, plans + 1):
            p = stats.paired(_occ(records, "croa", b), _occ(records, m, b))
            cells.append(f"{_ci(p['diff_mean'], p['diff_ci95'])} "
                         f"{p['wins']}/{p['ties']}/{p['losses']}")  # fmt: skip
        table.add(m, *cells)
    report.tables.append(table)


def _mad_table(report: BenchReport, mad: dict[str, dict[str, Any]], threshold: Any) -> None:
    at = "?" if threshold is None else f"{float(threshold):.2f}"
    table = Table(
        f"MAD early stop at target score >= {at} (stop at the first frame with a confident "
        "target detection; a copy brakes to rest and is scored), means [95% CI]",
        [
            "method",
            "plans",
            "path m",
            "time to confident s",
            "final occl",
            "centre err m",
            "confident",
            "collisions",
        ],
    )
    for m, r in mad.items():
        table.add(m, _ci(r["plans_mean"], r["plans_ci95"]), _ci(r["path_m_mean"], r["path_m_ci95"]),
                  _ci(r["time_s_mean"], r["time_s_ci95"]),
                  _ci(r["final_occlusion_mean"], r["final_occlusion_ci95"]),
                  _ci(r["center_error_mean"], r["center_error_ci95"]),
                  f"{r['confident_fraction']:.2f}", r["collisions"])  # fmt: skip
    report.tables.append(table)


def _mad_sweep_table(report: BenchReport, sweep: dict[str, dict[str, dict[str, Any]]]) -> None:
    table = Table("MAD stop threshold sweep: plans / path m / final occl / centre err m (means)",
                  ["method", *[f"score >= {t}" for t in sweep]])  # fmt: skip
    for m in next(iter(sweep.values()), {}):
        table.add(m, *[f"{r[m]['plans_mean']:.2f} / {r[m]['path_m_mean']:.1f} / "
                       f"{r[m]['final_occlusion_mean']:.3f} / {r[m]['center_error_mean']:.3f}"
                       for r in sweep.values()])  # fmt: skip
    report.tables.append(table)


def _ablation_table(report: BenchReport, ablation: dict[str, Any]) -> None:
    table = Table("ablation: exact occlusion along the plan, CCP result - its start (chosen loop, "
                  "per scene mean over cycles)", ["method", "CCP lowers it (scenes)",
                                                  "CCP raises it", "delta mean [95% CI]",
                                                  "delta by start (all cycles)",
                                                  "loop alone lowers it"])  # fmt: skip
    for m, r in ablation.items():
        starts = ", ".join(f"{k} {v:+.3f} ({r['per_start_improves_fraction'][k]:.2f} lower)"
                           for k, v in r["per_start_delta_mean"].items())  # fmt: skip
        table.add(m, f"{r['ccp_improves_fraction']:.2f}", f"{r['ccp_worsens_fraction']:.2f}",
                  _ci(r["ccp_delta_mean"], r["ccp_delta_ci95"]), starts,
                  f"{r.get('ccp_loop_improves_fraction', float('nan')):.2f}")  # fmt: skip
    report.tables.append(table)


def _timing_table(report: BenchReport, timing: dict[str, dict[str, float]]) -> None:
    table = Table("planning cycle (perception update + world model + plan), ms: wall time and "
                  "this process's CPU time (on a shared machine CPU time is the cost)",
                  ["method", "cycle p50", "cycle p90", "CPU p50", "CPU p90", "update p50",
                   "observe p50", "plan p50", "solve p50", "solves p50"])  # fmt: skip
    nan = float("nan")
    for m, r in timing.items():
        table.add(m, r["cycle_ms_p50"], r["cycle_ms_p90"], r.get("cycle_cpu_ms_p50", nan),
                  r.get("cycle_cpu_ms_p90", nan), r["update_ms_p50"], r["observe_ms_p50"],
                  r["plan_ms_p50"], r["solve_ms_p50"], r["solves_p50"])  # fmt: skip
    report.tables.append(table)
