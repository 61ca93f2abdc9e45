"""GSCLO with an average transmit-power budget coupling the frames (arXiv 2504.13697, extended).

The paper's problem (per-frame deadline ``tau``, power limit ``P_max``, average fidelity
budget) plus a budget on the mean transmit power over the window's frames (a battery's or
power amplifier's sustained limit):

    minimise    E = sum_t (p_t + P_c) l_t,    l_t = D_t / (B log2(1 + p_t g_t))       (J)
    subject to  l_t <= tau,  0 <= p_t <= P_max,  (1/T) sum_t L_t (1 - x_t) <= L_th,
                (1/T) sum_t p_t <= P_bar                                          (coupling)

For fixed contents ``x`` the energy of a frame, ``e_t(p)``, is quasi-convex with its minimum at
the closed form ``p*_t = clip(max(p_dl, p_ee), ., P_max)`` (:mod:`planning.gsclo.power`) and
convex and decreasing on ``[p_dl, p*_t]`` (its derivative, proportional to
``ln(1 + g p) - (p + P_c) g / (1 + g p)`` over ``ln(1 + g p)^2``, rises there). No frame
gains from a power above ``p*_t`` (more energy and more power), so the powers solve

    minimise sum_t e_t(p_t)  subject to  p_dl,t <= p_t <= p*_t,  sum_t p_t <= T P_bar,

a convex resource allocation: with the budget's multiplier ``mu >= 0``, each ``p_t`` solves
``e_t'(p) = -mu`` on its interval (bisection, since ``e_t'`` rises) and ``mu`` is the root of
``sum_t p_t(mu) = T P_bar`` (bisection on log mu): a water-filling. If
``sum_t p_dl,t > T P_bar`` no power meets the budget with these contents.

*The paper's case, ``P_c = 0``.* Then ``p*_t = p_dl,t`` and ``e*_t = tau p_dl,t``: the energy is
``tau`` times the summed power, so the budget is ``E(x) <= tau T P_bar``, a cap on the objective
itself. The uncoupled optimum is optimal for the coupled problem whenever any schedule meets
the cap, and if it does not, none does: the closed-form powers stay optimal and the coupling
only decides feasibility. With ``P_c > 0`` the budget binds on feasible schedules: frames give
up the energy-efficient power ``p_ee`` for ``p_dl`` where that costs least energy per watt.

* :func:`solve_power_exact`: every content choice meeting the fidelity budget (T <= 16), each
  scored by the water-filling, vectorised.
* :func:`solve_power_apo`: APO with a Lagrangian outer loop over ``mu`` (as for the airtime
  budget in :mod:`planning.gsclo.coupled`): per ``mu`` the frames decouple with priced costs
  ``min_p e_t(p) + mu p``, APO solves their covering knapsack, each candidate is scored exactly
  by water-filling, the best is polished by single exchanges.

Raises:
    PowerBudgetError: a bad budget, or enumeration on more than 16 frames.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from planning.gsclo.apo import ApoConfig, apo_relaxed
from planning.gsclo.power import LN2, deadline_power_w, efficient_power_w
from planning.gsclo.problem import GscloProblem
from planning.gsclo.rounding import exchange_search, normalised_cost, repair, swap_polish

ENUMERATION_MAX_FRAMES = 16
_BISECTION_STEPS = 50


class PowerBudgetError(ValueError):
    """An average-power setting is out of range."""


@dataclass(frozen=True)
class PowerBudgetSchedule:
    """A schedule of the average-power-coupled problem.

    Attributes:
        upload: x_t [T] bool.
        power_w: transmit power per frame (W) [T].
        total_energy_j: sum_t (p_t + P_c) l_t (J); inf when no power meets the budget.
        multiplier: mu of the power budget (J/W); 0 when it is slack.
        feasible: the power budget, deadlines and fidelity budget all hold.
        solve_time_s: wall time (s).
        method: "power_apo" or "power_exact".
    """

    upload: np.ndarray
    power_w: np.ndarray
    total_energy_j: float
    multiplier: float
    feasible: bool
    solve_time_s: float
    method: str


def _bits(problem: GscloProblem, upload: np.ndarray) -> np.ndarray:
    image = np.broadcast_to(problem.image_bits, upload.shape[-1:])
    return np.where(upload, image, problem.pose_bits)


def _energy(p: np.ndarray, bits: np.ndarray, g: np.ndarray, problem: GscloProblem) -> np.ndarray:
    link = problem.link
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = link.bandwidth_hz * np.log1p(p * g) / LN2
        return (p + link.circuit_power_w) * bits / rate


def _slope(p: np.ndarray, bits: np.ndarray, g: np.ndarray, problem: GscloProblem) -> np.ndarray:
    """de/dp (J/W): (D ln2 / B) (ln(1 + g p) - (p + P_c) g / (1 + g p)) / ln(1 + g p)^2."""
    link = problem.link
    with np.errstate(divide="ignore", invalid="ignore"):
        log = np.log1p(p * g)
        top = log - (p + link.circuit_power_w) * g / (1.0 + p * g)
        return bits * LN2 / link.bandwidth_hz * top / log**2


def _interval(bits: np.ndarray, g: np.ndarray, problem: GscloProblem):
    """[p_dl, p*] per frame (p_dl = inf where the deadline cannot be met)."""
    link = problem.link
    p_dl = deadline_power_w(bits, g, link.bandwidth_hz, link.deadline_s)
    p_dl = np.where(p_dl <= link.max_power_w, p_dl, np.inf)
    p_ee = np.broadcast_to(efficient_power_w(g, link.circuit_power_w), bits.shape)
    return p_dl, np.minimum(np.maximum(p_dl, p_ee), link.max_power_w)


def _power_at(mu: np.ndarray, bits, g, lo, hi, problem) -> np.ndarray:
    """argmin over [lo, hi] of e(p) + mu p for each frame (e convex decreasing there)."""
    a, b = lo.copy(), hi.copy()
    for _ in range(_BISECTION_STEPS):
        mid = 0.5 * (a + b)
        rising = _slope(mid, bits, g, problem) + mu > 0.0
        a, b = np.where(rising, a, mid), np.where(rising, mid, b)
    return np.where(_slope(lo, bits, g, problem) + mu >= 0.0, lo, 0.5 * (a + b))


def water_fill_power(
    problem: GscloProblem, upload: np.ndarray, mean_power_w: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Optimal powers [S, T], energy [S] (inf where infeasible) and multiplier [S] for each
    content choice ``upload`` [S, T] under the mean-power budget (module docstring)."""
    x = np.atleast_2d(upload)
    g = np.broadcast_to(problem.channel_gain / problem.link.noise_power_w, x.shape)
    bits = _bits(problem, x)
    lo, hi = _interval(bits, g, problem)
    total = problem.num_frames * mean_power_w
    feasible = np.isfinite(lo).all(axis=1) & (lo.sum(axis=1) <= total * (1.0 + 1e-12))
    lo = np.where(np.isfinite(lo), lo, 0.0)
    hi = np.where(np.isfinite(hi), hi, 0.0)
    power, mu = hi.copy(), np.zeros(len(x))
    over = feasible & (hi.sum(axis=1) > total)
    if over.any():
        sel = np.flatnonzero(over)
        args = (bits[sel], g[sel], lo[sel], hi[sel], problem)
        # mu in J/W: scale by the frames' slopes at p_dl (the most it can take to reach p_dl).
        top = np.max(-_slope(lo[sel], bits[sel], g[sel], problem), axis=1, keepdims=True)
        a, b = np.log(top) - 40.0, np.log(top) + 1.0
        for _ in range(_BISECTION_STEPS):
            mid = 0.5 * (a + b)
            used = _power_at(np.exp(mid), *args).sum(axis=1, keepdims=True)
            a, b = np.where(used > total, mid, a), np.where(used > total, b, mid)
        power[sel] = _power_at(np.exp(b), *args)
        mu[sel] = np.exp(b[:, 0])
    energy = _energy(power, bits, g, problem).sum(axis=1)
    return power, np.where(feasible, energy, np.inf), mu


