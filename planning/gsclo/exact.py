"""Exact GSCLO schedules: the reference APO is measured against (arXiv 2504.13697).

Both methods solve the covering knapsack of :mod:`planning.gsclo.problem` to optimality:

    minimise c.x  subject to  L.x >= W,  x in {0, 1}^F   (F: upload-feasible frames)

- ``enumerate`` (T <= 16): every subset of F, vectorised; exact in floating point.
- ``milp``: the same model as a mixed-integer linear program solved by HiGHS through cvxpy,
  built once per number of free frames with ``cp.Parameter`` (DPP) and re-solved, with a zero
  relative MIP gap so "optimal" means optimal. The status is checked; if HiGHS fails, the
  ranking-plus-repair schedule of APO step 1/6 is returned with status "solver_failed".
- ``highs``: the same MILP handed to HiGHS directly (``scipy.optimize.milp``), without a
  modelling layer: what an exact solver costs when nothing but the solver runs. Same gap and
  tolerances, same fallback.

Raises:
    ExactError: an unknown method, or enumeration asked for more than 16 frames.
"""

from __future__ import annotations

import functools
import logging
import time
import warnings
from typing import Literal

import cvxpy as cp
import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp

from planning.gsclo.problem import GscloProblem, Schedule, evaluate_schedule
from planning.gsclo.rounding import normalised_cost, ranking_init, repair

LOG = logging.getLogger(__name__)

ENUMERATION_MAX_FRAMES = 16
ExactMethod = Literal["auto", "enumerate", "milp", "highs"]


class ExactError(ValueError):
    """An unknown exact method, or a window too large for enumeration."""


def enumerate_cover(
    cost: np.ndarray,  # [n]
    weight: np.ndarray,  # [n]
    need: float,
) -> np.ndarray:
    """Cheapest ``x`` [n] bool with ``weight.x >= need`` over all 2^n subsets (n <= 16)."""
    n = cost.shape[0]
    masks = ((np.arange(1 << n)[:, None] >> np.arange(n)) & 1).astype(np.float64)  # [2^n, n]
    total = masks @ cost  # [2^n]
    feasible = masks @ weight >= need
    best = int(np.flatnonzero(feasible)[np.argmin(total[feasible])])
    return masks[best].astype(bool)


@functools.lru_cache(maxsize=32)
def _milp(n: int) -> tuple[cp.Problem, cp.Variable, cp.Parameter, cp.Parameter, cp.Parameter]:
    """The covering MILP over n free frames, built once per n (DPP, re-solved)."""
    x = cp.Variable(n, boolean=True)
    cost = cp.Parameter(n, nonneg=True)
    weight = cp.Parameter(n, nonneg=True)
    need = cp.Parameter()
    problem = cp.Problem(cp.Minimize(cost @ x), [weight @ x >= need])
    return problem, x, cost, weight, need


def milp_cover(cost: np.ndarray, weight: np.ndarray, need: float) -> np.ndarray | None:
    """Optimal ``x`` [n] bool from HiGHS, or None when the solve does not report optimal."""
    problem, x, cost_p, weight_p, need_p = _milp(int(cost.shape[0]))
    cost_p.value, weight_p.value, need_p.value = cost, weight, need
    try:
        # mip_rel_gap 0: HiGHS stops at 1e-4 by default, which is not "exact". No warm start:
        # cvxpy hands HiGHS the previous window's solution as an incumbent (setSolution), and
        # with it HiGHS returned a costlier cover than enumeration on some windows (found by
        # hypothesis: the result depended on the window solved before).
        problem.solve(solver=cp.HIGHS, warm_start=False, mip_rel_gap=0.0,
                      mip_feasibility_tolerance=1e-9)  # fmt: skip
    except cp.SolverError as err:
        LOG.warning("HiGHS failed on the GSCLO MILP: %s", err)
        return None
    if problem.status != cp.OPTIMAL or x.value is None:
        LOG.warning("HiGHS returned status %s on the GSCLO MILP", problem.status)
        return None
    return np.asarray(x.value) > 0.5


def highs_cover(cost: np.ndarray, weight: np.ndarray, need: float) -> np.ndarray | None:
    """Optimal ``x`` [n] bool from HiGHS called through ``scipy.optimize.milp`` (no modelling
    layer), or None when HiGHS does not report an optimum."""
    n = int(cost.shape[0])
    with warnings.catch_warnings():
        # scipy passes options it does not list to HiGHS verbatim, with a RuntimeWarning; the
        # feasibility tolerance is the one milp_cover sets (HiGHS's 1e-6 default lets a cover
        # short by a frame of weight < 1e-6 of the largest pass, found by hypothesis)
        warnings.filterwarnings("ignore", "Unrecognized options", RuntimeWarning)
        result = milp(
            c=cost,
            constraints=LinearConstraint(weight[None, :], lb=need, ub=np.inf),
            integrality=np.ones(n),
            bounds=Bounds(0.0, 1.0),
            options={"mip_rel_gap": 0.0, "presolve": True, "mip_feasibility_tolerance": 1e-9},
        )
    if result.status != 0 or result.x is None:
        LOG.warning("HiGHS (direct) returned status %s on the GSCLO MILP", result.status)
        return None
    return np.asarray(result.x) > 0.5


def solve_exact(problem: GscloProblem, method: ExactMethod = "auto") -> Schedule:
    """Optimal schedule of one window; "auto" enumerates up to 16 frames, else the MILP.

    Raises:
        ExactError: unknown ``method``, or "enumerate" on more than 16 frames.
    """
    if method not in ("auto", "enumerate", "milp", "highs"):
        raise ExactError(f"method={method!r} must be 'auto', 'enumerate', 'milp' or 'highs'")
    if method == "enumerate" and problem.num_frames > ENUMERATION_MAX_FRAMES:
        raise ExactError(
            f"enumerate needs num_frames <= {ENUMERATION_MAX_FRAMES}, got {problem.num_frames}"
        )
    if method == "auto":
        method = "enumerate" if problem.num_frames <= ENUMERATION_MAX_FRAMES else "milp"
    start = time.perf_counter()
    free = np.flatnonzero(problem.upload_feasible)
    upload = np.zeros(problem.num_frames, dtype=bool)
    need = problem.coverage_target
    failed, proven = False, True
    if not problem.fidelity_reachable:
        upload[free] = True
    elif need > 0.0:
        cost = normalised_cost(problem.upload_extra_energy_j[free], "mean")  # HiGHS scaling
        weight = problem.discrepancy[free]
        if method == "enumerate":
            chosen = enumerate_cover(cost, weight, need)
        else:
            # Row scaling: the largest coefficient 1, so that L_t far below HiGHS's feasibility
            # tolerance (1e-6 by default) cannot make "upload nothing" look feasible.
            scale = float(weight.max())
            cover = milp_cover if method == "milp" else highs_cover
            solved = cover(cost, weight / scale, need / scale)
            failed = solved is None
            if solved is None:
                chosen = repair(ranking_init(weight, need) > 0.5, cost, weight, need)
            else:
                # HiGHS's feasibility tolerance may admit a hair's-breadth shortfall.
                proven = float(weight[solved].sum()) >= need
                chosen = solved if proven else repair(solved, cost, weight, need)
        upload[free] = chosen
    return evaluate_schedule(
        problem,
        upload,
        method=f"exact_{method}",
        iterations=1,
        solve_time_s=time.perf_counter() - start,
        proven_optimal=proven and not failed,
        solver_failed=failed,
    )
