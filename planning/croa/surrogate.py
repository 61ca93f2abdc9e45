"""Smooth difference-of-convex (DC) surrogate of the target's occlusion as a function of the
lidar viewpoint ``p`` in the ground plane (CROA, arXiv 2412.18453; [design] line of
docs/papers notes: "written as a difference of convex functions of the viewpoint").

Shadows (2.5D). Let ``q_j`` (j = 1..J) be sample points on the target (footprint corners and
edge midpoints at ``sample_height_fractions`` of its height) and ``O_i`` an occluder prism
(footprint polygon, heights [z0, z1]); the lidar is at height h. The ray from (p, h) to q_j
crosses the occluder footprint at BEV points o with ``p = q + s (o - q)``, s >= 1, at height
``z_j + (h - z_j) / s``; it is blocked iff that height is in [z0, z1], i.e. s in
[s_lo, s_hi] (closed forms in ``_blocking_interval``). So the set of blocked viewpoints is

    S_ij = { q_j + s (o - q_j) : o in O_i, s in [s_lo, s_hi] }
         = conv( q_j + s_lo (O_i - q_j),  q_j + s_hi (O_i - q_j) ),

a convex polygon (convex combinations keep s in the interval and o in O_i). s_hi = inf is cut
where the shadow lies beyond every viewpoint the planner can reach. ``S_ij = {p : C p <= e}``
with unit rows c_r.

Penalty. With the signed polyhedral distance ``phi(p) = max_r (c_r.p - e_r)`` (the exact
distance to the nearest edge line inside, a lower bound of the distance outside) the clipped
ramp ``clip(1 - phi / eps, 0, 1) = [max(eps, phi) - max(0, phi)] / eps`` is 1 in the shadow and
falls to 0 at ``eps`` outside it: a DC function. Smoothing both maxima with log-sum-exp (length
tau) gives, per shadow k = (i, j),

    g_k(p) = tau log( exp(eps / tau) + sum_r exp((c_r.p - e_r) / tau) )     (convex)
    h_k(p) = tau log( 1 + sum_r exp((c_r.p - e_r) / tau) )                   (convex)
    pi_k(p) = (g_k(p) - h_k(p)) / eps  in [0, 1],

and the surrogate ``O(p) = (1/J) sum_k pi_k(p) = G(p) - H(p)``, G = sum g_k / (J eps) convex,
-H concave. |pi_k - clip(1 - phi_k/eps, 0, 1)| <= tau log(m_k + 1) / eps (m_k rows). Summing
over occluders (instead of a union) counts a ray blocked twice twice, so in the tau -> 0 limit
O upper-bounds the blocked fraction of the J samples. Deep inside a shadow pi is flat (the
fraction is too): leaving a deep shadow is the job of the sampled viewpoint selection
(viewpoints.py), the CCP refines around the shadow edges.

CCP. H is replaced by its tangent at the current iterate p_bar,
``H(p) >= H(p_bar) + grad H(p_bar).(p - p_bar)`` (convexity), with
``grad h_k = C_k^T softmax((C_k p_bar - e_k) / tau, with a 0 entry)``; so ``G - tangent`` is
convex and a global upper bound of O, tight at p_bar: the convex-concave procedure.

Differences from the [design] line: samples are fixed points on the footprint outline, not the
view-dependent visible surface (self-occlusion is left to the exact model), so the surrogate
also counts shadows of samples on the far side.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cvxpy as cp
import numpy as np

from planning.croa.config import SurrogateConfig
from planning.croa.occlusion import segments_blocked, stack_prisms
from planning.croa.polygons import PolygonError, convex_hull, polygon_halfspaces
from planning.croa.types import Polytope

PAD_ARGUMENT = -60.0  # exp(-60) ~ 1e-26: a padded row adds nothing to a log-sum-exp


class SurrogateError(ValueError):
    """A shadow does not fit the configured sizes."""


@dataclass(frozen=True, eq=False)
class ShadowSet:
    """K shadow polygons in padded half-space form (K = occluder_slots x J).

    Attributes:
        normals: [K, M, 2] unit outward normals (zero on padded rows).
        offsets: [K, M] offsets e.
        rows: [K, M] bool, real rows.
        active: [K] bool, slots holding a shadow.
        num_samples: J, target samples (the normalization of O).
        transition_m: eps (m). smoothing_m: tau (m).
    """

    normals: np.ndarray  # [K, M, 2]
    offsets: np.ndarray  # [K, M]
    rows: np.ndarray  # [K, M]
    active: np.ndarray  # [K]
    num_samples: int
    transition_m: float
    smoothing_m: float

    def lse_arguments(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(Cx, Cy, E) [K, M + 1] with ``g_k(p) = tau LSE(Cx p_x + Cy p_y - E)``: column 0 is
        the constant eps / tau, padded rows are the constant PAD_ARGUMENT."""
        tau = self.smoothing_m
        k = len(self.active)
        cx = np.zeros((k, self.rows.shape[1] + 1))
        cy = np.zeros_like(cx)
        e = np.full_like(cx, -PAD_ARGUMENT)
        e[:, 0] = -self.transition_m / tau
        cx[:, 1:] = np.where(self.rows, self.normals[..., 0] / tau, 0.0)
        cy[:, 1:] = np.where(self.rows, self.normals[..., 1] / tau, 0.0)
        e[:, 1:] = np.where(self.rows, self.offsets / tau, -PAD_ARGUMENT)
        return cx, cy, e

    def slot_weights(self) -> np.ndarray:  # [K]: the factor tau / (J eps) of active slots
        return self.active * self.smoothing_m / (self.num_samples * self.transition_m)

    def _rows(self, p: np.ndarray) -> np.ndarray:  # [N, 2] -> [N, K, M] (c.p - e) / tau
        r = (np.einsum("kmd,nd->nkm", self.normals, p) - self.offsets) / self.smoothing_m
        return np.where(self.rows, r, PAD_ARGUMENT)

    def convex_part(self, p: np.ndarray) -> np.ndarray:  # [N, 2] -> [N]
        r = self._rows(p)
        eps = np.full((*r.shape[:2], 1), self.transition_m / self.smoothing_m)
        g = np.logaddexp.reduce(np.concatenate([eps, r], axis=-1), axis=-1)
        return g @ self.slot_weights()

    def _h_rows(self, p: np.ndarray) -> np.ndarray:  # [N, 2] -> [N, K, M + 1]: rows and a 0
        r = self._rows(p)
        return np.concatenate([np.zeros((*r.shape[:2], 1)), r], axis=-1)

    def concave_part(self, p: np.ndarray) -> np.ndarray:  # [N, 2] -> [N], this is -H(p)
        return -(np.logaddexp.reduce(self._h_rows(p), axis=-1) @ self.slot_weights())

    def value(self, p: np.ndarray) -> np.ndarray:  # [N, 2] -> [N]
        """The smooth surrogate O(p) = G(p) - H(p)."""
        return self.convex_part(p) + self.concave_part(p)

    def limit_value(self, p: np.ndarray) -> np.ndarray:  # [N, 2] -> [N]
        """The tau -> 0 limit: (1/J) sum_k clip(1 - phi_k(p) / eps, 0, 1)."""
        phi = np.max(self._rows(p), axis=-1) * self.smoothing_m
        pen = np.clip(1.0 - phi / self.transition_m, 0.0, 1.0)
        return (pen * self.active).sum(axis=-1) / self.num_samples

    def concave_tangent(self, p_bar: np.ndarray) -> tuple[np.ndarray, float]:
        """grad H [2] and H(p_bar): ``-H(p) <= -H(p_bar) - grad.(p - p_bar)`` for all p."""
        r = self._h_rows(p_bar.reshape(1, 2))[0]  # [K, M + 1], column 0 is the constant 0
        soft = np.exp(r - np.logaddexp.reduce(r, axis=-1, keepdims=True))[:, 1:]
        grad_k = np.einsum("km,kmd->kd", soft, self.normals) / self.smoothing_m  # d(LSE)/dp
        w = self.slot_weights()
        value = float(np.logaddexp.reduce(r, axis=-1) @ w)
        return w @ grad_k, value


