"""Sliding-window GSCLO scheduler: the control law a node calls once per camera frame.

Contract. ``GscloScheduler(config).decide(observation, state) -> (decision, state)`` is a pure
function (arXiv 2504.13697, solved per window by APO or exactly). The node calls it once per
camera frame, in stamp order, and applies ``decision``: upload the image or only the pose, at
``decision.power_w``. The observation covers a horizon of ``H`` frames: index 0 is the frame
being sent now (its measured render discrepancy and channel gain), indices ``1..H-1`` are the
node's forecasts for the next frames (for example renders at the planned poses and the
current gain repeated); ``H = 1`` is a myopic scheduler.

Window constraint. The fidelity budget is a rolling mean over ``T = window_frames`` frames: the
``M = T - H`` most recent committed frames (kept in the state) and the ``H`` observed ones,

    (1/(M + H)) [ sum_past L_s (1 - x_s) + sum_{t < H} L_t (1 - x_t) ] <= L_th,

so the horizon gets the budget ``L_th' = ((M + H) L_th - sum_past L_s (1 - x_s)) / H`` (clamped
at 0: when the past has overspent, the horizon uploads all it can and the plan's status says
"fidelity_infeasible"). Only frame 0 of the plan is committed (receding horizon); until the
window has filled, ``M`` is the number of frames seen so far.

``budget_mode="block"`` is the paper's per-window budget instead: consecutive blocks of
``T`` frames must each meet ``L_th`` on average. The past is then the committed frames of
the current block only, the horizon is cut at the block's end (so ``H = T`` at a block's first
frame plans the whole block with forecasts), and the same formula gives the horizon's budget:
the frames after the horizon are assumed to spend ``L_th`` each.

Raises:
    SchedulerError: a bad configuration, or an observation with the wrong shape, a horizon
        longer than the window, or a stamp not after the previous one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from planning.gsclo.apo import ApoConfig, solve_apo
from planning.gsclo.channel import LinkConfig, PayloadConfig
from planning.gsclo.exact import solve_exact
from planning.gsclo.problem import GscloProblem, ProblemError, Schedule


class SchedulerError(ValueError):
    """A scheduler setting or observation is out of range."""


@dataclass(frozen=True)
class SchedulerConfig:
    """Settings of the sliding-window scheduler.

    Attributes:
        fidelity_budget: L_th >= 0, the allowed rolling mean discrepancy.
        window_frames: T >= 1, frames the budget averages over.
        method: "apo" (default) or "exact" (enumeration up to 16 frames, else MILP).
        budget_mode: "rolling" (every T consecutive frames) or "block" (consecutive blocks).
        link: the uplink (bandwidth, noise, P_max, deadline, circuit power).
        payload: image and pose sizes (used when the observation gives no image sizes).
        apo: APO settings.
    """

    fidelity_budget: float = 0.1
    window_frames: int = 30
    method: Literal["apo", "exact"] = "apo"
    budget_mode: Literal["rolling", "block"] = "rolling"
    link: LinkConfig = field(default_factory=LinkConfig)
    payload: PayloadConfig = field(default_factory=PayloadConfig)
    apo: ApoConfig = field(default_factory=ApoConfig)

    def __post_init__(self) -> None:
        if not (np.isfinite(self.fidelity_budget) and self.fidelity_budget >= 0.0):
            raise SchedulerError(f"fidelity_budget={self.fidelity_budget!r} must be >= 0")
        if not isinstance(self.window_frames, int) or not 1 <= self.window_frames <= 100_000:
            raise SchedulerError(f"window_frames={self.window_frames!r} must be in [1, 100000]")
        if self.method not in ("apo", "exact"):
            raise SchedulerError(f"method={self.method!r} must be 'apo' or 'exact'")
        if self.budget_mode not in ("rolling", "block"):
            raise SchedulerError(f"budget_mode={self.budget_mode!r} must be 'rolling' or 'block'")


@dataclass(frozen=True, eq=False)
class GscloObservation:
    """What the node knows when frame 0 is to be sent.

    Attributes:
        stamp_ns: time stamp of frame 0 (ns).
        discrepancy: L_t >= 0 of frame 0 and the forecast frames [H].
        channel_gain: |h_t|^2 > 0 (linear) of frame 0 and the forecast frames [H].
        image_bits: image sizes I_t (bits) [H], or None for the configured payload.
    """

    stamp_ns: int
    discrepancy: np.ndarray  # [H]
    channel_gain: np.ndarray  # [H]
    image_bits: np.ndarray | None = None  # [H]


@dataclass(frozen=True)
class GscloState:
    """The committed frames the rolling budget still covers (oldest first).

    Attributes:
        past_discrepancy: L_s of the last committed frames, at most window_frames - 1.
        past_upload: x_s of the same frames.
        last_stamp_ns: stamp of the last committed frame, None before the first.
    """

    past_discrepancy: tuple[float, ...] = ()
    past_upload: tuple[bool, ...] = ()
    last_stamp_ns: int | None = None


@dataclass(frozen=True)
class GscloDecision:
    """What to send for frame 0.

    Attributes:
        stamp_ns: the frame's stamp (ns).
        upload: True = the image, False = only the pose.
        power_w: transmit power (W).
        energy_j: transmit energy of the frame (J).
        deadline_miss: the frame cannot meet the deadline at P_max (sent late).
        horizon_budget: L_th' the horizon was solved with.
        plan: the schedule of the whole horizon (status, solve time, iterations).
    """

    stamp_ns: int
    upload: bool
    power_w: float
    energy_j: float
    deadline_miss: bool
    horizon_budget: float
    plan: Schedule


class GscloScheduler:
    """Receding-horizon GSCLO control law (see the module docstring for the contract)."""

    def __init__(self, config: SchedulerConfig) -> None:
        self.config = config

    def decide(
        self, observation: GscloObservation, state: GscloState
    ) -> tuple[GscloDecision, GscloState]:
        """Plans the horizon, commits frame 0 and returns the next state.

        Raises:
            SchedulerError: malformed observation (see the module docstring).
        """
        cfg = self.config
        disc = np.asarray(observation.discrepancy, dtype=np.float64)  # [H]
        if disc.ndim != 1 or not 1 <= disc.shape[0] <= cfg.window_frames:
            raise SchedulerError(
                f"discrepancy has shape {disc.shape}; it must be 1-D with 1 to "
                f"window_frames={cfg.window_frames} frames"
            )
        if state.last_stamp_ns is not None and observation.stamp_ns <= state.last_stamp_ns:
            raise SchedulerError(
                f"stamp_ns={observation.stamp_ns} must be after {state.last_stamp_ns}"
            )
        gain = np.asarray(observation.channel_gain, dtype=np.float64)
        image = cfg.payload.image_bits if observation.image_bits is None else observation.image_bits
        if cfg.budget_mode == "block":  # cut the horizon at the block's end
            remaining = cfg.window_frames - len(state.past_discrepancy)
            disc, gain = disc[:remaining], gain[:remaining]
            if np.ndim(image) == 1:
                image = np.asarray(image)[:remaining]
        horizon = disc.shape[0]
        keep = cfg.window_frames - horizon
        past_l = np.asarray(_tail(state.past_discrepancy, keep), dtype=np.float64)  # [M]
        past_x = np.asarray(_tail(state.past_upload, keep), dtype=bool)  # [M]
        debt = float(np.sum(past_l * ~past_x))
        budget = max(0.0, ((past_l.shape[0] + horizon) * cfg.fidelity_budget - debt) / horizon)
        try:
            problem = GscloProblem(disc, gain, budget, cfg.link, image, cfg.payload.pose_bits)
        except ProblemError as err:
            raise SchedulerError(f"observation: {err}") from err
        plan = solve_apo(problem, cfg.apo) if cfg.method == "apo" else solve_exact(problem)
        upload = bool(plan.upload[0])
        decision = GscloDecision(
            stamp_ns=observation.stamp_ns,
            upload=upload,
            power_w=float(plan.power_w[0]),
            energy_j=float(plan.energy_j[0]),
            deadline_miss=bool(plan.deadline_miss[0]),
            horizon_budget=budget,
            plan=plan,
        )
        limit = cfg.window_frames - 1
        past_l_next = (*state.past_discrepancy, float(disc[0]))
        past_x_next = (*state.past_upload, upload)
        if cfg.budget_mode == "block" and len(past_l_next) == cfg.window_frames:
            past_l_next, past_x_next = (), ()  # the block is complete: the next one starts
        next_state = GscloState(
            past_discrepancy=_tail(past_l_next, limit),
            past_upload=_tail(past_x_next, limit),
            last_stamp_ns=observation.stamp_ns,
        )
        return decision, next_state


def _tail(items: tuple, count: int) -> tuple:
    """The last ``count`` >= 0 items of a tuple (all of them if it is shorter)."""
    return items[max(0, len(items) - count) :] if count > 0 else ()