def _check(problem: GscloProblem, mean_power_w: float) -> None:
    if not (math.isfinite(mean_power_w) and mean_power_w > 0.0):
        raise PowerBudgetError(f"mean_power_w={mean_power_w!r} must be finite and > 0")


def _result(problem, upload, mean_power_w, start, method) -> PowerBudgetSchedule:
    power, energy, mu = water_fill_power(problem, upload[None], mean_power_w)
    fidelity = float(np.mean(problem.discrepancy * ~upload))
    ok = bool(np.isfinite(energy[0])) and fidelity <= problem.fidelity_budget + 1e-9
    return PowerBudgetSchedule(upload, power[0], float(energy[0]), float(mu[0]), ok,
                               time.perf_counter() - start, method)  # fmt: skip


def solve_power_exact(problem: GscloProblem, mean_power_w: float) -> PowerBudgetSchedule:
    """The optimum over every content choice (T <= 16), each scored by water-filling.

    Raises:
        PowerBudgetError: bad budget or more than 16 frames.
    """
    _check(problem, mean_power_w)
    T = problem.num_frames
    if T > ENUMERATION_MAX_FRAMES:
        raise PowerBudgetError(f"enumeration needs <= {ENUMERATION_MAX_FRAMES} frames, got {T}")
    start = time.perf_counter()
    masks = ((np.arange(1 << T)[:, None] >> np.arange(T)) & 1).astype(bool)
    ok = masks @ problem.discrepancy >= problem.coverage_target
    masks = masks[ok] if ok.any() else np.ones((1, T), bool)
    _, energy, _ = water_fill_power(problem, masks, mean_power_w)
    best = masks[int(np.argmin(energy))]
    return _result(problem, best, mean_power_w, start, "power_exact")


