"""GSCLO with frames coupled by a shared airtime budget (arXiv 2504.13697, extended).

The paper's problem separates per frame once the contents ``x`` are fixed, which is why the
closed-form power of :mod:`planning.gsclo.power` is optimal there. A budget shared by the
frames breaks that. Here the window's frames share the uplink for at most ``airtime_s``
seconds in total (the robot's TDMA share of the cell, for example):

    minimise    E = sum_t p_t l_t                                          (J)
    subject to  l_t = D_t / R_t(p_t),  D_t = x_t I_t + (1 - x_t) S,  R_t = B log2(1 + p_t g_t)
                l_t <= tau,  0 <= p_t <= P_max,  sum_t l_t <= airtime_s       (coupling)
                (1/T) sum_t L_t (1 - x_t) <= L_th,  x_t in {0, 1}.

In terms of the airtime ``l`` the energy of a frame is ``e(l) = l (2^(D / (B l)) - 1) / g``,
convex and decreasing (the perspective of a convex function), between ``l_min`` (power
P_max) and ``tau``. For fixed ``x`` the powers are a convex resource allocation solved by
water-filling: with the multiplier ``lambda >= 0`` of the airtime budget, ``e'(l) = -lambda``
gives, with ``u = D ln 2 / (B l)``,

    (u - 1) e^(u - 1) = (lambda g - 1) / e   =>   u = 1 + W0((lambda g - 1) / e),

clipped to ``[l_min, tau]``; ``lambda`` is found by bisection so that the budget holds. When
``sum_t tau <= airtime_s`` the budget is slack, ``lambda = 0``, ``l = tau`` and the closed
form of the uncoupled problem is recovered.

* :func:`solve_coupled_apo`: APO with a Lagrangian outer loop. For each ``lambda`` on a
  geometric grid the frames decouple again with the priced cost ``min_l e(l) + lambda l``; APO
  (steps 1-6 of :mod:`planning.gsclo.apo`) solves the covering knapsack of those costs; each
  resulting ``x`` is scored exactly by water-filling, the best feasible one is kept and
  polished by single swaps scored the same way.
* :func:`solve_coupled_exact`: every subset of the frames (T <= 16), each scored by
  water-filling, vectorised.

Raises:
    CoupledError: a bad budget, or enumeration on more than 16 frames.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
from scipy.special import lambertw

from planning.gsclo.apo import ApoConfig, apo_relaxed
from planning.gsclo.power import LN2
from planning.gsclo.problem import GscloProblem
from planning.gsclo.rounding import exchange_search, normalised_cost, repair, swap_polish

ENUMERATION_MAX_FRAMES = 16


class CoupledError(ValueError):
    """A coupled-problem setting is out of range."""


@dataclass(frozen=True)
class CoupledSchedule:
    """A schedule of the airtime-coupled problem.

    Attributes:
        upload: x_t [T] bool.
        airtime_s: transmit time per frame (s) [T].
        power_w: transmit power per frame (W) [T].
        total_energy_j: sum_t p_t l_t (J); inf when no allocation meets the budget.
        multiplier: lambda of the airtime budget (J/s); 0 when it is slack.
        feasible: the airtime budget, deadlines and fidelity budget all hold.
        solve_time_s: wall time (s).
        method: "coupled_apo" or "coupled_exact".
    """

    upload: np.ndarray
    airtime_s: np.ndarray
    power_w: np.ndarray
    total_energy_j: float
    multiplier: float
    feasible: bool
    solve_time_s: float
    method: str


def _bits(problem: GscloProblem, upload: np.ndarray) -> np.ndarray:  # [S, T] from [S, T] bool
    image = np.broadcast_to(problem.image_bits, upload.shape[-1:])
    return np.where(upload, image, problem.pose_bits)


def _airtime_at(
    bits: np.ndarray, g: np.ndarray, lam: np.ndarray, problem: GscloProblem
) -> tuple[np.ndarray, np.ndarray]:
    """Water-filling airtime [S, T] at multipliers ``lam`` [S, 1], and l_min [S, T]."""
    link = problem.link
    a = bits * LN2 / link.bandwidth_hz  # D ln2 / B (s)
    l_min = bits / (link.bandwidth_hz * np.log2(1.0 + link.max_power_w * g))
    with np.errstate(over="ignore", invalid="ignore"):
        u = 1.0 + lambertw((lam * g - 1.0) / math.e, k=0).real
        free = np.where(u > 0.0, a / u, np.inf)
    return np.clip(free, l_min, link.deadline_s), l_min


def water_fill(
    problem: GscloProblem,
    upload: np.ndarray,  # [S, T] bool, a batch of content choices
    airtime_s: float,
    iterations: int = 100,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Optimal airtime [S, T], energy [S] (inf where infeasible) and multiplier [S] for each
    content choice under the airtime budget (module docstring)."""
    x = np.atleast_2d(upload)
    g = problem.channel_gain / problem.link.noise_power_w  # [T]
    bits = _bits(problem, x)
    zero = np.zeros((x.shape[0], 1))
    airtime, l_min = _airtime_at(bits, g, zero, problem)
    lam = zero.copy()
    over = airtime.sum(axis=1) > airtime_s
    if over.any():  # bisection on log lambda where the budget binds
        lo, hi = np.full((x.shape[0], 1), -60.0), np.full((x.shape[0], 1), 60.0)
        for _ in range(iterations):
            mid = 0.5 * (lo + hi)
            used = _airtime_at(bits, g, np.exp(mid), problem)[0].sum(axis=1, keepdims=True)
            lo, hi = np.where(used > airtime_s, mid, lo), np.where(used > airtime_s, hi, mid)
        lam = np.where(over[:, None], np.exp(hi), 0.0)
        airtime = _airtime_at(bits, g, lam, problem)[0]
    energy = (airtime * np.expm1(bits * LN2 / (problem.link.bandwidth_hz * airtime)) / g).sum(1)
    feasible = l_min.sum(axis=1) <= airtime_s * (1.0 + 1e-9)
    return airtime, np.where(feasible, energy, np.inf), lam[:, 0]


