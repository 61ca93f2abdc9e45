"""The GSCLO problem of one window of frames and the evaluation of a schedule (arXiv 2504.13697).

GSCLO (Gaussian-splatting content switching and link optimisation) decides, for frames
``t = 1..T`` of a window, whether to upload the real camera image (``x_t = 1``, ``I_t`` bits) or
only the robot's pose (``x_t = 0``, ``S`` bits; the mixed-reality side then shows the
Gaussian-splatting render at that pose), and the transmit power ``p_t``:

    minimise    E = sum_t (p_t + P_c) D_t / R_t                             (J)
    over        x_t in {0, 1},  0 <= p_t <= P_max
    subject to  D_t = x_t I_t + (1 - x_t) S,   R_t = B log2(1 + p_t |h_t|^2 / sigma^2)
                D_t / R_t <= tau                                  (per-frame deadline)
                (1/T) sum_t L_t (1 - x_t) <= L_th                 (fidelity budget)

``L_t >= 0`` is the discrepancy between the render and the real image of frame t (e.g.
1 - SSIM), supplied by the caller. ``P_c = 0`` is the paper's formulation; ``P_c > 0`` is this
project's extension (a radio's rate-independent power) and keeps the structure below.

Structure (derived in :mod:`planning.gsclo.power`): for fixed ``x`` the problem separates per
frame and each frame's optimal power and energy are closed-form, ``e_t^1`` for the upload and
``e_t^0`` for the pose (``p* = p_dl``, ``e* = tau p_dl`` when ``P_c = 0``). With the extra
energy of an upload ``c_t = e_t^1 - e_t^0 > 0`` (``I_t > S`` and ``e*`` increases with ``D``):

    E(x) = sum_t e_t^0 + sum_t c_t x_t,
    fidelity  <=>  sum_t L_t x_t >= W := sum_t L_t - T L_th,

a covering knapsack (the complement ``y = 1 - x`` is a 0/1 knapsack with capacity ``T L_th``):
NP-hard in general, hence APO (:mod:`planning.gsclo.apo`) and the exact references
(:mod:`planning.gsclo.exact`). Frames whose upload cannot meet the deadline at ``P_max`` have
``x_t = 0`` forced; frames whose pose cannot meet it make the instance infeasible: the pose is
sent late at ``P_max`` and reported as a deadline miss. The fidelity budget is reachable iff
the upload-feasible frames alone can cover ``W``.

Raises:
    ProblemError: inputs with wrong shapes, non-finite or out-of-range values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

import numpy as np

from planning.gsclo.channel import LinkConfig, PayloadConfig
from planning.gsclo.power import FrameCost, frame_cost

# Relative tolerance of the fidelity check: sums of T products differ by a few ulps between
# summation orders; 1e-9 is far above that and far below any meaningful change of L_th.
FIDELITY_RTOL = 1e-9

Status = Literal[
    "optimal",
    "feasible",
    "deadline_miss",
    "fidelity_infeasible",
    "violates_constraints",
    "solver_failed",
]


class ProblemError(ValueError):
    """A GSCLO input has a wrong shape, a non-finite value or a value out of range."""


@dataclass(frozen=True, eq=False)
class GscloProblem:
    """One window of T frames. Arrays are copied and made read-only.

    Attributes:
        discrepancy: L_t >= 0, render-vs-real discrepancy (e.g. 1 - SSIM) [T].
        channel_gain: |h_t|^2 > 0, linear channel power gain (path loss x fading) [T].
        fidelity_budget: L_th >= 0, the allowed mean discrepancy of the window.
        link: bandwidth, noise, P_max, deadline and circuit power.
        image_bits: I_t > pose_bits (bits) [T] (a scalar is broadcast).
        pose_bits: S > 0 (bits).
    """

    discrepancy: np.ndarray  # [T]
    channel_gain: np.ndarray  # [T]
    fidelity_budget: float
    link: LinkConfig = field(default_factory=LinkConfig)
    image_bits: np.ndarray | float = PayloadConfig().image_bits  # [T] or scalar
    pose_bits: float = PayloadConfig().pose_bits

    def __post_init__(self) -> None:
        disc = _vector("discrepancy", self.discrepancy, None)
        gain = _vector("channel_gain", self.channel_gain, disc.shape[0])
        try:
            image_t = np.broadcast_to(np.asarray(self.image_bits, dtype=np.float64), disc.shape)
        except ValueError as err:
            raise ProblemError(
                f"image_bits must be a scalar or have {disc.shape[0]} frames"
            ) from err
        image = _vector("image_bits", image_t, disc.shape[0])
        if not np.all(disc >= 0.0):
            raise ProblemError("discrepancy must be >= 0 in every frame")
        if not np.all(gain > 0.0):
            raise ProblemError("channel_gain must be > 0 in every frame (a linear power gain)")
        if not (np.isfinite(self.pose_bits) and self.pose_bits > 0.0):
            raise ProblemError(f"pose_bits={self.pose_bits!r} must be finite and > 0")
        if not np.all(image > self.pose_bits):
            raise ProblemError(f"image_bits must exceed pose_bits={self.pose_bits} in every frame")
        if not (np.isfinite(self.fidelity_budget) and self.fidelity_budget >= 0.0):
            raise ProblemError(f"fidelity_budget={self.fidelity_budget!r} must be finite and >= 0")
        for name, arr in (("discrepancy", disc), ("channel_gain", gain), ("image_bits", image)):
            object.__setattr__(self, name, arr)
        object.__setattr__(self, "fidelity_budget", float(self.fidelity_budget))
        object.__setattr__(self, "pose_bits", float(self.pose_bits))

    @classmethod
    def from_payload(
        cls,
        discrepancy: np.ndarray,  # [T]
        channel_gain: np.ndarray,  # [T]
        fidelity_budget: float,
        link: LinkConfig,
        payload: PayloadConfig,
    ) -> GscloProblem:
        """A window whose image and pose sizes come from a :class:`PayloadConfig`."""
        return cls(
            discrepancy, channel_gain, fidelity_budget, link, payload.image_bits, payload.pose_bits
        )

    @property
    def num_frames(self) -> int:
        return int(self.discrepancy.shape[0])

    @cached_property
    def upload_cost(self) -> FrameCost:
        """Optimal transmission of the image in each frame (x_t = 1)."""
        return frame_cost(self.image_bits, self.channel_gain / self.link.noise_power_w, self.link)

    @cached_property
    def pose_cost(self) -> FrameCost:
        """Optimal transmission of the pose only in each frame (x_t = 0)."""
        pose = np.full(self.num_frames, self.pose_bits)
        return frame_cost(pose, self.channel_gain / self.link.noise_power_w, self.link)

    @property
    def upload_feasible(self) -> np.ndarray:
        """[T] bool: the upload meets the deadline at P_max (else x_t = 0 is forced)."""
        return self.upload_cost.meets_deadline

    @cached_property
    def upload_extra_energy_j(self) -> np.ndarray:
        """c_t = e_t^1 - e_t^0 (J) [T]: what uploading frame t costs on top of the pose."""
        return self.upload_cost.energy_j - self.pose_cost.energy_j

    @property
    def required_coverage(self) -> float:
        """W = sum_t L_t - T L_th: the discrepancy the uploads must remove."""
        return float(self.discrepancy.sum() - self.num_frames * self.fidelity_budget)

    @property
    def coverage_slack(self) -> float:
        """Absolute tolerance on ``sum_t L_t x_t >= W`` (see FIDELITY_RTOL)."""
        return self.num_frames * FIDELITY_RTOL * max(1.0, self.fidelity_budget)

    @property
    def coverage_target(self) -> float:
        """What the solvers demand of ``sum_t L_t x_t``: W less half the slack, so that their
        schedules pass the fidelity check with a margin against rounding."""
        return self.required_coverage - 0.5 * self.coverage_slack

    @property
    def fidelity_reachable(self) -> bool:
        """Whether uploading every upload-feasible frame meets the fidelity budget."""
        return float(self.discrepancy[self.upload_feasible].sum()) >= self.coverage_target


@dataclass(frozen=True, eq=False)
class Schedule:
    """A schedule for one window and what it achieves.

    Attributes:
        method: name of the method that produced it.
        upload: x_t [T] bool, True = upload the image, False = pose only.
        power_w: transmit power p_t (W) [T].
        energy_j: energy of each frame (J) [T].
        latency_s: transmit time D_t / R_t (s) [T].
        total_energy_j: sum of energy_j (J).
        fidelity: achieved (1/T) sum_t L_t (1 - x_t).
        fidelity_budget: L_th of the problem.
        fidelity_met: fidelity <= L_th (relative tolerance FIDELITY_RTOL).
        deadline_miss: [T] bool, frames sent late (their content cannot meet tau at P_max).
        iterations: solver iterations (APO: linear programs solved; others 0 or 1).
        solve_time_s: wall time of the method (s).
        status: "optimal" (proven), "feasible", "deadline_miss" (the channel forces late poses;
            the rest solved), "fidelity_infeasible" (no schedule meets L_th; the returned one
            uploads every feasible frame), "violates_constraints" (a baseline broke a constraint
            some schedule meets), "solver_failed" (a fallback schedule is returned).
        message: human-readable explanation of the status.
    """

    method: str
    upload: np.ndarray  # [T] bool
    power_w: np.ndarray  # [T]
    energy_j: np.ndarray  # [T]
    latency_s: np.ndarray  # [T]
    total_energy_j: float
    fidelity: float
    fidelity_budget: float
    fidelity_met: bool
    deadline_miss: np.ndarray  # [T] bool
    iterations: int
    solve_time_s: float
    status: Status
    message: str

    @property
    def num_deadline_misses(self) -> int:
        return int(self.deadline_miss.sum())

    @property
    def upload_rate(self) -> float:
        """Fraction of frames uploaded."""
        return float(self.upload.mean())


def evaluate_schedule(
    problem: GscloProblem,
    upload: np.ndarray,  # [T] bool
    *,
    method: str,
    iterations: int = 0,
    solve_time_s: float = 0.0,
    proven_optimal: bool = False,
    solver_failed: bool = False,
) -> Schedule:
    """Powers, energies, fidelity and status of the contents ``upload`` on ``problem``.

    Raises:
        ProblemError: ``upload`` is not a [T] boolean array.
    """
    x = np.asarray(upload)
    if x.shape != (problem.num_frames,) or x.dtype != np.bool_:
        raise ProblemError(f"upload must be a bool array of shape ({problem.num_frames},)")
    up, pose = problem.upload_cost, problem.pose_cost
    power = np.where(x, up.power_w, pose.power_w)
    energy = np.where(x, up.energy_j, pose.energy_j)
    latency = np.where(x, up.latency_s, pose.latency_s)
    miss = np.where(x, ~up.meets_deadline, ~pose.meets_deadline)
    fidelity = float(np.mean(problem.discrepancy * ~x))
    budget = problem.fidelity_budget
    fidelity_met = fidelity <= budget + FIDELITY_RTOL * max(1.0, budget)
    forced = int((~pose.meets_deadline).sum())
    chosen = int((miss & pose.meets_deadline).sum())
    if solver_failed:
        status, message = "solver_failed", "the solver failed; a feasible fallback is returned"
    elif not problem.fidelity_reachable:
        status = "fidelity_infeasible"
        message = f"no schedule meets fidelity_budget={budget}; this one reaches {fidelity:.4g}"
    elif chosen or not fidelity_met:
        status = "violates_constraints"
        message = f"{chosen} avoidable late uploads, fidelity {fidelity:.4g} (budget {budget})"
    elif forced:
        status = "deadline_miss"
        message = (
            f"{forced} of {problem.num_frames} poses cannot meet deadline_s="
            f"{problem.link.deadline_s} at max_power_w={problem.link.max_power_w}"
        )
    else:
        status = "optimal" if proven_optimal else "feasible"
        message = "all constraints met"
    return Schedule(
        method=method,
        upload=x.copy(),
        power_w=power,
        energy_j=energy,
        latency_s=latency,
        total_energy_j=float(energy.sum()),
        fidelity=fidelity,
        fidelity_budget=budget,
        fidelity_met=bool(fidelity_met),
        deadline_miss=miss,
        iterations=int(iterations),
        solve_time_s=float(solve_time_s),
        status=status,
        message=message,
    )


def _vector(name: str, value: np.ndarray, length: int | None) -> np.ndarray:
    """A read-only float64 copy of a finite 1-D array of the expected length."""
    arr = np.array(value, dtype=np.float64)
    if arr.ndim != 1 or arr.shape[0] < 1 or (length is not None and arr.shape[0] != length):
        want = "at least 1" if length is None else str(length)
        raise ProblemError(f"{name} must be a 1-D array of {want} frames, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ProblemError(f"{name} must be finite in every frame")
    arr.setflags(write=False)
    return arr