def convex_part_expression(p: cp.Expression, shadows: ShadowSet) -> cp.Expression:
    """G(p) as a cvxpy expression of a 2-vector (DCP: a non-negative sum of log-sum-exps)."""
    cx, cy, e = shadows.lse_arguments()
    args = cp.multiply(cx, p[0]) + cp.multiply(cy, p[1]) - e
    return shadows.slot_weights() @ cp.log_sum_exp(args, axis=1)


def target_samples(target_box: np.ndarray, fractions: Sequence[float]) -> np.ndarray:
    """Surrogate samples [J, 3]: BEV corners and edge midpoints at the given height fractions."""
    c, s = np.cos(target_box[6]), np.sin(target_box[6])
    hl, hw = 0.5 * target_box[3], 0.5 * target_box[4]
    local = np.array([[1, 1], [0, 1], [-1, 1], [-1, 0], [-1, -1], [0, -1], [1, -1], [1, 0]])
    local = local * np.array([hl, hw])
    xy = target_box[:2] + local @ np.array([[c, s], [-s, c]])
    bottom = target_box[2] - 0.5 * target_box[5]
    z = [bottom + f * target_box[5] for f in fractions]
    return np.array([[x, y, zz] for zz in z for x, y in xy])


def _blocking_interval(z: float, h: float, z0: float, z1: float) -> tuple[float, float]:
    """[s_lo, s_hi] of s >= 1 with ``z + (h - z) / s`` in [z0, z1] (empty: s_lo >= s_hi)."""
    if abs(h - z) < 1e-9:
        return (1.0, np.inf) if z0 <= h <= z1 else (1.0, 1.0)
    if h > z:
        if z1 <= z:
            return 1.0, 1.0
        lo = max(1.0, (h - z) / (z1 - z))
        hi = (h - z) / (z0 - z) if z0 > z else np.inf
    else:
        if z0 >= z:
            return 1.0, 1.0
        lo = max(1.0, (z - h) / (z - z0))
        hi = (z - h) / (z - z1) if z1 < z else np.inf
    return lo, hi


