"""Solver studies of ``robomr bench gsclo``: APO against exact solvers, and the coupled case.

Windows of T frames are cut from a drive's measured discrepancies (wrapping around) and given
fresh fading (a new seed per window). APO is compared with the exact optimum from HiGHS
called directly (``scipy.optimize.milp``, no modelling layer) and through cvxpy; enumeration
checks both at T <= 16. The coupled study (:mod:`planning.gsclo.coupled`) compares APO with a
Lagrangian outer loop against enumeration under a shared airtime budget.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from bench.report import Table
from planning.gsclo import (
    FadingConfig,
    GscloProblem,
    LinkConfig,
    PayloadConfig,
    simulate_channel_gain,
    solve_apo,
    solve_exact,
)
from planning.gsclo.avg_power import solve_power_apo, solve_power_exact
from planning.gsclo.coupled import solve_coupled_apo, solve_coupled_exact


def _window(
    disc: np.ndarray, dist: np.ndarray, size: int, seed: int, budget: float,
    fading: FadingConfig, link: LinkConfig, payload: PayloadConfig,
) -> GscloProblem:  # fmt: skip
    rng = np.random.default_rng(seed)
    idx = (int(rng.integers(0, len(disc))) + np.arange(size)) % len(disc)
    gain = simulate_channel_gain(dist[idx], fading, 10_000 + seed)
    return GscloProblem.from_payload(disc[idx], gain, budget, link, payload)


def solver_study(
    disc: np.ndarray,  # [N] measured L_t of a drive
    dist: np.ndarray,  # [N]
    sizes: list[int],
    windows: int,
    repeats: int,
    budget: float,
    fading: FadingConfig,
    link: LinkConfig,
    payload: PayloadConfig,
) -> tuple[Table, dict[str, float], dict[int, float], dict[int, float]]:
    """(table, overall figures, median gap % per T, APO speed-up over HiGHS direct per T)."""
    table = Table(
        f"APO vs exact on drive windows (fresh fading each), L_th={budget:.3f}, "
        f"median over windows of the per-window median of {repeats} timings",
        ["T", "windows", "apo_ms", "highs_direct_ms", "cvxpy_highs_ms", "enumerate_ms",
         "speedup_vs_highs_direct", "speedup_vs_cvxpy", "gap_median_pct", "gap_p90_pct",
         "gap_max_pct", "optimal_share"],
    )  # fmt: skip
    all_gaps, gap_by_t, speed_by_t = [], {}, {}
    for size in sizes:
        count = max(1, windows if size <= 100 else windows // 4)
        ms: dict[str, list[float]] = {"apo": [], "highs": [], "milp": [], "enumerate": []}
        gaps = []
        for w in range(count):
            problem = _window(disc, dist, size, 1000 * size + w, budget, fading, link, payload)
            names = ["apo", "highs", "milp"] + (["enumerate"] if size <= 16 else [])
            best = {}
            for name in names:
                scheds = [
                    solve_apo(problem) if name == "apo" else solve_exact(problem, name)
                    for _ in range(repeats)
                ]
                ms[name].append(1e3 * float(np.median([s.solve_time_s for s in scheds])))
                best[name] = scheds[0].total_energy_j
            gaps.append(100.0 * (best["apo"] / best["highs"] - 1.0))
        g = np.array(gaps)
        med = {k: float(np.median(v)) if v else None for k, v in ms.items()}
        gap_by_t[size] = float(np.median(g))
        speed_by_t[size] = med["highs"] / med["apo"]
        all_gaps += gaps
        table.add(
            size, count, med["apo"], med["highs"], med["milp"], med["enumerate"] or "",
            speed_by_t[size], med["milp"] / med["apo"], float(np.median(g)),
            float(np.percentile(g, 90)), float(g.max()), float(np.mean(g <= 1e-7)),
        )  # fmt: skip
    overall = {"apo_gap_median_pct": float(np.median(all_gaps))}
    return table, overall, gap_by_t, speed_by_t


def coupled_study(
    disc: np.ndarray,
    dist: np.ndarray,
    windows: int,
    budget: float,
    fractions: list[float],
    fading: FadingConfig,
    link: LinkConfig,
    payload: PayloadConfig,
    size: int = 12,
) -> Table:
    """Coupled APO vs enumeration at airtime budgets of ``fraction * T * tau``."""
    table = Table(
        f"airtime-coupled GSCLO on {windows} {size}-frame windows: APO + Lagrangian loop vs "
        "enumeration (water-filling per subset)",
        ["airtime_share", "binding_share", "gap_median_pct", "gap_max_pct", "optimal_share",
         "apo_ms", "exact_ms", "energy_vs_uncoupled"],
    )  # fmt: skip
    for frac in fractions:
        gaps, binding, apo_ms, exact_ms, ratio = [], [], [], [], []
        for w in range(windows):
            problem = _window(disc, dist, size, 7_000 + w, budget, fading, link, payload)
            airtime = frac * size * link.deadline_s
            exact = solve_coupled_exact(problem, airtime)
            if not np.isfinite(exact.total_energy_j):
                continue
            apo = solve_coupled_apo(problem, airtime)
            gaps.append(100.0 * (apo.total_energy_j / exact.total_energy_j - 1.0))
            binding.append(exact.multiplier > 0.0)
            apo_ms.append(1e3 * apo.solve_time_s)
            exact_ms.append(1e3 * exact.solve_time_s)
            ratio.append(exact.total_energy_j / solve_exact(problem).total_energy_j)
        if not gaps:
            table.add(frac, 0.0, "", "", "", "", "", "")
            continue
        g = np.array(gaps)
        table.add(
            frac, float(np.mean(binding)), float(np.median(g)), float(g.max()),
            float(np.mean(g <= 1e-7)), float(np.median(apo_ms)), float(np.median(exact_ms)),
            float(np.median(ratio)),
        )  # fmt: skip
    return table


def power_study(
    disc: np.ndarray,
    dist: np.ndarray,
    windows: int,
    budget: float,
    shares: list[float],
    circuit_powers_w: list[float],
    fading: FadingConfig,
    link: LinkConfig,
    payload: PayloadConfig,
    size: int = 10,
) -> Table:
    """Average-power-coupled APO vs enumeration, the budget a share of the mean power of the
    uncoupled optimum (so share < 1 binds wherever the budget can bind)."""
    table = Table(
        f"average-power-coupled GSCLO on {windows} {size}-frame windows: APO + Lagrangian "
        "loop vs enumeration (power water-filling per subset); budget = share x the uncoupled "
        "optimum's mean power",
        ["circuit_power_W", "power_share", "feasible_share", "binding_share", "gap_median_pct",
         "gap_max_pct", "apo_ms", "exact_ms", "energy_vs_uncoupled"],
    )  # fmt: skip
    for pc in circuit_powers_w:
        lk = replace(link, circuit_power_w=pc)
        for share in shares:
            gaps, feasible, binding, apo_ms, exact_ms, ratio = [], [], [], [], [], []
            for w in range(windows):
                problem = _window(disc, dist, size, 8_000 + w, budget, fading, lk, payload)
                uncoupled = solve_exact(problem)
                mean_power = share * float(uncoupled.power_w.mean())
                exact = solve_power_exact(problem, mean_power)
                feasible.append(exact.feasible)
                if not exact.feasible:
                    continue
                apo = solve_power_apo(problem, mean_power)
                gaps.append(100.0 * (apo.total_energy_j / exact.total_energy_j - 1.0))
                binding.append(exact.multiplier > 0.0)
                apo_ms.append(1e3 * apo.solve_time_s)
                exact_ms.append(1e3 * exact.solve_time_s)
                ratio.append(exact.total_energy_j / uncoupled.total_energy_j)
            if not gaps:
                table.add(pc, share, float(np.mean(feasible)), "", "", "", "", "", "")
                continue
            g = np.array(gaps)
            table.add(
                pc, share, float(np.mean(feasible)), float(np.mean(binding)),
                float(np.median(g)), float(g.max()), float(np.median(apo_ms)),
                float(np.median(exact_ms)), float(np.median(ratio)),
            )  # fmt: skip
    return table