def _priced_cost(problem: GscloProblem, lam: float) -> np.ndarray:
    """Extra priced cost [T] of an upload, min_l e1(l) + lam l minus the same for the pose."""
    T = problem.num_frames
    both = np.stack([np.ones(T, bool), np.zeros(T, bool)])
    g = problem.channel_gain / problem.link.noise_power_w
    bits = _bits(problem, both)
    airtime, _ = _airtime_at(bits, g, np.full((2, 1), lam), problem)
    energy = airtime * np.expm1(bits * LN2 / (problem.link.bandwidth_hz * airtime)) / g
    priced = energy + lam * airtime
    return priced[0] - priced[1]


def _result(problem, upload, airtime_s, start, method) -> CoupledSchedule:
    air, energy, lam = water_fill(problem, upload[None], airtime_s)
    g = problem.channel_gain / problem.link.noise_power_w
    bits = _bits(problem, upload)
    power = np.expm1(bits * LN2 / (problem.link.bandwidth_hz * air[0])) / g
    fidelity = float(np.mean(problem.discrepancy * ~upload))
    ok = bool(np.isfinite(energy[0])) and fidelity <= problem.fidelity_budget + 1e-9
    return CoupledSchedule(
        upload, air[0], power, float(energy[0]), float(lam[0]), ok,
        time.perf_counter() - start, method,
    )  # fmt: skip


def _check(problem: GscloProblem, airtime_s: float) -> None:
    if not (math.isfinite(airtime_s) and airtime_s > 0.0):
        raise CoupledError(f"airtime_s={airtime_s!r} must be finite and > 0")
    if problem.link.circuit_power_w != 0.0:
        raise CoupledError("the coupled problem is stated for circuit_power_w = 0")


def solve_coupled_exact(problem: GscloProblem, airtime_s: float) -> CoupledSchedule:
    """The optimum over every content choice (T <= 16), each scored by water-filling.

    Raises:
        CoupledError: bad budget or more than 16 frames.
    """
    _check(problem, airtime_s)
    T = problem.num_frames
    if T > ENUMERATION_MAX_FRAMES:
        raise CoupledError(f"enumeration needs <= {ENUMERATION_MAX_FRAMES} frames, got {T}")
    start = time.perf_counter()
    masks = ((np.arange(1 << T)[:, None] >> np.arange(T)) & 1).astype(bool)  # [2^T, T]
    ok = masks @ problem.discrepancy >= problem.coverage_target
    masks = masks[ok] if ok.any() else np.ones((1, T), bool)
    _, energy, _ = water_fill(problem, masks, airtime_s)
    best = masks[int(np.argmin(energy))]
    return _result(problem, best, airtime_s, start, "coupled_exact")


def solve_coupled_apo(
    problem: GscloProblem,
    airtime_s: float,
    config: ApoConfig | None = None,
    multipliers: int = 16,
) -> CoupledSchedule:
    """APO with a Lagrangian outer loop over the airtime multiplier (module docstring).

    Raises:
        CoupledError: bad budget or ``multipliers`` < 1.
    """
    _check(problem, airtime_s)
    if multipliers < 1:
        raise CoupledError(f"multipliers={multipliers} must be >= 1")
    config = config or ApoConfig()
    start = time.perf_counter()
    T, weight, need = problem.num_frames, problem.discrepancy, problem.coverage_target
    # Scale of lambda: the energy per second of airtime of a typical upload at its deadline.
    scale = float(np.median(problem.upload_cost.energy_j)) / problem.link.deadline_s
    grid = [0.0, *(scale * np.geomspace(1e-3, 1e3, max(multipliers - 1, 1)))]
    candidates = []
    for lam in grid[:multipliers]:
        cost = normalised_cost(_priced_cost(problem, lam), "min")
        if need <= 0.0:
            x = np.zeros(T, bool)
        else:
            relaxed, _ = apo_relaxed(cost, weight, need, config)
            x = repair(relaxed >= 0.5, cost, weight, need)
            x = exchange_search(x, cost, weight, need, config.max_pair_moves)
        candidates.append(x)
    cands = np.unique(np.stack(candidates), axis=0)
    _, energy, _ = water_fill(problem, cands, airtime_s)
    best = cands[int(np.argmin(energy))]
    best = swap_polish(
        best,
        weight,
        need,
        lambda moves: water_fill(problem, moves, airtime_s)[1],
    )
    return _result(problem, best, airtime_s, start, "coupled_apo")
