"""GSCLO under an average transmit-power budget (planning/gsclo/avg_power.py)."""

from __future__ import annotations

import numpy as np
import pytest

from planning.gsclo import GscloProblem, LinkConfig, solve_exact
from planning.gsclo.avg_power import (
    PowerBudgetError,
    _energy,
    solve_power_apo,
    solve_power_exact,
    water_fill_power,
)


def _window(seed: int, circuit_power_w: float, frames: int = 6) -> GscloProblem:
    rng = np.random.default_rng(seed)
    return GscloProblem(
        rng.uniform(0.05, 0.9, frames),
        10.0 ** rng.uniform(-12.0, -10.0, frames),
        0.3,
        link=LinkConfig(circuit_power_w=circuit_power_w),
    )


@pytest.mark.parametrize(("seed", "circuit_power_w"), [(0, 0.0), (1, 0.05), (2, 0.5)])
def test_a_slack_budget_gives_the_uncoupled_optimum(seed: int, circuit_power_w: float) -> None:
    problem = _window(seed, circuit_power_w)
    uncoupled = solve_exact(problem, "enumerate")
    budget = 2.0 * float(uncoupled.power_w.mean())
    for solver in (solve_power_exact, solve_power_apo):
        got = solver(problem, budget)
        assert got.feasible and got.multiplier == 0.0
        # rel 1e-9: the same closed-form powers, summed in another order
        assert got.total_energy_j == pytest.approx(uncoupled.total_energy_j, rel=1e-9)


@pytest.mark.parametrize("seed", range(3))
def test_without_circuit_power_the_budget_only_decides_feasibility(seed: int) -> None:
    """P_c = 0: E = tau sum p, so the budget caps the objective; the uncoupled optimum meets
    it whenever any schedule does (module docstring)."""
    problem = _window(seed, 0.0)
    uncoupled = solve_exact(problem, "enumerate")
    mean = float(uncoupled.power_w.mean())
    assert uncoupled.total_energy_j == pytest.approx(
        problem.link.deadline_s * uncoupled.power_w.sum(), rel=1e-9
    )
    at = solve_power_exact(problem, mean * (1.0 + 1e-9))
    assert at.feasible and np.array_equal(at.upload, uncoupled.upload)
    for solver in (solve_power_exact, solve_power_apo):
        below = solver(problem, mean * 0.99)
        assert not below.feasible and below.total_energy_j == np.inf


@pytest.mark.parametrize("seed", range(2))
def test_binding_budget_water_filling_is_optimal_for_fixed_contents(seed: int) -> None:
    """KKT: the budget holds with equality, and moving power between two frames within their
    intervals never lowers the energy (the allocation is convex, so local = global)."""
    problem = _window(seed, 0.5)
    x = solve_exact(problem, "enumerate").upload
    free_power = water_fill_power(problem, x[None], 10.0)[0][0]  # slack: the closed form
    budget = 0.6 * float(free_power.mean())
    power, energy, mu = water_fill_power(problem, x[None], budget)
    assert mu[0] > 0.0 and np.isfinite(energy[0])
    assert power[0].sum() == pytest.approx(problem.num_frames * budget, rel=1e-6)
    bits = np.where(x, problem.image_bits, problem.pose_bits)
    g = problem.channel_gain / problem.link.noise_power_w
    for i in range(problem.num_frames):
        for j in range(problem.num_frames):
            if i == j:
                continue
            for delta in (1e-4, 1e-3):
                moved = power[0].copy()
                step = delta * moved[j]
                moved[i] += step
                moved[j] -= step
                if moved[i] > free_power[i]:  # above p* only raises frame i's energy
                    continue
                lower = moved[j] < power[0][j] and not _meets(moved[j], bits[j], g[j], problem)
                if lower:
                    continue
                # rel 1e-9: bisection to 2^-50 of the interval, energies ~1e-2 J
                assert _energy(moved, bits, g, problem).sum() >= energy[0] * (1.0 - 1e-9)


def _meets(p: float, bits: float, g: float, problem: GscloProblem) -> bool:
    rate = problem.link.bandwidth_hz * np.log2(1.0 + p * g)
    return bits / rate <= problem.link.deadline_s * (1.0 + 1e-12)


@pytest.mark.parametrize(("seed", "share"), [(0, 0.8), (1, 0.5), (2, 0.5)])
def test_apo_is_feasible_and_never_beats_the_optimum(seed: int, share: float) -> None:
    problem = _window(seed, 0.5)
    uncoupled = solve_exact(problem, "enumerate")
    budget = share * float(uncoupled.power_w.mean())
    exact = solve_power_exact(problem, budget)
    apo = solve_power_apo(problem, budget)
    assert exact.feasible and apo.feasible
    assert exact.power_w.mean() <= budget * (1.0 + 1e-9)
    assert apo.power_w.mean() <= budget * (1.0 + 1e-9)
    # the coupled optimum costs at least the uncoupled one; APO at least the optimum
    assert exact.total_energy_j >= uncoupled.total_energy_j * (1.0 - 1e-9)
    assert apo.total_energy_j >= exact.total_energy_j * (1.0 - 1e-9)


@pytest.mark.parametrize("budget", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_budget_is_a_clear_error(budget: float) -> None:
    with pytest.raises(PowerBudgetError, match="mean_power_w"):
        solve_power_apo(_window(0, 0.0), budget)


def test_enumeration_refuses_long_windows() -> None:
    with pytest.raises(PowerBudgetError, match="16 frames"):
        solve_power_exact(_window(0, 0.0, frames=17), 0.1)
