"""Motion-assisted detection (MAD) loop logic of CROA (arXiv 2412.18453): a pure control law
``decide(observation, state) -> (decision, state)`` that says, once per detection cycle,
whether to plan and drive to a new viewpoint or to stop.

Rules, in order:

1. DONE_DETECTED when the target has been detected with ``score >= min_confidence`` and
   estimated occlusion ``<= max_occlusion`` for ``confirm_cycles`` consecutive cycles
   (hysteresis against a single lucky frame).
2. DONE_BUDGET when a budget is spent: ``max_cycles`` plan cycles, ``max_time_s`` since the
   first cycle, or ``max_distance_m`` driven (sum of the distances between the robot positions
   of consecutive cycles).
3. PLAN otherwise: the target is missing, low-confidence or occluded above the threshold.
   The caller then plans (target estimate: the detection, or a prior when missing), drives the
   path and calls ``decide`` again with the next detection.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

import numpy as np

from planning.croa.validation import check_int, check_number


class MadError(ValueError):
    """A MAD setting or observation is malformed (the message names the field and limit)."""


@dataclass(frozen=True)
class MadConfig:
    """Thresholds and budgets of the MAD loop.

    Attributes:
        min_confidence: least detector score of a confident detection, in [0, 1].
        max_occlusion: largest estimated occlusion of a confident detection, in [0, 1].
        confirm_cycles: consecutive confident cycles needed to stop, in [1, 100].
        max_cycles: plan cycles at most, in [1, 10000].
        max_time_s: time budget from the first cycle (s), in (0, 1e6].
        max_distance_m: driving budget (m), in (0, 1e6].
    """

    min_confidence: float = 0.5
    max_occlusion: float = 0.3
    confirm_cycles: int = 1
    max_cycles: int = 20
    max_time_s: float = 60.0
    max_distance_m: float = 50.0

    def __post_init__(self) -> None:
        for name, lo, hi in (
            ("min_confidence", 0.0, 1.0),
            ("max_occlusion", 0.0, 1.0),
            ("max_time_s", 1e-9, 1e6),
            ("max_distance_m", 1e-9, 1e6),
        ):
            check_number(self, name, lo, hi, MadError)
        for name, hi in (("confirm_cycles", 100), ("max_cycles", 10000)):
            check_int(self, name, 1, hi, MadError)


@dataclass(frozen=True)
class MadObservation:
    """One detection cycle.

    Attributes:
        stamp_ns: time of the cycle (int ns).
        robot_xy_m: (x, y) robot position (m).
        target_score: detector confidence of the target in [0, 1], None when not detected.
        target_occlusion: estimated occlusion of the target in [0, 1] (e.g. the planner's
            exact occlusion at the current pose), None when unknown (treated as occluded).
    """

    stamp_ns: int
    robot_xy_m: tuple[float, float]
    target_score: float | None
    target_occlusion: float | None = None

    def __post_init__(self) -> None:
        if isinstance(self.stamp_ns, bool) or not isinstance(self.stamp_ns, int | np.integer):
            raise MadError(f"stamp_ns={self.stamp_ns!r}: must be an int (ns)")
        if len(self.robot_xy_m) != 2 or not all(math.isfinite(v) for v in self.robot_xy_m):
            raise MadError(f"robot_xy_m={self.robot_xy_m!r}: must be two finite numbers")
        for name in ("target_score", "target_occlusion"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and 0.0 <= value <= 1.0):
                raise MadError(f"{name}={value!r}: must be None or in [0, 1]")


class MadAction(enum.Enum):
    PLAN = "plan"  # plan a new viewpoint and drive there
    DONE_DETECTED = "done_detected"  # confidently detected: stop
    DONE_BUDGET = "done_budget"  # budget spent: stop


@dataclass(frozen=True)
class MadDecision:
    action: MadAction
    reason: str


@dataclass(frozen=True)
class MadState:
    """What ``decide`` carries between cycles.

    Attributes:
        cycles: PLAN decisions so far. first_stamp_ns: stamp of the first cycle.
        last_xy_m: robot position of the previous cycle. distance_m: driven so far (m).
        confident_streak: consecutive confident cycles.
    """

    cycles: int = 0
    first_stamp_ns: int | None = None
    last_xy_m: tuple[float, float] | None = None
    distance_m: float = 0.0
    confident_streak: int = 0


class MadController:
    """The MAD control law (module docstring); pure: all memory is in MadState."""

    def __init__(self, config: MadConfig | None = None) -> None:
        self.config = config or MadConfig()

    def decide(
        self, observation: MadObservation, state: MadState | None = None
    ) -> tuple[MadDecision, MadState]:
        c, s = self.config, state or MadState()
        xy = (float(observation.robot_xy_m[0]), float(observation.robot_xy_m[1]))
        moved = 0.0 if s.last_xy_m is None else math.dist(xy, s.last_xy_m)
        first = observation.stamp_ns if s.first_stamp_ns is None else s.first_stamp_ns
        score, occ = observation.target_score, observation.target_occlusion
        confident = (
            score is not None
            and score >= c.min_confidence
            and occ is not None
            and occ <= c.max_occlusion
        )
        streak = s.confident_streak + 1 if confident else 0
        nxt = MadState(s.cycles, first, xy, s.distance_m + moved, streak)
        elapsed_s = (observation.stamp_ns - first) * 1e-9
        if streak >= c.confirm_cycles:
            return MadDecision(
                MadAction.DONE_DETECTED,
                f"target confident for {streak} cycle(s): score {score:.2f}, occlusion {occ:.2f}",
            ), nxt
        for spent, used, limit in (
            ("cycles", s.cycles, c.max_cycles),
            ("time_s", elapsed_s, c.max_time_s),
            ("distance_m", nxt.distance_m, c.max_distance_m),
        ):
            if used >= limit:
                return MadDecision(
                    MadAction.DONE_BUDGET, f"budget {spent} spent: {used:.4g} >= {limit:.4g}"
                ), nxt
        if score is None:
            why = "target missing"
        elif score < c.min_confidence:
            why = f"low confidence {score:.2f} < {c.min_confidence}"
        elif occ is None or occ > c.max_occlusion:
            why = "occlusion unknown" if occ is None else f"occluded {occ:.2f} > {c.max_occlusion}"
        else:
            why = f"confirming ({streak}/{c.confirm_cycles})"
        return MadDecision(MadAction.PLAN, why), MadState(
            nxt.cycles + 1, first, xy, nxt.distance_m, streak
        )
