"""CROA: clutter-resilient occlusion avoidance (arXiv 2412.18453), one planning cycle.

``CroaPlanner.plan(observation, state) -> (PlanResult, state)``:

1. Check the inputs; keep the obstacles the robot can reach (plus the target itself); moving
   obstacles are where their predicted motion puts them at each step.
2. Build the 2.5D shadows of the occluders and the trajectory occlusion surrogate
   (planning/croa/surrogate.py): scans at ``scan_fractions`` of the horizon, union over
   occluders, the target's visible surface only.
3. Initializations (``CroaConfig.starts``), one CCP loop from each:
   - "straight": drive straight ahead along the current heading and stop (short of the first
     obstacle): the plan without any occlusion reasoning;
   - "sampled": pure-pursuit rollouts toward candidate viewpoints (rings around the robot and
     the target), braking, and the rest of the previous plan, scored with the exact occlusion
     at their end (planning/croa/viewpoints.py); the best one.
4. Guide. While the next-best view anywhere (viewpoints.best_viewpoint: the target's and the
   robot's rings) is at least ``explore_below_gain`` less occluded than the best view any
   sampled rollout reaches within this horizon, the final viewpoint is pulled toward it with
   weight ``CostWeights.guide`` (plans end at rest, so a far view takes several plans). Once a
   view as good is within reach the guide weight is 0: the guide only ever points at a view
   less occluded than anything reachable, and near it the occlusion alone decides.
5. CCP + bilevel OBCA loop (planning/croa/scp.py) from each start on the program built once
   (planning/croa/problem.py); with ``ScpConfig.exact_acceptance`` (off by default: measured,
   docs/croa.md) each loop judges its steps on the exact occlusion (a step the surrogate likes
   but the ray cast does not is cut back or rejected). The plan is the loop
   result with the least merit, the exact occlusion in it (a surrogate error cannot pick a
   worse plan); with ``ScpConfig.keep_better_start`` a loop whose result sees the target worse
   than its collision-free start ends at that start (the loop judged once, on the exact
   occlusion). Every loop's start and result are reported (``PlanResult.starts``).
6. Verify the result with exact geometry; on a failed solve or a clearance below
   ``min_clearance_m`` fall back (planning/croa/safety.py).

The planner object owns the cvxpy problem (built in ``__init__``, canonicalized by cvxpy at the
first solve: the first ``plan`` takes about a second more); everything that changes between
cycles travels in ``PlannerState``, and ``last_outcome`` keeps the chosen loop's diagnostics.
Not thread-safe: one planner per thread.
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np

from planning.croa.baselines import straight_path
from planning.croa.config import CroaConfig
from planning.croa.kinematics import lidar_xy, pursuit_controls
from planning.croa.safety import (
    check_observation,
    conclude,
    cycle_obstacles,
    min_clearance,
    previous_plan,
    reach_m,
    start_rear,
    stop_plan,
    trajectory_occlusion,
)
from planning.croa.scp import Iterate, ScpContext, ScpOutcome, ScpSolver
from planning.croa.surrogate import build_shadows
from planning.croa.types import (
    PlannerState,
    PlanObservation,
    PlanResult,
    PlanTimings,
    StartReport,
)
from planning.croa.viewpoints import (
    pursuit_candidates,
    reach_candidates,
    ring_candidates,
    score_controls,
    scored_best_viewpoint,
)


class CroaPlanner:
    """Occlusion-minimizing trajectory planner (module docstring).

    Args:
        config: settings; ``starts`` and ``ccp`` select the ablation variants.
        name: the method name in results (default "croa").
    """

    name = "croa"

    def __init__(self, config: CroaConfig | None = None, name: str = "croa") -> None:
        self.config = config or CroaConfig()
        self.name = name
        self._solver = ScpSolver(self.config, "occlusion")
        self.last_outcome: ScpOutcome | None = None  # diagnostics of the latest cycle
        self.last_guide: np.ndarray | None = None  # the latest cycle's guide view, if any
        # exact-occlusion spacing of PlanResult.starts when ``finer_reports`` is called (None:
        # the planner's own exact_spacing_m, no extra work); a benchmark asks for a finer one
        # after it has stopped the cycle's clock
        self.report_spacing_m: float | None = None
        self._report_input: tuple[np.ndarray, PlanObservation] | None = None

    def context(self, observation: PlanObservation) -> ScpContext:
        """Cycle data: start state, reachable obstacles, shadows (no guide yet)."""
        c = self.config
        rear0 = start_rear(observation, c)
        target = observation.target_box
        here = lidar_xy(rear0, c.robot)
        far = reach_m(c) + float(np.linalg.norm(here - target[:2])) + c.surrogate.transition_m
        scan_times = c.dt_s * np.array(c.surrogate.scan_steps(c.horizon_steps), dtype=float)
        shadows = build_shadows(target, observation.occluding, c.surrogate, c.robot.lidar_z_m,
                                far + c.robot.length_m, self.candidates(observation),
                                scan_times)  # fmt: skip

        def exact(rear: np.ndarray) -> float:  # the loop judges its steps on the true occlusion
            return float(trajectory_occlusion(rear[None], observation, c,
                                              c.scp.exact_spacing_m)[0][0])  # fmt: skip

        return ScpContext(rear0, observation.robot.steer_rad, cycle_obstacles(observation, c),
                          shadows, target[:2].copy(),
                          exact=exact if c.scp.exact_acceptance else None)  # fmt: skip

    def candidates(self, observation: PlanObservation) -> np.ndarray:  # [N, 2]
        """Candidate viewpoints: the current one, the reachable rings and the target rings."""
        c = self.config
        here = lidar_xy(start_rear(observation, c), c.robot)
        return np.vstack([here, reach_candidates(here, reach_m(c), c),
                          ring_candidates(observation.target_box, c)])  # fmt: skip

    def straight_start(self, observation: PlanObservation, ctx: ScpContext) -> np.ndarray:
        """Controls [T, 2] that drive straight ahead and stop, short of the first obstacle."""
        c, r = self.config, observation.robot
        heading = np.array([np.cos(r.yaw_rad), np.sin(r.yaw_rad)])
        goal = np.array([r.x_m, r.y_m]) + reach_m(c) * heading
        rear, _, _ = straight_path(observation, goal, ctx.obstacles, c)
        stop = lidar_xy(rear[-1], c.robot)  # where the straight line ends (blocked or not)
        return pursuit_controls(ctx.rear0, r.steer_rad, stop[None], c.horizon_steps, c.robot,
                                c.dt_s)[0]  # fmt: skip

    def initial_guesses(
        self, observation: PlanObservation, state: PlannerState | None, ctx: ScpContext
    ) -> tuple[dict[str, Iterate], ScpContext]:
        """The starts by name and the context with the cycle's guide (module docstring)."""
        c, w = self.config, self.config.weights
        guesses = [pursuit_candidates(self.candidates(observation), observation, c),
                   stop_plan(observation, c)[1][None]]  # fmt: skip
        previous = previous_plan(observation, state, c)
        if previous is not None:
            guesses.append(previous[1][None])
        scored = score_controls(np.concatenate(guesses), observation, ctx.obstacles, c)
        score = scored.score
        nbv = scored_best_viewpoint(observation, ctx.obstacles, c)
        clear = scored.clearance >= c.min_clearance_m  # reachable: without a collision
        reach = float(np.min(scored.occlusion[clear], initial=1.0))
        if nbv is not None and nbv[1] < reach - c.viewpoints.explore_below_gain:
            ctx = replace(ctx, guide_xy=nbv[0], guide_weight=w.guide)
            score = score + w.guide * np.linalg.norm(scored.view_xy - nbv[0], axis=1)
        starts = {}
        for name in c.starts:
            controls = (self.straight_start(observation, ctx) if name == "straight"
                        else scored.controls[int(np.argmin(score))])  # fmt: skip
            starts[name] = self._solver.evaluate(controls, ctx)
        return starts, ctx

    def plan(
        self, observation: PlanObservation, state: PlannerState | None = None
    ) -> tuple[PlanResult, PlannerState]:
        """One cycle (module docstring). Raises CroaInputError for malformed inputs only."""
        start = time.perf_counter()
        c = self.config
        check_observation(observation, c)
        ctx = self.context(observation)
        starts, ctx = self.initial_guesses(observation, state, ctx)
        self.last_guide = ctx.guide_xy
        setup_ms = 1e3 * (time.perf_counter() - start)
        outcomes = {name: self._run(z, ctx) for name, z in starts.items()}
        rear = np.stack([z.rear_states for z in starts.values()]
                        + [o.best.rear_states for o in outcomes.values()])  # fmt: skip
        exact, exact_view = trajectory_occlusion(rear, observation, c)
        n = len(starts)
        loop_exact = exact[n:].copy()  # the loops' own results, before keep_better_start
        if c.scp.keep_better_start:
            outcomes, exact, exact_view = self._keep_better_starts(starts, outcomes, exact,
                                                                   exact_view, ctx)  # fmt: skip
        # the loop result with the least merit, the exact occlusion in place of the surrogate
        # (the loops' own merits have it already when they judge their steps on it)
        exact_merit = [o.best.merit if c.scp.exact_acceptance else
                       o.best.merit + c.weights.occlusion * (exact[n + k] - o.best.occlusion)
                       for k, o in enumerate(outcomes.values())]  # fmt: skip
        chosen = int(np.argmin(exact_merit))
        out = list(outcomes.values())[chosen]
        self.last_outcome = out
        timings = PlanTimings(1e3 * (time.perf_counter() - start), setup_ms,
                              sum(o.solve_ms for o in outcomes.values()),
                              sum(o.num_solves for o in outcomes.values()))  # fmt: skip
        if c.scp.keep_better_start:  # the plans' trajectories, then the loops' own results
            rear = np.concatenate([rear[:n], np.stack([o.best.rear_states for o in
                                                       outcomes.values()]), rear[n:]])  # fmt: skip
        self._report_input = (rear, observation)
        reports = tuple(
            StartReport(name, float(exact[k]), float(exact[n + k]), float(exact_view[k]),
                        float(exact_view[n + k]), starts[name].merit, o.best.merit,
                        o.num_solves, k == chosen, float(loop_exact[k]))
            for k, (name, o) in enumerate(outcomes.items())
        )  # fmt: skip
        views = self._solver.scan_views(out.best.rear_states)
        surrogate = float(ctx.shadows.value(views[None])[0]) if ctx.shadows else float("nan")
        result, nxt = conclude(self.name, out, observation, state, c, ctx.obstacles, timings,
                               surrogate)  # fmt: skip
        return replace(result, starts=reports), nxt

    def finer_reports(self, result: PlanResult) -> PlanResult:
        """``result`` (this planner's latest) with the exact occlusions of its start reports
        recomputed at ``report_spacing_m``: diagnostics only, which a benchmark asks for after
        it has timed the cycle (the plan itself is unchanged)."""
        if self.report_spacing_m is None or self._report_input is None:
            return result
        rear, observation = self._report_input
        exact, view = trajectory_occlusion(rear, observation, self.config, self.report_spacing_m)
        n = len(result.starts)
        loop = 2 * n if len(rear) == 3 * n else n  # keep_better_start: the loops' own results
        starts = tuple(replace(r, start_occlusion=float(exact[k]), result_occlusion=float(
            exact[n + k]), start_view_occlusion=float(view[k]), result_view_occlusion=float(
            view[n + k]), loop_occlusion=float(exact[loop + k]))
            for k, r in enumerate(result.starts))  # fmt: skip
        return replace(result, starts=starts)

    def _keep_better_starts(
        self,
        starts: dict[str, Iterate],
        outcomes: dict[str, ScpOutcome],
        exact: np.ndarray,  # [2n] exact occlusion of the n starts, then of the n loop results
        exact_view: np.ndarray,  # [2n] the same at the final viewpoint
        ctx: ScpContext,
    ) -> tuple[dict[str, ScpOutcome], np.ndarray, np.ndarray]:
        """``ScpConfig.keep_better_start``: a loop whose result sees the target worse than its
        start did (exact occlusion along the trajectory) ends at its start, if that start is
        collision-free; the loop's solves and history are kept for the diagnostics."""
        c, n = self.config, len(starts)
        exact, exact_view, kept = exact.copy(), exact_view.copy(), dict(outcomes)
        for k, (name, o) in enumerate(outcomes.items()):
            start = starts[name]
            if o.failure or not exact[k] < exact[n + k] or start.rear_states is o.best.rear_states:
                continue
            if min_clearance(start.rear_states, ctx.obstacles, c) < c.min_clearance_m:
                continue
            kept[name] = replace(o, best=start)
            exact[n + k], exact_view[n + k] = exact[k], exact_view[k]
        return kept, exact, exact_view

    def _run(self, initial: Iterate, ctx: ScpContext) -> ScpOutcome:
        if self.config.ccp:
            return self._solver.run(initial, ctx)
        return ScpOutcome(initial, True, "", (initial.merit,), (), 0, 0.0)