def _priced_cost(problem: GscloProblem, mu: float) -> np.ndarray:
    """Extra priced cost [T] of an upload: min_p e1(p) + mu p minus the same for the pose
    (an upload that cannot meet its deadline costs inf)."""
    T = problem.num_frames
    both = np.stack([np.ones(T, bool), np.zeros(T, bool)])
    g = np.broadcast_to(problem.channel_gain / problem.link.noise_power_w, both.shape)
    bits = _bits(problem, both)
    lo, hi = _interval(bits, g, problem)
    finite = np.isfinite(lo)
    lo, hi = np.where(finite, lo, 0.0), np.where(finite, hi, 0.0)
    p = _power_at(np.full((2, 1), mu), bits, g, lo, hi, problem)
    priced = np.where(finite, _energy(np.maximum(p, 1e-300), bits, g, problem) + mu * p, np.inf)
    return priced[0] - priced[1]


def solve_power_apo(
    problem: GscloProblem,
    mean_power_w: float,
    config: ApoConfig | None = None,
    multipliers: int = 16,
) -> PowerBudgetSchedule:
    """APO with a Lagrangian outer loop over the power multiplier (module docstring).

    Raises:
        PowerBudgetError: bad budget or ``multipliers`` < 1.
    """
    _check(problem, mean_power_w)
    if multipliers < 1:
        raise PowerBudgetError(f"multipliers={multipliers} must be >= 1")
    config = config or ApoConfig()
    start = time.perf_counter()
    weight, need = problem.discrepancy, problem.coverage_target
    T = problem.num_frames
    # Scale of mu: energy per watt of a typical upload at its deadline (tau for P_c = 0).
    scale = problem.link.deadline_s
    grid = [0.0, *(scale * np.geomspace(1e-3, 1e3, max(multipliers - 1, 1)))]
    candidates = []
    for mu in grid[:multipliers]:
        extra = _priced_cost(problem, mu)
        free = np.isfinite(extra)
        x = np.zeros(T, bool)
        if need > 0.0 and free.any():
            cost = normalised_cost(np.maximum(extra[free], 1e-300), "min")
            relaxed, _ = apo_relaxed(cost, weight[free], need, config)
            chosen = repair(relaxed >= 0.5, cost, weight[free], need)
            x[free] = exchange_search(chosen, cost, weight[free], need, config.max_pair_moves)
        candidates.append(x)
    cands = np.unique(np.stack(candidates), axis=0)
    _, energy, _ = water_fill_power(problem, cands, mean_power_w)
    best = swap_polish(
        cands[int(np.argmin(energy))],
        problem.discrepancy,
        problem.coverage_target,
        lambda moves: water_fill_power(problem, moves, mean_power_w)[1],
    )
    return _result(problem, best, mean_power_w, start, "power_apo")
