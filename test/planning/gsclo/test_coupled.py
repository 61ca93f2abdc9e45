"""GSCLO with an airtime budget shared by the frames (planning.gsclo.coupled)."""

from __future__ import annotations

import numpy as np
import pytest

from planning.gsclo import GscloProblem, solve_exact
from planning.gsclo.coupled import (
    CoupledError,
    solve_coupled_apo,
    solve_coupled_exact,
    water_fill,
)

# Energies of one schedule computed two ways agree to rounding and to the bisection on
# lambda (100 halvings of a 120-wide log interval: far below 1e-9 relative).
RTOL = 1e-7


def _window(seed: int, frames: int = 10) -> GscloProblem:
    rng = np.random.default_rng(seed)
    dist = rng.uniform(50, 300, frames)
    gain = 10 ** (-(40 + 30 * np.log10(dist)) / 10) * rng.exponential(1.0, frames)
    return GscloProblem(rng.uniform(0.0, 0.4, frames), gain, 0.1)


@pytest.mark.parametrize("seed", range(4))
def test_a_slack_budget_gives_the_uncoupled_optimum(seed: int) -> None:
    problem = _window(seed)
    slack = 2.0 * problem.num_frames * problem.link.deadline_s
    exact = solve_coupled_exact(problem, slack)
    assert exact.multiplier == 0.0
    np.testing.assert_allclose(exact.airtime_s, problem.link.deadline_s)  # deadline equality
    assert exact.total_energy_j == pytest.approx(solve_exact(problem).total_energy_j, rel=RTOL)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("share", [0.5, 0.2])
def test_a_binding_budget_is_met_and_apo_is_never_below_the_optimum(
    seed: int, share: float
) -> None:
    problem = _window(seed)
    airtime = share * problem.num_frames * problem.link.deadline_s
    exact = solve_coupled_exact(problem, airtime)
    apo = solve_coupled_apo(problem, airtime)
    for sched in (exact, apo):
        if sched.feasible:
            assert sched.airtime_s.sum() <= airtime * (1 + 1e-9)
            assert np.all(sched.power_w <= problem.link.max_power_w * (1 + 1e-9))
    if exact.feasible:
        assert apo.total_energy_j >= exact.total_energy_j * (1 - RTOL)
        assert exact.total_energy_j >= solve_exact(problem).total_energy_j * (1 - RTOL)


def test_water_filling_equalises_the_marginal_energy() -> None:
    problem = _window(1)
    x = np.zeros(problem.num_frames, bool)
    x[:5] = True
    airtime = 0.3 * problem.num_frames * problem.link.deadline_s
    air, _, lam = water_fill(problem, x[None], airtime)
    assert lam[0] > 0.0 and air.sum() == pytest.approx(airtime, rel=1e-6)
    # KKT: frames strictly inside their bounds have e'(l) = -lambda
    g = problem.channel_gain / problem.link.noise_power_w
    bits = np.where(x, problem.image_bits, problem.pose_bits)
    a = bits * np.log(2) / problem.link.bandwidth_hz
    ell = air[0]
    slope = (np.exp(a / ell) * (1 - a / ell) - 1) / g
    inside = ell < problem.link.deadline_s * (1 - 1e-6)
    np.testing.assert_allclose(slope[inside], -lam[0], rtol=1e-5)


def test_bad_budgets_and_large_enumerations_are_rejected() -> None:
    with pytest.raises(CoupledError, match="airtime_s"):
        solve_coupled_apo(_window(0), 0.0)
    with pytest.raises(CoupledError, match="16 frames"):
        solve_coupled_exact(_window(0, frames=17), 1.0)
