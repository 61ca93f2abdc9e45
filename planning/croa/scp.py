"""CROA's solver loop (arXiv 2412.18453): the convex-concave procedure (CCP) on the occlusion
surrogate combined with the duality-based bilevel treatment of collision avoidance.

Bilevel structure. The upper level chooses the trajectory; the lower level, per step and
obstacle, is the distance problem, whose dual (OBCA) turns "lower-level value >= d_min" into
the existence of (lambda, mu): a single-level program with the duals as upper-level variables
(planning/croa/collision.py). Each iteration k:

1. Lower level, exactly: roll the controls out through the nonlinear bicycle, compute every
   signed distance and its optimal dual direction (closed form, polygons.py).
2. Upper level, convexified at that point: bicycle and OBCA bilinear terms to first order,
   the concave parts -H of the surrogate replaced by their supporting lines at the current
   lidar positions (CCP: a convex majorant, planning/croa/surrogate.py), inside a trust region.
   Solve (problem.py); z_k itself is feasible (every linearization is exact there and the
   slack absorbs any clearance deficit), so m_k(z*) <= m_k(z_k), which equals J(z_k) unless
   z_k is within the clearance band below (then the step is only taken if it helps J).
3. Merit ``J(z) = w_occ O(p_1..p_K) + w_range |p_K - c| + gamma |p_K - guide| + control costs
   + rho sum_{t, all obstacles} max(0, d_min + margin / 2 - sd_t)`` of the rolled-out
   solution (goal mode: ``w_goal |p - goal|^2`` replaces the first three terms). ``O`` is the
   **exact** occlusion along the trajectory when the context has it (``ScpContext.exact``;
   the planner passes it only with ``ScpConfig.exact_acceptance``, off by default, else O is
   the surrogate): the model is built on the surrogate, but a step is judged on the
   true objective, as SQP judges a step on its merit function and not on its model (with the
   surrogate in J, 24% of the chosen loops' cycles raised the exact occlusion from their start
   on the session-4 run). Accept when the actual decrease of J is at least ``accept_ratio``
   of the predicted one ``J~(z_k) - m_k(z*)`` (``J~``: J with the surrogate, which the model
   majorizes; the trust region doubles when the ratio exceeds 0.75) and, with
   ``monotone_occlusion``, the exact occlusion does not rise (the guide and range terms may
   not buy a worse view; the issue asks for that). Otherwise a line search
   on the controls, ``z_k + a (z* - z_k)`` for ``a`` in ``line_search`` (predicted decrease
   at least ``a`` times the full step's: the model is convex; only with the exact occlusion),
   and when none passes, halve the trust region and re-solve.

The convex model asks for ``d_min + margin`` and the merit only for ``d_min + margin / 2``: the
rollout of a solution that hugs an obstacle differs from the model's states by the (second
order) linearization error, and with an exact penalty rho = 200 a millimetre of it would reject
every such step. Half the margin absorbs it; exact verification afterwards asks for d_min.

Accepted merits never increase (the CCP's monotonicity, kept under the nonconvex dynamics and
the surrogate's error by the acceptance test). Stops when the predicted decrease is below
``tolerance_abs + tolerance_rel |J~|`` (converged), the trust region falls below
``min_trust_m`` (converged: no model step helps), a solve fails (the last accepted iterate is
kept), or after ``max_iterations`` solves.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from planning.croa.collision import ObstacleSet, footprints, obca_slots
from planning.croa.config import CroaConfig
from planning.croa.kinematics import lidar_xy, linearize, rollout
from planning.croa.problem import Mode, TrajectoryProblem
from planning.croa.surrogate import ShadowSet

_EXACT_BAND_M = 1.0  # distances within d_min + margin + this are computed exactly


class ScpError(ValueError):
    """The context does not match the solver's mode."""


@dataclass(frozen=True, eq=False)
class ScpContext:
    """What stays fixed during one planning cycle.

    Attributes:
        rear0: [4] rear-axle start state. steer0_rad: current steering angle.
        obstacles: obstacles the robot can reach (target included).
        shadows: occlusion surrogate (occlusion mode). target_xy: [2] target centre.
        goal_xy: [2] lidar goal (goal mode). guide_xy: [2] next-best view (occlusion mode).
        guide_weight: gamma, the weight of the guide distance this cycle (1/m; 0 when the
            planner exploits a better view within reach, planner.py).
        exact: the exact occlusion along a trajectory (rear states [T + 1, 4] -> O, weighted
            like the surrogate's scans); None: the merit uses the surrogate.
    """

    rear0: np.ndarray
    steer0_rad: float
    obstacles: ObstacleSet
    shadows: ShadowSet | None = None
    target_xy: np.ndarray | None = None
    goal_xy: np.ndarray | None = None
    guide_xy: np.ndarray | None = None
    guide_weight: float = 0.0
    exact: Callable[[np.ndarray], float] | None = None


