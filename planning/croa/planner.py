"""CROA: clutter-resilient occlusion avoidance (arXiv 2412.18453), one planning cycle.

``CroaPlanner.plan(observation, state) -> (PlanResult, state)``:

1. Check the inputs; keep the obstacles the robot can reach (plus the target itself).
2. Build the 2.5D shadows of the occluders and the DC occlusion surrogate
   (planning/croa/surrogate.py).
3. Viewpoint selection: pure-pursuit rollouts toward candidate viewpoints (rings around the
   robot and the target), braking in place, and the rest of the previous cycle's plan (warm
   start) are scored with the exact occlusion at their end (planning/croa/viewpoints.py).
   The guide view is the best-scored rollout's end when it lowers the exact occlusion by at
   least ``explore_below_gain`` (exploit), else the next-best view anywhere around the target or
   the robot (explore, viewpoints.best_viewpoint): plans end at rest, so one horizon reaches
   only a few metres and without a guide the robot could stall where nothing nearby helps.
   The best start by score plus ``w_guide |view - guide|`` starts the loop.
4. CCP + bilevel OBCA loop (planning/croa/scp.py) on the program built once
   (planning/croa/problem.py).
5. Verify the result with exact geometry; on a failed solve or a clearance below
   ``min_clearance_m`` fall back (planning/croa/safety.py).

The planner object owns the cvxpy problem (built in ``__init__``, canonicalized by cvxpy at the
first solve: the first ``plan`` takes about a second more); everything that changes between
cycles travels in ``PlannerState``, and ``last_outcome`` keeps the latest loop's diagnostics.
Not thread-safe: one planner per thread.
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np

from planning.croa.config import CroaConfig
from planning.croa.kinematics import lidar_xy
from planning.croa.safety import (
    check_observation,
    conclude,
    cycle_obstacles,
    previous_plan,
    reach_m,
    start_rear,
    stop_plan,
    view_occlusion,
)
from planning.croa.scp import Iterate, ScpContext, ScpOutcome, ScpSolver
from planning.croa.surrogate import build_shadows
from planning.croa.types import PlannerState, PlanObservation, PlanResult, PlanTimings
from planning.croa.viewpoints import (
    best_viewpoint,
    pursuit_candidates,
    reach_candidates,
    ring_candidates,
    score_controls,
)


class CroaPlanner:
    """Occlusion-minimizing trajectory planner (module docstring)."""

    name = "croa"

    def __init__(self, config: CroaConfig | None = None) -> None:
        self.config = config or CroaConfig()
        self._solver = ScpSolver(self.config, "occlusion")
        self.last_outcome: ScpOutcome | None = None  # diagnostics of the latest cycle

    def context(self, observation: PlanObservation) -> ScpContext:
        """Cycle data: start state, reachable obstacles, shadows (no guide yet)."""
        c = self.config
        rear0 = start_rear(observation, c)
        target = observation.target_box
        here = lidar_xy(rear0, c.robot)
        far = reach_m(c) + float(np.linalg.norm(here - target[:2])) + c.surrogate.transition_m
        shadows = build_shadows(target, observation.obstacles, c.robot.lidar_z_m, c.surrogate,
                                far + c.robot.length_m, self.candidates(observation))  # fmt: skip
        return ScpContext(rear0, observation.robot.steer_rad, cycle_obstacles(observation, c),
                          shadows, target[:2].copy())  # fmt: skip

    def candidates(self, observation: PlanObservation) -> np.ndarray:  # [N, 2]
        """Candidate viewpoints: the current one, the reachable rings and the target rings."""
        c = self.config
        here = lidar_xy(start_rear(observation, c), c.robot)
        return np.vstack([here, reach_candidates(here, reach_m(c), c),
                          ring_candidates(observation.target_box, c)])  # fmt: skip

    def initial_guess(
        self, observation: PlanObservation, state: PlannerState | None, ctx: ScpContext
    ) -> tuple[Iterate, np.ndarray]:
        """Viewpoint selection: the best-scored start among the candidates' rollouts, braking
        and the previous plan, and the guide view (exploit the best-scored rollout's end if it
        lowers the exact occlusion by ``explore_below_gain``, else explore toward the next-best
        view)."""
        c, w = self.config, self.config.weights
        guesses = [pursuit_candidates(self.candidates(observation), observation, c),
                   stop_plan(observation, c)[1][None]]  # fmt: skip
        previous = previous_plan(observation, state, c)
        if previous is not None:
            guesses.append(previous[1][None])
        scored = score_controls(np.concatenate(guesses), observation, ctx.obstacles, c)
        pick = int(np.argmin(scored.score))
        now = view_occlusion(lidar_xy(ctx.rear0, c.robot)[None], observation, c)[0]
        guide = scored.view_xy[pick]
        if scored.occlusion[pick] > now - c.viewpoints.explore_below_gain:
            far_view = best_viewpoint(observation, ctx.obstacles, c)
            guide = guide if far_view is None else far_view
        score = scored.score + w.guide * np.linalg.norm(scored.view_xy - guide, axis=1)
        return self._solver.evaluate(scored.controls[int(np.argmin(score))], ctx), guide

    def plan(
        self, observation: PlanObservation, state: PlannerState | None = None
    ) -> tuple[PlanResult, PlannerState]:
        """One cycle (module docstring). Raises CroaInputError for malformed inputs only."""
        start = time.perf_counter()
        c = self.config
        check_observation(observation, c)
        ctx = self.context(observation)
        initial, guide = self.initial_guess(observation, state, ctx)
        ctx = replace(ctx, guide_xy=guide)
        setup_ms = 1e3 * (time.perf_counter() - start)
        out = self._solver.run(initial, ctx)
        self.last_outcome = out
        timings = PlanTimings(
            1e3 * (time.perf_counter() - start), setup_ms, out.solve_ms, out.num_solves
        )
        view = lidar_xy(out.best.rear_states[-1], c.robot)
        surrogate = float(ctx.shadows.value(view[None])[0]) if ctx.shadows else float("nan")
        return conclude(self.name, out, observation, state, c, ctx.obstacles, timings, surrogate)
