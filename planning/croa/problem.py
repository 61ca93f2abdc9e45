"""The convex program of one CROA iteration (arXiv 2412.18453), built once with cvxpy
Parameters (DPP) and re-solved at every CCP iteration and planning cycle.

Variables: rear-axle states ``s_t = (x_t, y_t, yaw_t, v_t)``, t = 0..T; controls
``u_t = (a_t, steer_t)``, t = 0..T-1; the lidar positions ``p_k`` (2 each) at the K scan steps
n_k (the last is the final viewpoint p_K = p(s_T)); per step t = 1..T and obstacle slot i:
OBCA duals ``lambda_ti`` (F), ``mu_ti`` (4) and a slack ``s_ti``; epigraph variables
``w_ks >= 0`` of the surrogate's per-sample majorants and ``g`` of the guide distance
(occlusion mode).

    minimize   w_occ sum_ks alpha_k w_hat_ks(p_bar) w_ks                           (occlusion)
               + w_range |p_K - target_xy| + gamma g,  g >= |p_K - guide_xy|       (occlusion)
               + w_goal |p_K - goal|^2                                                   (goal)
               + w_a sum a_t^2 + w_d sum steer_t^2 + w_dd sum (steer_t - steer_{t-1})^2
               + rho sum s_ti
    subject to s_0 = start; s_{t+1} = linearized bicycle (planning/croa/kinematics.py);
               p = linearized lidar position of s_T (exact at yaw_bar_T);
               |a_t| <= a_max, |steer_t| <= steer_max, |steer_t - steer_{t-1}| <= rate dt,
               -v_rev <= v_t <= v_max, v_T = 0 (every plan ends at rest, so the rest of the
               previous plan is always a safe fallback: recursive feasibility);
               |x_t - x_bar_t|, |y_t - y_bar_t| <= Delta, |yaw_t - yaw_bar_t| <= k Delta (trust);
               linearized OBCA constraints with slack (planning/croa/collision.py);
               w_ks >= cx p_kx + cy p_ky + c for every row of the CCP majorant
               (planning/croa/surrogate.py: linear rows, one per occluder and shadow face).

Everything data-dependent (start, linearization, trust radius, OBCA coefficients, the CCP
majorant's rows and weights, target, guide and its weight gamma, goal) is a Parameter, so the
problem is DPP: cvxpy canonicalizes it once and each re-solve only maps new parameter values
into the solver's matrices.

Solver: CLARABEL (interior point). The program has second-order cones (``||A^T lambda|| <= 1``,
the range and guide terms), which rules out OSQP (QP only); the occlusion part is linear.
``ScpConfig.solver = "SCS"`` (first-order, less accurate at equal time) remains available.
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
from planning.croa.surrogate import CcpModel

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
        self.scan_steps = config.surrogate.scan_steps(steps) if mode == "occlusion" else (steps,)
        self.views = cp.Variable((len(self.scan_steps), 2))
        self.view = self.views[-1]
        self.lam = cp.Variable((pairs, config.max_faces), nonneg=True)
        self.mu = cp.Variable((pairs, 4), nonneg=True)
        self.slack = cp.Variable(pairs, nonneg=True)
        self.params: dict[str, cp.Parameter] = {
            "start": cp.Parameter(4),
            "steer0": cp.Parameter(),
            "trust": cp.Parameter(nonneg=True),
            "lin": cp.Parameter((len(_LIN_ROWS), steps)),
            "bar": cp.Parameter((3, steps)),
            "view_dyaw": cp.Parameter((len(self.scan_steps), 2)),
            "view_const": cp.Parameter((len(self.scan_steps), 2)),
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
            *[self.views[k] == cp.hstack([x[n], y[n]]) + p["view_dyaw"][k] * yaw[n]
              + p["view_const"][k] for k, n in enumerate(self.scan_steps)],
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
        c, p = self.config, self.params
        k = len(self.scan_steps)
        per_scan = c.surrogate.occluder_slots * (c.surrogate.max_shadow_faces + 1)
        samples = self._surface_slots()
        rows = k * samples * per_scan
        p.update({
            "ccp_cx": cp.Parameter(rows), "ccp_cy": cp.Parameter(rows), "ccp_c": cp.Parameter(rows),
            "ccp_w": cp.Parameter(k * samples, nonneg=True),
            "target_xy": cp.Parameter(2), "guide_xy": cp.Parameter(2),
            "guide_w": cp.Parameter(nonneg=True),
        })  # fmt: skip
        epi = cp.Variable(k * samples, nonneg=True)
        guide = cp.Variable()
        # row (k, s, i, r) -> epigraph variable (k, s) and scan k (constant selections)
        index = np.arange(rows)
        to_w = sp.csr_matrix((np.ones(rows), (index, index // per_scan)), (rows, k * samples))
        to_k = sp.csr_matrix((np.ones(rows), (index, index // (per_scan * samples))), (rows, k))
        cons += [
            to_w @ epi >= cp.multiply(p["ccp_cx"], to_k @ self.views[:, 0])
            + cp.multiply(p["ccp_cy"], to_k @ self.views[:, 1]) + p["ccp_c"],
            guide >= cp.norm(self.view - p["guide_xy"], 2),
        ]  # fmt: skip
        w = c.weights
        return (w.occlusion * (p["ccp_w"] @ epi)
                + w.view_range * cp.norm(self.view - p["target_xy"], 2)
                + p["guide_w"] * guide)  # fmt: skip

    def _surface_slots(self) -> int:
        """Facing-sample slots of the CCP majorant (TargetSurface.max_facing)."""
        s = self.config.surrogate
        return (s.length_samples + s.width_samples) * s.height_samples + s.length_samples

    def set_values(self, **values: np.ndarray | float) -> None:
        for key, value in values.items():
            self.params[key].value = value

    def set_dynamics(self, lin: Linearization, rear_bar: np.ndarray, trust_m: float) -> None:
        """Linearization point (dynamics and trust-region centre), rear_bar [T + 1, 4]."""
        offset = self.config.robot.rear_to_base_m + self.config.robot.lidar_x_m
        yaw = rear_bar[list(self.scan_steps), 2]  # [K]
        c, s = np.cos(yaw), np.sin(yaw)
        self.set_values(
            lin=np.stack([getattr(lin, k) for k in _LIN_ROWS]),
            bar=rear_bar[1:, :3].T,
            trust=trust_m,
            view_dyaw=offset * np.stack([-s, c], axis=1),
            view_const=offset * np.stack([c + s * yaw, s - c * yaw], axis=1),
        )

    def set_obca(self, slots: ObcaSlots) -> None:
        self.set_values(
            obca_v=np.stack([getattr(slots, k) for k in _OBCA_ROWS]),
            **{f"obca_{k}": getattr(slots, k) for k in _OBCA_MATS},
        )

    def set_targets(self, target_xy: np.ndarray, guide_xy: np.ndarray, guide_weight: float) -> None:
        """Target centre, guide view and the guide's weight gamma of the cycle (occlusion)."""
        self.set_values(target_xy=target_xy, guide_xy=guide_xy, guide_w=guide_weight)

    def set_ccp(self, model: CcpModel) -> None:
        """The CCP majorant of the surrogate at the current lidar positions (occlusion)."""
        self.set_values(ccp_cx=model.cx.ravel(), ccp_cy=model.cy.ravel(), ccp_c=model.c.ravel(),
                        ccp_w=model.weights.ravel())  # fmt: skip

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