@dataclass(frozen=True, eq=False)
class Iterate:
    """A rolled-out trajectory with its exact lower-level solution and merit.

    Attributes:
        rear_states: [T + 1, 4]. controls: [T, 2]. sd: [T, P] signed distances of steps 1..T.
        lam: [T, P, F] their optimal OBCA duals lambda. merit: J (module docstring).
        occlusion: the O in J, exact when the context has it (NaN in goal mode).
        model_merit: J with the surrogate O (what the convex model majorizes; = merit in goal
            mode or without ``ScpContext.exact``).
    """

    rear_states: np.ndarray
    controls: np.ndarray
    sd: np.ndarray
    lam: np.ndarray
    merit: float
    occlusion: float = float("nan")
    model_merit: float = float("nan")

    @property
    def min_clearance_m(self) -> float:
        return float(np.min(self.sd)) if self.sd.size else np.inf


@dataclass(frozen=True, eq=False)
class ScpOutcome:
    """Result of the loop: ``best`` is the last accepted iterate.

    Attributes:
        converged: stopped by a tolerance (not by the iteration cap or a failure).
        failure: the solver's message when a solve failed, else "".
        history: merit of the initial and of each accepted iterate (non-increasing).
        model_values: convex-model value of each successful solve.
        model_history: ``model_merit`` (J with the surrogate, which the model majorizes) of
            the initial and of each accepted iterate.
    """

    best: Iterate
    converged: bool
    failure: str
    history: tuple[float, ...]
    model_values: tuple[float, ...]
    num_solves: int
    solve_ms: float
    model_history: tuple[float, ...] = ()


