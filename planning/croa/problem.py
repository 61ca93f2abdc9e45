"""The convex program of one CROA iteration (arXiv 2412.18453), built once with cvxpy
Parameters (DPP) and re-solved at every CCP iteration and planning cycle.

Variables: rear-axle states ``s_t = (x_t, y_t, yaw_t, v_t)``, t = 0..T; controls
``u_t = (a_t, steer_t)``, t = 0..T-1; the lidar viewpoint ``p`` (2); per step t = 1..T and
obstacle slot i: OBCA duals ``lambda_ti`` (F), ``mu_ti`` (4) and a slack ``s_ti``; epigraph
variables ``t_k`` for the log-sum-exps (occlusion mode).

    minimize   w_occ [ G(p) - grad H(p_bar).p + (grad H(p_bar).p_bar - H(p_bar)) ]   (occlusion)
               + w_range |p - target_xy| + w_guide |p - guide_xy|                  (occlusion)
               + w_goal |p - goal|^2                                                     (goal)
               + w_a sum a_t^2 + w_d sum steer_t^2 + w_dd sum (steer_t - steer_{t-1})^2
               + rho sum s_ti
    subject to s_0 = start; s_{t+1} = linearized bicycle (planning/croa/kinematics.py);
               p = linearized lidar position of s_T (exact at yaw_bar_T);
               |a_t| <= a_max, |steer_t| <= steer_max, |steer_t - steer_{t-1}| <= rate dt,
               -v_rev <= v_t <= v_max, v_T = 0 (every plan ends at rest, so the rest of the
               previous plan is always a safe fallback: recursive feasibility);
               |x_t - x_bar_t|, |y_t - y_bar_t| <= Delta, |yaw_t - yaw_bar_t| <= k Delta (trust);
               linearized OBCA constraints with slack (planning/croa/collision.py).

G and H are the DC parts of the occlusion surrogate (planning/croa/surrogate.py); G enters as
``sum_k w_k tau t_k`` with ``t_k >= log_sum_exp(args_k)``. Everything data-dependent (start,
linearization, trust radius, OBCA coefficients, shadow polygons, CCP tangent, goal) is a
Parameter, so the problem is DPP: cvxpy canonicalizes it once and each re-solve only maps new
parameter values into the solver's matrices.

Solver: CLARABEL. The program has second-order cones (``||A^T lambda|| <= 1``, the range and
guide terms) and exponential cones (the log-sum-exps), which rules out OSQP (QP only). SCS
handles both but is first-order; measured here on the default program (about 1.7k variables,
224 exponential cones, 2 cores): at its default accuracy SCS leaves constraint violations up
to 9e-3 (centimetre level, the size of the clearance margin), and at 1e-6 it needs about 800
iterations and 80 ms, while CLARABEL (interior point) reaches 1e-6 in about 23 iterations and
17 ms. CLARABEL does not warm-start; warm starting happens through the linearization point
(the previous solution). ``ScpConfig.solver = "SCS"`` remains available for comparison.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

import cvxpy as cp
import numpy as np
import scipy.sparse as sp

from planning.croa.collision import ObcaSlots
from planning.croa.config import CroaConfig
from planning.croa.kinematics import Linearization
from planning.croa.surrogate import ShadowSet

Mode = Literal["occlusion", "goal"]
# 1e-6 gaps are far below the centimetres that matter here and save ~20% of the iterations.
_SETTINGS = {
    "CLARABEL": {"max_iter": 200, "tol_gap_abs": 1e-6, "tol_gap_rel": 1e-6, "tol_feas": 1e-6},
    "SCS": {"max_iters": 20000, "eps_abs": 1e-6, "eps_rel": 1e-6},  # its 1e-4 default: cm errors
}


@dataclass(frozen=True, eq=False)
class SolveOutcome:
    """One solve: ``ok`` when the solver reports (near-)optimality and returned values.

    Attributes:
        ok: usable solution. status: cvxpy status or "solver_error". message: explanation.
        value: objective value (the convex model's value at the solution).
        rear_states: [T + 1, 4] or None. controls: [T, 2] or None. solve_ms: wall time.
    """

    ok: bool
    status: str
    message: str
    value: float
    rear_states: np.ndarray | None
    controls: np.ndarray | None
    solve_ms: float


_LIN_ROWS = tuple(Linearization.__dataclass_fields__)  # rows of the "lin" Parameter
_OBCA_MATS = ("c", "ax", "ay", "mx", "my")  # [TI, F] Parameters "obca_<name>"
_OBCA_ROWS = ("ux", "uy", "u_dot_t", "rx", "ry", "rx_yaw", "ry_yaw", "d_req")  # rows of "obca_v"


class TrajectoryProblem:
    """The DPP program above for one (config, mode); build once, then set and solve."""

    def __init__(self, config: CroaConfig, mode: Mode) -> None:
        self.config, self.mode = config, mode
        steps = config.horizon_steps
        pairs = steps * config.max_obstacles_per_step
        self.x, self.y = cp.Variable(steps + 1), cp.Variable(steps + 1)
        self.yaw, self.v = cp.Variable(steps + 1), cp.Variable(steps + 1)
        self.a, self.steer = cp.Variable(steps), cp.Variable(steps)
        self.view = cp.Variable(2)
        self.lam = cp.Variable((pairs, config.max_faces), nonneg=True)
        self.mu = cp.Variable((pairs, 4), nonneg=True)
        self.slack = cp.Variable(pairs, nonneg=True)
        self.params: dict[str, cp.Parameter] = {
            "start": cp.Parameter(4),
            "steer0": cp.Parameter(),
            "trust": cp.Parameter(nonneg=True),
            "lin": cp.Parameter((len(_LIN_ROWS), steps)),
            "bar": cp.Parameter((3, steps)),
            "view_dyaw": cp.Parameter(2),
            "view_const": cp.Parameter(2),
            "obca_v": cp.Parameter((len(_OBCA_ROWS), pairs)),
            **{f"obca_{k}": cp.Parameter((pairs, config.max_faces)) for k in _OBCA_MATS},
        }
        cons = self._motion_constraints() + self._obca_constraints()
        w, st = config.weights, self.steer
        objective = (
            w.accel * cp.sum_squares(self.a)
            + w.steer * cp.sum_squares(st)
            + w.steer_rate
            * (cp.sum_squares(cp.diff(st)) + cp.square(st[0] - self.params["steer0"]))
            + w.collision_penalty * cp.sum(self.slack)
        )
        if mode == "occlusion":
            objective += self._occlusion_terms(cons)
        else:
            self.params["goal"] = cp.Parameter(2)
            objective += w.goal * cp.sum_squares(self.view - self.params["goal"])
        self.problem = cp.Problem(cp.Minimize(objective), cons)

    def _motion_constraints(self) -> list[cp.Constraint]:
        c, r, p = self.config, self.config.robot, self.params
        x, y, yaw, v, st, dt = self.x, self.y, self.yaw, self.v, self.steer, self.config.dt_s
        lin = {name: p["lin"][k] for k, name in enumerate(_LIN_ROWS)}
        bar, trust = p["bar"], p["trust"]
        rate = r.max_steer_rate_radps * dt
        return [
            cp.hstack([x[0], y[0], yaw[0], v[0]]) == p["start"],
            x[1:] == x[:-1] + dt * (cp.multiply(lin["cos_yaw"], v[:-1])
                                    - cp.multiply(lin["v_sin_yaw"], yaw[:-1]) + lin["const_x"]),
            y[1:] == y[:-1] + dt * (cp.multiply(lin["sin_yaw"], v[:-1])
                                    + cp.multiply(lin["v_cos_yaw"], yaw[:-1]) + lin["const_y"]),
            yaw[1:] == yaw[:-1] + dt * (cp.multiply(lin["tan_steer_l"], v[:-1])
                                        + cp.multiply(lin["v_sec2_l"], st) + lin["const_yaw"]),
            v[1:] == v[:-1] + dt * self.a,
            cp.abs(self.a) <= r.max_accel_mps2,
            cp.abs(st) <= r.max_steer_rad,
            cp.abs(cp.diff(st)) <= rate,
            cp.abs(st[0] - p["steer0"]) <= rate,
            v[1:] <= r.max_speed_mps,
            v[1:] >= -r.max_reverse_speed_mps,
            v[-1] == 0.0,
            cp.abs(x[1:] - bar[0]) <= trust,
            cp.abs(y[1:] - bar[1]) <= trust,
            cp.abs(yaw[1:] - bar[2]) <= c.scp.trust_yaw_rad_per_m * trust,
            self.view == cp.hstack([x[-1], y[-1]]) + p["view_dyaw"] * yaw[-1] + p["view_const"],
        ]  # fmt: skip

    def _obca_constraints(self) -> list[cp.Constraint]:
        p, per_step = self.params, self.config.max_obstacles_per_step
        pairs = self.slack.shape[0]
        rows = np.arange(pairs)  # slot row t * I + i belongs to state t + 1
        expand = sp.csr_matrix((np.ones(pairs), (rows, rows // per_step + 1)),
                               shape=(pairs, self.x.shape[0]))  # fmt: skip
        ex, ey, eyaw = expand @ self.x, expand @ self.y, expand @ self.yaw
        vec = {name: p["obca_v"][k] for k, name in enumerate(_OBCA_ROWS)}
        lam, mu = self.lam, self.mu
        _, g = self.config.robot.body_halfspaces()

        def dot(name: str) -> cp.Expression:  # row-wise <coefficients, lambda>
            return cp.sum(cp.multiply(p[f"obca_{name}"], lam), axis=1)

        return [
            dot("c") + cp.multiply(vec["ux"], ex) + cp.multiply(vec["uy"], ey) - vec["u_dot_t"]
            - mu @ g >= vec["d_req"] - self.slack,
            mu[:, 0] - mu[:, 2] + dot("mx") + cp.multiply(vec["rx"], eyaw) == vec["rx_yaw"],
            mu[:, 1] - mu[:, 3] + dot("my") + cp.multiply(vec["ry"], eyaw) == vec["ry_yaw"],
            cp.norm(cp.vstack([dot("ax"), dot("ay")]), 2, axis=0) <= 1.0,
        ]  # fmt: skip

    def _occlusion_terms(self, cons: list[cp.Constraint]) -> cp.Expression:
        c = self.config
        k = c.surrogate.occluder_slots * 8 * len(c.surrogate.sample_height_fractions)
        m = c.surrogate.max_shadow_faces + 1
        p = self.params
        p.update({
            "lse_cx": cp.Parameter((k, m)), "lse_cy": cp.Parameter((k, m)),
            "lse_e": cp.Parameter((k, m)), "slot_w": cp.Parameter(k, nonneg=True),
            "tangent": cp.Parameter(2), "tangent_const": cp.Parameter(),
            "target_xy": cp.Parameter(2), "guide_xy": cp.Parameter(2),
        })  # fmt: skip
        epi = cp.Variable(k)
        args = (cp.multiply(p["lse_cx"], self.view[0]) + cp.multiply(p["lse_cy"], self.view[1])
                - p["lse_e"])  # fmt: skip
        cons.append(epi >= cp.log_sum_exp(args, axis=1))
        occlusion = p["slot_w"] @ epi - p["tangent"] @ self.view + p["tangent_const"]
        w = c.weights
        return (w.occlusion * occlusion + w.view_range * cp.norm(self.view - p["target_xy"], 2)
                + w.guide * cp.norm(self.view - p["guide_xy"], 2))  # fmt: skip

    def set_values(self, **values: np.ndarray | float) -> None:
        for key, value in values.items():
            self.params[key].value = value

    def set_dynamics(self, lin: Linearization, rear_bar: np.ndarray, trust_m: float) -> None:
        """Linearization point (dynamics and trust-region centre), rear_bar [T + 1, 4]."""
        offset = self.config.robot.rear_to_base_m + self.config.robot.lidar_x_m
        yaw_t = rear_bar[-1, 2]
        c, s = np.cos(yaw_t), np.sin(yaw_t)
        self.set_values(
            lin=np.stack([getattr(lin, k) for k in _LIN_ROWS]),
            bar=rear_bar[1:, :3].T,
            trust=trust_m,
            view_dyaw=offset * np.array([-s, c]),
            view_const=offset * np.array([c + s * yaw_t, s - c * yaw_t]),
        )

    def set_obca(self, slots: ObcaSlots) -> None:
        self.set_values(
            obca_v=np.stack([getattr(slots, k) for k in _OBCA_ROWS]),
            **{f"obca_{k}": getattr(slots, k) for k in _OBCA_MATS},
        )

    def set_shadows(self, shadows: ShadowSet, target_xy: np.ndarray, guide_xy: np.ndarray) -> None:
        """Shadow polygons, target centre and next-best view of the cycle (occlusion mode)."""
        cx, cy, e = shadows.lse_arguments()
        self.set_values(lse_cx=cx, lse_cy=cy, lse_e=e, slot_w=shadows.slot_weights(),
                        target_xy=target_xy, guide_xy=guide_xy)  # fmt: skip

    def set_tangent(self, shadows: ShadowSet, view_bar: np.ndarray) -> None:
        """CCP tangent of H at the current viewpoint view_bar [2]."""
        grad, h_value = shadows.concave_tangent(view_bar)
        self.set_values(tangent=grad, tangent_const=float(grad @ view_bar) - h_value)

    def solve(self) -> SolveOutcome:
        start = time.perf_counter()
        kwargs = _SETTINGS[self.config.scp.solver]
        try:
            self.problem.solve(solver=self.config.scp.solver, **kwargs)
        except cp.SolverError as err:
            ms = 1e3 * (time.perf_counter() - start)
            return SolveOutcome(False, "solver_error", str(err), np.inf, None, None, ms)
        ms = 1e3 * (time.perf_counter() - start)
        status = str(self.problem.status)
        if status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE) or self.x.value is None:
            return SolveOutcome(False, status, f"solver status {status}", np.inf, None, None, ms)
        states = np.stack([self.x.value, self.y.value, self.yaw.value, self.v.value], axis=1)
        controls = np.stack([self.a.value, self.steer.value], axis=1)
        return SolveOutcome(True, status, "", float(self.problem.value), states, controls, ms)
