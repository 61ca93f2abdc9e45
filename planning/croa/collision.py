"""OBCA collision avoidance data for CROA (arXiv 2412.18453; OBCA of Zhang, Liniger, Borrelli,
arXiv 1711.03449, as in the RDA planner).

Robot footprint in its rear-axle frame ``{x : G x <= g}``, placed at position t with rotation R;
obstacle footprint ``{y : A y <= b}``. Then dist(robot, obstacle) >= d_min iff there are
lambda >= 0 (one per obstacle face) and mu >= 0 (one per robot face) with

    (A t - b)^T lambda - g^T mu >= d_min,   G^T mu + R^T A^T lambda = 0,   ||A^T lambda||_2 <= 1.

The left side is the dual of the distance problem; at its optimum ``A^T lambda = u``, the unit
direction from the obstacle to the robot, and its value is the distance (the separation along
u when the two overlap). This module solves that lower-level problem exactly for every step and
obstacle (``ObstacleSet.signed_distances`` + ``support_weights``) and packs, for the
``max_obstacles_per_step`` nearest obstacles of each step, the coefficients of the constraints
linearized around the previous iterate ``(t_bar, yaw_bar, lambda_bar)``:

    (A t_bar - b)^T lambda + u_bar^T (t - t_bar) - g^T mu >= d_req - s,      s >= 0,
    G^T mu + R_bar^T A^T lambda + (yaw - yaw_bar) dR^T/dyaw u_bar = 0,  ||A^T lambda|| <= 1,

(first-order expansions of the bilinear terms ``lambda^T A t`` and ``R(yaw)^T A^T lambda``; exact
at the previous iterate). Unused slots get all-zero coefficients and d_req = 0.

Moving obstacles (tracked vehicles with a predicted constant velocity v): at step t, time
``tau_t = t dt``, the obstacle is ``{y : A y <= b + A v tau_t}``, so only its offsets change
per step; distances and duals are those of the translated polygon.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from planning.croa.polygons import (
    rectangle_vertices,
    separating_axis,
    signed_distance,
    support_weights,
)
from planning.croa.robot import RobotModel
from planning.croa.types import Polytope


class CollisionError(ValueError):
    """An obstacle does not fit the configured OBCA sizes."""


def footprints(rear_states: np.ndarray, robot: RobotModel) -> np.ndarray:
    """Footprint rectangles [..., 4, 2] (CCW) of rear-axle states [..., >=3]."""
    yaw = rear_states[..., 2]
    heading = np.stack([np.cos(yaw), np.sin(yaw)], axis=-1)
    centre = rear_states[..., :2] + robot.rear_to_base_m * heading
    return rectangle_vertices(centre, yaw, robot.length_m, robot.width_m)


class ObstacleSet:
    """Obstacle footprints of one cycle, padded to ``max_faces`` rows for the OBCA slots.

    ``allowance_m`` [P] (default 0) is added to every distance to an obstacle: an obstacle the
    robot already stands closer than d_min to gets ``d_min - its distance now`` (plus 2 cm), so
    the plans may leave it but never come closer (safety.cycle_obstacles).
    """

    def __init__(
        self,
        obstacles: Sequence[Polytope],
        max_faces: int,
        allowance_m: np.ndarray | None = None,  # [P]
    ) -> None:
        """Raises CollisionError when an obstacle has more than ``max_faces`` faces."""
        self.polytopes = tuple(obstacles)
        count = len(self.polytopes)
        self.allowance_m = np.zeros(count) if allowance_m is None else np.asarray(allowance_m)
        self.A = np.zeros((count, max_faces, 2))  # [P, F, 2]
        self.b = np.zeros((count, max_faces))  # [P, F]
        by_size: dict[int, list[int]] = {}
        for k, o in enumerate(self.polytopes):
            if len(o.b) > max_faces:
                raise CollisionError(f"obstacle {k} has {len(o.b)} faces > max_faces={max_faces}")
            self.A[k, : len(o.b)], self.b[k, : len(o.b)] = o.A, o.b
            by_size.setdefault(len(o.b), []).append(k)
        self._groups = [
            (
                np.array(idx),
                np.stack([self.polytopes[i].vertices for i in idx]),
                np.stack([self.polytopes[i].A for i in idx]),
            )
            for idx in by_size.values()
        ]
        verts = [o.vertices for o in self.polytopes]
        self.centres = np.array([v.mean(axis=0) for v in verts]).reshape(-1, 2)  # [P, 2]
        self.radii = np.array([np.max(np.linalg.norm(v - v.mean(axis=0), axis=1)) for v in verts])
        self.velocities = np.array([o.velocity_mps for o in self.polytopes]).reshape(-1, 2)
        self.stop_after_s = np.array([o.stop_after_s for o in self.polytopes])  # [P]
        self.moving = bool(np.any(self.velocities != 0.0))

    def displacements(self, times_s: np.ndarray) -> np.ndarray:  # [N] -> [N, P, 2]
        """Predicted displacement of each obstacle at each time (Polytope.at_time)."""
        t = np.minimum(np.asarray(times_s, dtype=np.float64)[:, None], self.stop_after_s[None])
        return t[..., None] * self.velocities[None]

    def __len__(self) -> int:
        return len(self.polytopes)

    def subset(self, keep: np.ndarray, allowance_m: np.ndarray | None = None) -> ObstacleSet:
        """The obstacles where ``keep`` [P] is true, with a new allowance [P] (default 0)."""
        idx = np.flatnonzero(keep)
        allow = None if allowance_m is None else np.asarray(allowance_m)[idx]
        return ObstacleSet([self.polytopes[i] for i in idx], self.A.shape[1], allow)

    def signed_distances(
        self,
        polygons: np.ndarray,  # [N, 4, 2] robot footprints
        exact_below_m: float = np.inf,
        times_s: np.ndarray | None = None,  # [N] time of each footprint; moving obstacles
    ) -> tuple[np.ndarray, np.ndarray]:  # sd [N, P], u [N, P, 2]
        """Signed distance of every footprint to every obstacle and its direction u (from the
        obstacle toward the robot): the lower-level optimum of the module docstring. With
        ``times_s``, moving obstacles are where they are predicted at each footprint's time
        (equivalently: the footprint moves by ``-v t`` relative to the obstacle).

        Pairs whose bounding circles are more than ``exact_below_m`` apart get that circle gap
        (a lower bound of their distance, so still >= exact_below_m) and the centre-to-centre
        direction (a feasible, not optimal, dual direction) instead; pairs whose best separating
        axis already separates them by more than ``exact_below_m`` get that separation (also a
        lower bound) and that axis.
        """
        centre = polygons.mean(axis=1)  # [N, 2]
        radius = np.max(np.linalg.norm(polygons - centre[:, None], axis=-1), axis=1)
        shift = None  # [N, P, 2] obstacle displacement at each footprint's time
        if times_s is not None and self.moving:
            shift = self.displacements(times_s)
        delta = centre[:, None] - self.centres[None]  # [N, P, 2]
        if shift is not None:
            delta = delta - shift
        dist = np.linalg.norm(delta, axis=-1)
        sd = dist - radius[:, None] - self.radii[None]
        u = delta / np.maximum(dist, 1e-12)[..., None]
        for idx, verts, normals in self._groups:
            rows, cols = np.nonzero(sd[:, idx] <= exact_below_m)
            if not len(rows):
                continue
            feet = polygons[rows]
            if shift is not None:
                feet = feet - shift[rows, idx[cols]][:, None, :]
            if np.isfinite(exact_below_m):
                d, direction = separating_axis(feet, verts[cols], normals[cols])
                near = (d > 0.0) & (d <= exact_below_m)  # disjoint: SAT is only a lower bound
                if near.any():
                    d[near], direction[near] = signed_distance(feet[near], verts[cols[near]])
            else:
                d, direction = signed_distance(feet, verts[cols])
            sd[rows, idx[cols]], u[rows, idx[cols]] = d, direction
        return sd + self.allowance_m, u

    def dual_weights(self, u: np.ndarray) -> np.ndarray:  # [N, P, 2] -> [N, P, F]
        """lambda >= 0 with ``A^T lambda = u`` and ``b^T lambda`` = the obstacle's support in
        direction u (polygons.support_weights), zero-padded to F faces."""
        lam = np.zeros((*u.shape[:2], self.A.shape[1]))
        for idx, verts, normals in self._groups:
            lam[:, idx, : verts.shape[1]] = support_weights(verts[None], normals[None], u[:, idx])
        return lam


@dataclass(frozen=True, eq=False)
class ObcaSlots:
    """Linearized OBCA coefficients of the T x I slots (row t * I + i), module docstring.

    Attributes:
        c: [TI, F] ``A t_bar - b``. ax, ay: [TI, F] world face normals (for ||A^T lambda||).
        mx, my: [TI, F] components of ``R_bar^T a_k``. ux, uy, u_dot_t: [TI] u_bar and
        u_bar.t_bar. rx, ry: [TI] ``dR^T/dyaw u_bar``; rx_yaw, ry_yaw: times yaw_bar.
        d_req: [TI] required distance (0 in unused slots).
    """

    c: np.ndarray
    ax: np.ndarray
    ay: np.ndarray
    mx: np.ndarray
    my: np.ndarray
    ux: np.ndarray
    uy: np.ndarray
    u_dot_t: np.ndarray
    rx: np.ndarray
    ry: np.ndarray
    rx_yaw: np.ndarray
    ry_yaw: np.ndarray
    d_req: np.ndarray


def obca_slots(
    rear_states: np.ndarray,  # [T + 1, 4] linearization point
    sd: np.ndarray,  # [T, P] exact distances of steps 1..T
    lam: np.ndarray,  # [T, P, F] optimal duals lambda_bar of steps 1..T
    obstacles: ObstacleSet,
    per_step: int,
    d_req_m: float,
    dt_s: float = 0.0,
) -> ObcaSlots:
    """Coefficients of the linearized OBCA constraints for the nearest obstacles of each step
    (moving obstacles translated to each step's time ``t dt_s``)."""
    steps, faces = len(rear_states) - 1, obstacles.A.shape[1]
    take = min(per_step, len(obstacles))
    order = np.argsort(sd, axis=1)[:, :take] if take else np.zeros((steps, 0), dtype=int)
    shape = (steps, per_step)
    t_bar = rear_states[1:, None, :2]  # [T, 1, 2]
    yaw = rear_states[1:, 2][:, None]  # [T, 1]
    a = np.zeros((*shape, faces, 2))
    a[:, :take] = obstacles.A[order]
    b = np.zeros((*shape, faces))
    b[:, :take] = obstacles.b[order]
    if obstacles.moving and take:
        moved = obstacles.displacements(dt_s * np.arange(1, steps + 1))  # [T, P, 2]
        shift = np.take_along_axis(moved, order[..., None], axis=1)  # [T, take, 2]
        b[:, :take] += np.einsum("tifd,tid->tif", a[:, :take], shift)
    ub = np.zeros((*shape, 2))  # u_bar = A^T lambda_bar
    lam_bar = np.take_along_axis(lam, order[..., None], axis=1)  # [T, take, F]
    ub[:, :take] = np.einsum("tifd,tif->tid", a[:, :take], lam_bar)
    used = np.zeros(shape, dtype=bool)
    used[:, :take] = True
    allow = np.zeros(shape)
    allow[:, :take] = obstacles.allowance_m[order]
    c, s = np.cos(yaw), np.sin(yaw)
    rx = -s * ub[..., 0] + c * ub[..., 1]
    ry = -c * ub[..., 0] - s * ub[..., 1]
    flat = (steps * per_step, faces)
    return ObcaSlots(
        c=(np.einsum("tifd,tid->tif", a, np.broadcast_to(t_bar, (*shape, 2))) - b).reshape(flat),
        ax=a[..., 0].reshape(flat),
        ay=a[..., 1].reshape(flat),
        mx=(c[..., None] * a[..., 0] + s[..., None] * a[..., 1]).reshape(flat),
        my=(-s[..., None] * a[..., 0] + c[..., None] * a[..., 1]).reshape(flat),
        ux=ub[..., 0].ravel(),
        uy=ub[..., 1].ravel(),
        u_dot_t=np.sum(ub * t_bar, axis=-1).ravel(),
        rx=rx.ravel(),
        ry=ry.ravel(),
        rx_yaw=(rx * yaw).ravel(),
        ry_yaw=(ry * yaw).ravel(),
        d_req=np.where(used, d_req_m - allow, 0.0).ravel(),
    )