class ScpSolver:
    """Owns one compiled TrajectoryProblem; ``run`` is called once per planning cycle."""

    def __init__(self, config: CroaConfig, mode: Mode) -> None:
        self.config, self.mode = config, mode
        self.problem = TrajectoryProblem(config, mode)

    def evaluate(self, controls: np.ndarray, ctx: ScpContext) -> Iterate:
        """Rollout (controls [T, 2]) and its merit."""
        rear = rollout(ctx.rear0, controls, self.config.robot, self.config.dt_s)
        return self._iterate(rear, controls, ctx)

    def _iterate(self, rear: np.ndarray, controls: np.ndarray, ctx: ScpContext) -> Iterate:
        c = self.config
        # Exact where a step could matter; farther pairs get a conservative hyperplane.
        near = c.min_clearance_m + c.plan_margin_m + _EXACT_BAND_M
        times = c.dt_s * np.arange(1, len(rear))
        sd, u = ctx.obstacles.signed_distances(footprints(rear[1:], c.robot), near, times)
        lam = ctx.obstacles.dual_weights(u)
        model_merit, surrogate = self.merit(rear, controls, sd, ctx)
        if ctx.exact is None or not np.isfinite(surrogate):
            return Iterate(rear, controls, sd, lam, model_merit, surrogate, model_merit)
        occlusion = float(ctx.exact(rear))
        merit = model_merit + self.config.weights.occlusion * (occlusion - surrogate)
        return Iterate(rear, controls, sd, lam, merit, occlusion, model_merit)

    def merit(
        self,
        rear: np.ndarray,  # [T + 1, 4]
        controls: np.ndarray,  # [T, 2]
        sd: np.ndarray,  # [T, P]
        ctx: ScpContext,
    ) -> tuple[float, float]:
        """J (module docstring) and its surrogate occlusion term O (NaN in goal mode)."""
        c, w = self.config, self.config.weights
        steer = controls[:, 1]
        d_steer = np.diff(np.concatenate([[ctx.steer0_rad], steer]))
        value = (
            w.accel * np.sum(controls[:, 0] ** 2)
            + w.steer * np.sum(steer**2)
            + w.steer_rate * np.sum(d_steer**2)
        )
        need = c.min_clearance_m + 0.5 * c.plan_margin_m
        value += w.collision_penalty * float(np.sum(np.maximum(0.0, need - sd)))
        view = lidar_xy(rear[-1], c.robot)
        occlusion = float("nan")
        if self.mode == "occlusion" and ctx.shadows is not None and ctx.target_xy is not None:
            occlusion = float(ctx.shadows.value(self.scan_views(rear)[None])[0])
            value += w.occlusion * occlusion
            value += w.view_range * float(np.linalg.norm(view - ctx.target_xy))
            if ctx.guide_xy is not None:
                value += ctx.guide_weight * float(np.linalg.norm(view - ctx.guide_xy))
        elif ctx.goal_xy is not None:
            value += w.goal * float(np.sum((view - ctx.goal_xy) ** 2))
        return float(value), occlusion

    def scan_views(self, rear: np.ndarray) -> np.ndarray:  # [..., T + 1, 4] -> [..., K, 2]
        """Lidar positions at the surrogate's scan steps."""
        return lidar_xy(rear[..., list(self.problem.scan_steps), :], self.config.robot)

    def _set_point(self, z: Iterate, trust_m: float, ctx: ScpContext) -> None:
        c, p = self.config, self.problem
        p.set_dynamics(linearize(z.rear_states, z.controls, c.robot), z.rear_states, trust_m)
        need = c.min_clearance_m + c.plan_margin_m
        p.set_obca(
            obca_slots(
                z.rear_states, z.sd, z.lam, ctx.obstacles, c.max_obstacles_per_step, need, c.dt_s
            )
        )
        if self.mode == "occlusion" and ctx.shadows is not None:
            p.set_ccp(ctx.shadows.ccp_model(self.scan_views(z.rear_states)))

    def run(self, initial: Iterate, ctx: ScpContext) -> ScpOutcome:
        """The loop of the module docstring, from ``initial``.

        Raises:
            ScpError: the context lacks the shadows and target (occlusion mode) or the goal.
        """
        c = self.config.scp
        self.problem.set_values(start=ctx.rear0, steer0=ctx.steer0_rad)
        if self.mode == "occlusion":
            if ctx.shadows is None or ctx.target_xy is None:
                raise ScpError("occlusion mode needs shadows and target_xy in the context")
            guide = ctx.target_xy if ctx.guide_xy is None else ctx.guide_xy
            weight = 0.0 if ctx.guide_xy is None else ctx.guide_weight
            self.problem.set_targets(ctx.target_xy, guide, weight)
        elif ctx.goal_xy is None:
            raise ScpError("goal mode needs goal_xy in the context")
        else:
            self.problem.set_values(goal=ctx.goal_xy)
        z, trust = initial, c.initial_trust_m
        history, models, model_history = [z.merit], [], [z.model_merit]
        converged, failure, solves, solve_ms = False, "", 0, 0.0
        while solves < c.max_iterations:
            self._set_point(z, trust, ctx)
            out = self.problem.solve()
            solves += 1
            solve_ms += out.solve_ms
            if not out.ok or out.controls is None:
                failure = out.message
                break
            models.append(out.value)
            predicted = z.model_merit - out.value
            if predicted <= c.tolerance_abs + c.tolerance_rel * abs(z.model_merit):
                converged = True
                break
            candidate = self.evaluate(out.controls, ctx)
            ratio = (z.merit - candidate.merit) / predicted
            if ratio >= c.accept_ratio and self._keeps_view(z, candidate, ctx):
                z = candidate
                history.append(z.merit)
                model_history.append(z.model_merit)
                if ratio > 0.75:
                    trust = min(2.0 * trust, c.max_trust_m)
                continue
            # a surrogate step the exact occlusion refuses: a fraction of it may still help
            # (goal mode, the baselines' loop, has no surrogate and keeps its old loop)
            partial = (
                None if ctx.exact is None else self._line_search(z, out.controls, predicted, ctx)
            )
            if partial is not None:
                z = partial
                history.append(z.merit)
                model_history.append(z.model_merit)
                trust *= 0.5  # the full step overshot: the model holds over a shorter one
                continue
            trust *= 0.5
            if trust < c.min_trust_m:
                converged = True
                break
        return ScpOutcome(z, converged, failure, tuple(history), tuple(models), solves, solve_ms,
                          tuple(model_history))  # fmt: skip

    def _line_search(
        self, z: Iterate, controls: np.ndarray, predicted: float, ctx: ScpContext
    ) -> Iterate | None:
        """The first fraction ``a`` of the step from ``z`` to ``controls`` [T, 2] whose actual
        decrease of J is at least ``accept_ratio * a * predicted`` (the convex model decreases
        by at least ``a * predicted`` along the segment), or None."""
        c = self.config.scp
        for a in c.line_search:
            candidate = self.evaluate(z.controls + a * (controls - z.controls), ctx)
            if (z.merit - candidate.merit >= c.accept_ratio * a * predicted
                    and self._keeps_view(z, candidate, ctx)):  # fmt: skip
                return candidate
        return None

    def _keeps_view(self, z: Iterate, candidate: Iterate, ctx: ScpContext) -> bool:
        """With ``monotone_occlusion`` and the exact occlusion: the candidate's is no higher."""
        if ctx.exact is None or not self.config.scp.monotone_occlusion:
            return True
        return candidate.occlusion <= z.occlusion + 1e-12
