"""Baseline GSCLO schedules, same interface as APO (arXiv 2504.13697).

Every baseline fixes the contents ``x`` by its own rule; the power of each frame is then the
closed-form optimum of :mod:`planning.gsclo.power` (the smallest power that meets the
deadline when ``P_c = 0``), exactly as for APO, so energies compare content decisions only.

- RoboMR: upload every frame (the system without a Gaussian-splatting model). A frame whose
  upload cannot meet the deadline at ``P_max`` is still uploaded, at ``P_max``, and late.
  When every upload is deadline-feasible it is feasible for any budget and costs the most
  of all schedules: ``E(x) = sum_t e_t^0 + c.x`` with ``c > 0`` is largest at ``x = 1``.
- Never upload: pose only; feasible iff ``mean_t L_t <= L_th``.
- Threshold: upload the deadline-feasible frames with ``L_t > theta`` (default
  ``theta = L_th``); content-aware, channel-blind. With ``theta = L_th`` every pose-only frame
  has ``L_t <= L_th``, so the budget holds whenever no upload is forced off by the channel.
- Random: upload ``k`` deadline-feasible frames drawn uniformly (seeded); ``k`` is set to
  APO's number of uploads by the caller to compare at the same upload rate.

Raises:
    BaselineError: a negative threshold or upload count, or a count above the frame count.
"""

from __future__ import annotations

import time

import numpy as np

from planning.gsclo.problem import GscloProblem, Schedule, evaluate_schedule


class BaselineError(ValueError):
    """A baseline parameter is out of range."""


def robomr_schedule(problem: GscloProblem) -> Schedule:
    """RoboMR: always upload the image, at the power that just meets the deadline."""
    start = time.perf_counter()
    upload = np.ones(problem.num_frames, dtype=bool)
    return evaluate_schedule(
        problem, upload, method="robomr", solve_time_s=time.perf_counter() - start
    )


def never_upload_schedule(problem: GscloProblem) -> Schedule:
    """Pose only in every frame."""
    start = time.perf_counter()
    upload = np.zeros(problem.num_frames, dtype=bool)
    return evaluate_schedule(
        problem, upload, method="never_upload", solve_time_s=time.perf_counter() - start
    )


def threshold_schedule(problem: GscloProblem, threshold: float | None = None) -> Schedule:
    """Uploads the deadline-feasible frames whose discrepancy exceeds ``threshold``.

    Args:
        threshold: theta >= 0 in the units of L_t; None = the fidelity budget L_th.

    Raises:
        BaselineError: ``threshold`` is negative or not finite.
    """
    theta = problem.fidelity_budget if threshold is None else float(threshold)
    if not (np.isfinite(theta) and theta >= 0.0):
        raise BaselineError(f"threshold={threshold!r} must be finite and >= 0")
    start = time.perf_counter()
    upload = (problem.discrepancy > theta) & problem.upload_feasible
    return evaluate_schedule(
        problem, upload, method="threshold", solve_time_s=time.perf_counter() - start
    )


def random_schedule(problem: GscloProblem, num_uploads: int, seed: int) -> Schedule:
    """Uploads ``num_uploads`` deadline-feasible frames chosen uniformly at random.

    If fewer frames are upload-feasible, all of them are uploaded.

    Raises:
        BaselineError: ``num_uploads`` is negative or above the number of frames.
    """
    if not 0 <= num_uploads <= problem.num_frames:
        raise BaselineError(f"num_uploads={num_uploads} must be in [0, {problem.num_frames}]")
    start = time.perf_counter()
    free = np.flatnonzero(problem.upload_feasible)
    rng = np.random.default_rng(seed)
    picked = rng.choice(free, size=min(num_uploads, free.shape[0]), replace=False)
    upload = np.zeros(problem.num_frames, dtype=bool)
    upload[picked] = True
    return evaluate_schedule(
        problem, upload, method="random", solve_time_s=time.perf_counter() - start
    )