def shadow_polygon(
    q: np.ndarray,  # [3] target sample
    occluder: Polytope,
    sensor_height_m: float,
    far_m: float,
) -> np.ndarray | None:  # [V, 2] CCW, or None when the occluder never blocks q
    """The blocked-viewpoint polygon S (module docstring), cut at distance >= far_m from q."""
    if np.max(occluder.A @ q[:2] - occluder.b) <= 1e-6:
        return None  # the sample is inside the occluder's footprint: no well-defined shadow
    lo, hi = _blocking_interval(float(q[2]), sensor_height_m, occluder.z_min_m, occluder.z_max_m)
    rel = occluder.vertices - q[:2]
    hi = min(hi, far_m / float(np.min(np.linalg.norm(rel, axis=1))))
    if lo >= hi:
        return None
    try:
        return convex_hull(np.vstack([q[:2] + lo * rel, q[:2] + hi * rel]))
    except PolygonError:
        return None


def build_shadows(
    target_box: np.ndarray,  # [7]
    occluders: Sequence[Polytope],
    sensor_height_m: float,
    config: SurrogateConfig,
    far_m: float,
    probes_xy: np.ndarray,  # [N, 2] viewpoints the planner may reach
) -> ShadowSet:
    """Shadows of the ``occluder_slots`` occluders that block the most (probe, sample) rays.

    Raises:
        SurrogateError: a shadow with more faces than ``max_shadow_faces``.
    """
    samples = target_samples(
        np.asarray(target_box, dtype=np.float64), config.sample_height_fractions
    )
    ranked = _rank_occluders(samples, occluders, sensor_height_m, probes_xy)
    j, m = len(samples), config.max_shadow_faces
    k = config.occluder_slots * j
    normals, offsets = np.zeros((k, m, 2)), np.zeros((k, m))
    rows, active = np.zeros((k, m), dtype=bool), np.zeros(k, dtype=bool)
    for slot, idx in enumerate(ranked[: config.occluder_slots]):
        for js, q in enumerate(samples):
            poly = shadow_polygon(q, occluders[idx], sensor_height_m, far_m)
            if poly is None:
                continue
            if len(poly) > m:
                raise SurrogateError(f"shadow has {len(poly)} faces > max_shadow_faces={m}")
            a, b = polygon_halfspaces(poly)
            kk = slot * j + js
            normals[kk, : len(a)], offsets[kk, : len(a)] = a, b
            rows[kk, : len(a)], active[kk] = True, True
    return ShadowSet(normals, offsets, rows, active, j, config.transition_m, config.smoothing_m)


def _rank_occluders(
    samples: np.ndarray,  # [J, 3]
    occluders: Sequence[Polytope],
    sensor_height_m: float,
    probes_xy: np.ndarray,  # [N, 2]
) -> list[int]:
    """Occluders that block at least one probe-to-sample ray, most blocking first."""
    origins = np.hstack([probes_xy, np.full((len(probes_xy), 1), sensor_height_m)])
    counts = np.array(
        [segments_blocked(origins, samples, *stack_prisms([o])).sum() for o in occluders]
    )
    order = np.argsort(-counts, kind="stable")
    return [int(i) for i in order if counts[i] > 0]
