"""Difference-of-convex (DC) surrogate of the target's occlusion along a planned trajectory, as
a function of the lidar positions at the trajectory's scan times (CROA, arXiv 2412.18453;
[design] line of the paper notes: "written as a difference of convex functions of the
viewpoint").

Target surface. Samples ``q_s`` on the target box's four vertical faces (a grid over the
face's extent and over its height) and on its top, each with its face's outward normal ``n_s``
and cell area ``a_s``. From a lidar at ``P = (p, h)`` only faces with ``n_s.(P - q_s) > 0``
are visible (self-occlusion: the box hides its own back faces), weighted by their solid angle,
as the exact occlusion (planning/croa/occlusion.py) does:

    w_s(p) = a_s max(0, n_s.(P - q_s)) / |P - q_s|^3,      w_hat_s = w_s / sum_s w_s.

Shadows (2.5D). For a sample q and an occluder prism O_i (footprint, heights [z0, z1]) the
viewpoints whose ray to q passes through O_i form the convex polygon

    S_si = conv( q + s_lo (O_i - q),  q + s_hi (O_i - q) ) = { p : C p <= e },

with [s_lo, s_hi] the ray parameters at which the ray's height lies in [z0, z1]
(``_blocking_interval``; exact, property-tested against the ray test). s_hi = inf is cut where
the shadow lies beyond every viewpoint the planner can reach. A moving occluder has its shadow
at each scan time from its predicted position. A sample inside an occluder's footprint (a
perceived box overlapping the target's) and below its top is blocked from everywhere: its
shadow is a square around it larger than the reachable region.

Blocked-ness of one sample by one occluder, with the signed polyhedral distance
``phi(p) = max_r (c_r.p - e_r) + eps / 2`` (the ramp is centred on the shadow's edge):

    r(phi) = clip(1 - phi / eps, 0, 1) + beta clip(-phi / D, 0, 1)

is 1 inside the shadow and 0 beyond eps / 2 outside (the occlusion indicator, smoothed over
eps), plus a depth term that grows by beta over the first D metres inside: deep in a shadow the
indicator is flat and no local method could leave it, the depth term says which way is out.
DC form (both parts are non-decreasing convex functions of the convex phi, hence convex in p):

    r = (1 + beta) + G(phi) - H(phi),   G(x) = max(0, x - eps) / eps,
    H(x) = (beta / D) max(0, x + D) + (1 / eps - beta / D) max(0, x)   (needs beta / D < 1 / eps).

Union over occluders (a ray blocked twice counts once): ``u_s = max_i r_si``. The surrogate
of one scan and of the trajectory (scan times k, weights alpha_k summing to 1):

    O_k(p) = sum_s w_hat_s(p) u_s(p),      O(p_1..p_K) = sum_k alpha_k O_k(p_k).

With beta = 0 and eps -> 0, O_k is exactly the exact occlusion computed on these samples.

CCP. At the current lidar positions p_bar_k the solid-angle weights are frozen (they change
slowly and are re-evaluated in the merit) and every H is replaced by its supporting line
``H(phi_bar) + sigma (c_r*.(p - p_bar))`` (sigma a subgradient of H at phi_bar, r* the active
row), which under-estimates H. So per sample

    u_s(p) <= max_i [ (1 + beta) - H_si(p_bar) - sigma_si c_r*.(p - p_bar) + G(phi_si(p)) ],

a convex, piecewise-linear majorant of u_s that is tight at p_bar (the convex-concave
procedure for a max of DC functions). In the convex program it is an epigraph variable w_ks
>= 0 with one linear row per (occluder, shadow face) plus one for G = 0: a linear program in
the lidar positions (``CcpModel``), no exponential cones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from geometry.transforms import rotation_z
from planning.croa.config import SurrogateConfig
from planning.croa.occlusion import culled_hits
from planning.croa.types import Polytope

PAD_CONST = -1e3  # a padded model row reads w >= -1000: never active (w >= 0 anyway)


class SurrogateError(ValueError):
    """A shadow does not fit the configured sizes."""


@dataclass(frozen=True, eq=False)
class TargetSurface:
    """Samples of the target box's visible-able surface (module docstring).

    Attributes:
        points: [S, 3] sample positions. normals: [S, 3] outward face normals.
        areas: [S] cell areas (m^2). max_facing: most samples on the faces one viewpoint can
        see (two adjacent vertical faces and the top), the padding size of the CCP model.
    """

    points: np.ndarray
    normals: np.ndarray
    areas: np.ndarray
    max_facing: int

    def weights(self, views: np.ndarray, height_m: float) -> np.ndarray:  # [..., 2] -> [..., S]
        """Normalized solid-angle weights w_hat of the samples from lidar positions (0 on faces
        turned away)."""
        rel = np.concatenate([views, np.full((*views.shape[:-1], 1), height_m)], axis=-1)
        rel = rel[..., None, :] - self.points  # [..., S, 3]
        dist = np.maximum(np.linalg.norm(rel, axis=-1), 1e-6)
        w = self.areas * np.maximum(0.0, np.einsum("...sd,sd->...s", rel, self.normals)) / dist**3
        return w / np.maximum(w.sum(axis=-1, keepdims=True), 1e-300)


def target_surface(box: np.ndarray, config: SurrogateConfig) -> TargetSurface:
    """Samples [S] on the four vertical faces (``length_samples`` or ``width_samples`` along
    the face times ``height_samples``) and the top (``length_samples`` along its centre line)
    of a box [7]."""
    axes = rotation_z(float(box[6])).T  # rows: the box's x, y, z axes in the world
    half = 0.5 * np.asarray(box[3:6], dtype=np.float64)
    along = {0: config.length_samples, 1: config.width_samples}
    points, normals, areas = [], [], []

    def grid(n: int) -> np.ndarray:  # cell centres in [-1, 1]
        return (np.arange(n) + 0.5) / n * 2.0 - 1.0

    for axis, span in ((0, 1), (1, 0)):  # +-x faces span the width, +-y faces the length
        nu, nz = along[span], config.height_samples
        gu, gz = (g.ravel() for g in np.meshgrid(grid(nu), grid(nz), indexing="ij"))
        for sign in (1.0, -1.0):
            normal = sign * axes[axis]
            centre = box[:3] + half[axis] * normal
            points.append(centre + np.outer(gu * half[span], axes[span])
                          + np.outer(gz * half[2], axes[2]))  # fmt: skip
            normals.append(np.repeat(normal[None], nu * nz, axis=0))
            areas.append(np.full(nu * nz, 4.0 * half[span] * half[2] / (nu * nz)))
    n_top = config.length_samples
    top = box[:3] + half[2] * axes[2] + np.outer(grid(n_top) * half[0], axes[0])
    points.append(top)
    normals.append(np.repeat(axes[2][None], n_top, axis=0))
    areas.append(np.full(n_top, 4.0 * half[0] * half[1] / n_top))
    facing = (config.length_samples + config.width_samples) * config.height_samples + n_top
    return TargetSurface(np.vstack(points), np.vstack(normals), np.concatenate(areas), facing)


def blocking_interval(
    z: np.ndarray, h: float, z0: float, z1: float
) -> tuple[np.ndarray, np.ndarray]:  # [S], [S]
    """[s_lo, s_hi] of s >= 1 with ``z + (h - z) / s`` in [z0, z1] for sample heights z [S]
    (empty where s_lo >= s_hi)."""
    z = np.asarray(z, dtype=np.float64)
    lo, hi = np.ones_like(z), np.ones_like(z)
    level = np.abs(h - z) < 1e-9  # the ray is horizontal at the sensor's height
    hi[level & (z0 <= h) & (h <= z1)] = np.inf
    with np.errstate(divide="ignore", invalid="ignore"):
        up = ~level & (h > z) & (z1 > z)  # sensor above the sample, occluder top above it
        lo[up] = np.maximum(1.0, (h - z[up]) / (z1 - z[up]))
        hi[up] = np.where(z0 > z[up], (h - z[up]) / (z0 - z[up]), np.inf)
        down = ~level & (h < z) & (z0 < z)  # sensor below the sample, occluder bottom below
        lo[down] = np.maximum(1.0, (z[down] - h) / (z[down] - z0))
        hi[down] = np.where(z1 < z[down], (z[down] - h) / (z[down] - z1), np.inf)
    return lo, hi


def shadow_rows(
    points: np.ndarray,  # [S, 3] target samples
    occluder: Polytope,
    sensor_height_m: float,
    far_m: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # normals [S, m + 2, 2], offsets, active [S]
    """Half-spaces ``{p : n.p <= e}`` of the shadow S of each sample (module docstring), cut at
    distance >= far_m from it. S is the hull of the occluder's copies scaled by s_lo and s_hi
    about q, so its edges are the occluder's edges facing q (``c = b - a.q < 0``) at s_lo, the
    ones facing away (``c > 0``) at s_hi (``a.p <= a.q + s c``), and the two tangent lines from q
    through the occluder's extreme-bearing vertices. A sample inside the footprint (a
    perceived box overlapping the target's) and below its top is blocked from everywhere: its
    shadow is a square around it larger than the reachable region. Inactive samples (the
    occluder never blocks them) have zero rows."""
    q = np.asarray(points, dtype=np.float64)
    a, b, verts = occluder.A, occluder.b, occluder.vertices  # [m, 2], [m], [m, 2]
    s_count, m = len(q), len(b)
    lo, hi = blocking_interval(q[:, 2], sensor_height_m, occluder.z_min_m, occluder.z_max_m)
    rel = verts[None] - q[:, None, :2]  # [S, m, 2]
    hi = np.minimum(hi, far_m / np.linalg.norm(rel, axis=-1).min(axis=1))
    c = b[None] - q[:, :2] @ a.T  # [S, m]
    inside = np.max(-c, axis=1) <= 1e-6
    offsets = np.zeros((s_count, m + 2))
    offsets[:, :m] = q[:, :2] @ a.T + np.where(c > 0.0, hi[:, None], lo[:, None]) * c
    bearing = np.arctan2(rel[..., 1], rel[..., 0])  # [S, m]
    toward = np.arctan2(*(verts.mean(axis=0) - q[:, :2]).T[::-1])  # [S]
    relative = (bearing - toward[:, None] + np.pi) % (2.0 * np.pi) - np.pi
    pick = np.arange(s_count)
    d_max = rel[pick, np.argmax(relative, axis=1)]
    d_min = rel[pick, np.argmin(relative, axis=1)]
    d_max /= np.linalg.norm(d_max, axis=1, keepdims=True)
    d_min /= np.linalg.norm(d_min, axis=1, keepdims=True)
    normals = np.zeros((s_count, m + 2, 2))
    normals[:, :m] = a[None]
    normals[:, m] = np.stack([-d_max[:, 1], d_max[:, 0]], axis=1)  # shadow clockwise of it
    normals[:, m + 1] = np.stack([d_min[:, 1], -d_min[:, 0]], axis=1)  # counter-clockwise
    offsets[:, m:] = np.einsum("sjd,sd->sj", normals[:, m:], q[:, :2])
    active = ~inside & (lo < hi)
    everywhere = inside & (q[:, 2] <= occluder.z_max_m)
    square = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
    normals[everywhere] = np.vstack([square, np.zeros((m - 2, 2))])
    offsets[everywhere] = np.hstack([q[everywhere, :2] @ square.T + far_m,
                                     np.zeros((int(everywhere.sum()), m - 2))])  # fmt: skip
    normals[~(active | everywhere)] = 0.0
    offsets[~(active | everywhere)] = 0.0
    return normals, offsets, active | everywhere


@dataclass(frozen=True, eq=False)
class CcpModel:
    """The CCP majorant at p_bar as linear rows ``w_ks >= cx p_kx + cy p_ky + c`` (index
    [k, s, i, r]: scan, facing-sample slot, occluder slot, row) and the objective weights
    ``alpha_k w_hat_ks(p_bar)`` [K, S] of the epigraph variables (0 on padded slots)."""

    cx: np.ndarray  # [K, S, I, R]
    cy: np.ndarray  # [K, S, I, R]
    c: np.ndarray  # [K, S, I, R]
    weights: np.ndarray  # [K, S]

    def value(self, views: np.ndarray) -> np.ndarray:  # [N, K, 2] -> [N]
        """The majorant at lidar positions (for tests and the predicted decrease)."""
        rows = (np.einsum("ksir,nk->nksir", self.cx, views[..., 0])
                + np.einsum("ksir,nk->nksir", self.cy, views[..., 1]) + self.c)  # fmt: skip
        w = np.maximum(0.0, rows.max(axis=(-1, -2)))  # [N, K, S]
        return np.einsum("nks,ks->n", w, self.weights)


@dataclass(frozen=True, eq=False)
class ShadowSet:
    """Shadows of the ranked occluders for every target sample at every scan time.

    Attributes:
        surface: the target samples (S). normals: [K, S, I, M, 2] unit outward normals of the
        shadow polygons; offsets: [K, S, I, M]; rows: [K, S, I, M] real rows; active:
        [K, S, I] slots holding a shadow. scan_weights: [K] alpha_k. sensor_height_m: h.
        transition_m: eps. depth_m: D. depth_gain: beta.
    """

    surface: TargetSurface
    normals: np.ndarray
    offsets: np.ndarray
    rows: np.ndarray
    active: np.ndarray
    scan_weights: np.ndarray
    sensor_height_m: float
    transition_m: float
    depth_m: float
    depth_gain: float

    def phi(self, views: np.ndarray) -> np.ndarray:  # [N, K, 2] -> [N, K, S, I]
        """Centred signed distances phi (module docstring); +inf on empty slots."""
        d = np.einsum("ksimd,nkd->nksim", self.normals, views) - self.offsets
        d = np.where(self.rows, d, -np.inf).max(axis=-1) + 0.5 * self.transition_m
        return np.where(self.active, d, np.inf)

    def blocked(self, views: np.ndarray, depth: bool = True) -> np.ndarray:  # -> [N, K, S]
        """u_s: the union over occluders of r(phi) (without the depth term: the smoothed
        indicator)."""
        phi = self.phi(views)
        r = np.clip(1.0 - phi / self.transition_m, 0.0, 1.0)
        if depth:
            r = r + self.depth_gain * np.clip(-phi / self.depth_m, 0.0, 1.0)
        return r.max(axis=-1, initial=0.0)

    def scan_values(self, views: np.ndarray, depth: bool = True) -> np.ndarray:  # -> [N, K]
        """O_k(p_k) of each scan: weighted blocked-ness of the samples facing p_k."""
        w = self.surface.weights(views, self.sensor_height_m)  # [N, K, S]
        return np.sum(w * self.blocked(views, depth), axis=-1)

    def value(self, views: np.ndarray, depth: bool = True) -> np.ndarray:  # [N, K, 2] -> [N]
        """The trajectory surrogate O = sum_k alpha_k O_k(p_k)."""
        return self.scan_values(views, depth) @ self.scan_weights

    def ccp_model(self, views_bar: np.ndarray) -> CcpModel:  # [K, 2]
        """The CCP majorant at views_bar (module docstring), facing samples only."""
        eps, depth, beta = self.transition_m, self.depth_m, self.depth_gain
        k_count, s_pad = len(views_bar), self.surface.max_facing
        w_bar = self.surface.weights(views_bar, self.sensor_height_m)  # [K, S]
        # the facing samples of each scan first (stable), padded to s_pad slots
        order = np.argsort(w_bar <= 0.0, axis=1, kind="stable")[:, :s_pad]  # [K, s_pad]
        valid = np.take_along_axis(w_bar, order, axis=1) > 0.0  # [K, s_pad]
        kk = np.arange(k_count)[:, None]
        normals, offsets = self.normals[kk, order], self.offsets[kk, order]  # [K, s, I, M(, 2)]
        rows = self.rows[kk, order]
        active = self.active[kk, order] & valid[..., None]  # [K, s, I]
        x = self.phi(views_bar[None])[0][kk, order]  # [K, s, I]
        x = np.where(active, x, 0.0)
        h_val = beta / depth * np.maximum(0.0, x + depth) + (1 / eps - beta / depth) * np.maximum(
            0.0, x
        )
        sigma = beta / depth * (x + depth > 0) + (1 / eps - beta / depth) * (x > 0)
        dist = np.einsum("ksimd,kd->ksim", normals, views_bar) - offsets
        best = np.argmax(np.where(rows, dist, -np.inf), axis=-1)  # [K, s, I] active row r*
        grad = (
            sigma[..., None] * np.take_along_axis(normals, best[..., None, None], axis=3)[..., 0, :]
        )  # [K, s, I, 2]
        c0 = 1.0 + beta - h_val + np.einsum("ksid,kd->ksi", grad, views_bar)
        cx = np.concatenate([-grad[..., :1], normals[..., 0] / eps - grad[..., :1]], axis=-1)
        cy = np.concatenate([-grad[..., 1:], normals[..., 1] / eps - grad[..., 1:]], axis=-1)
        c = np.concatenate([c0[..., None], c0[..., None] - (offsets + 0.5 * eps) / eps], axis=-1)
        real = np.concatenate([active[..., None], rows & active[..., None]], axis=-1)
        c = np.where(real, c, PAD_CONST)
        cx, cy = np.where(real, cx, 0.0), np.where(real, cy, 0.0)
        weights = np.where(valid, self.scan_weights[:, None] * np.take_along_axis(
            w_bar, order, axis=1), 0.0)  # fmt: skip
        return CcpModel(cx, cy, c, weights)


def build_shadows(
    target_box: np.ndarray,  # [7]
    occluders: Sequence[Polytope],
    config: SurrogateConfig,
    sensor_height_m: float,
    far_m: float,
    probes_xy: np.ndarray,  # [N, 2] viewpoints the planner may reach
    scan_times_s: np.ndarray,  # [K] time of each scan after the observation (moving occluders)
) -> ShadowSet:
    """Shadows of the ``occluder_slots`` occluders that block the most (probe, sample) rays.

    Raises:
        SurrogateError: a shadow with more faces than ``max_shadow_faces``.
    """
    surface = target_surface(np.asarray(target_box, dtype=np.float64), config)
    ranked = rank_occluders(surface.points, occluders, sensor_height_m, probes_xy, scan_times_s)
    ranked = ranked[: config.occluder_slots]
    k_count, s_count, m = len(scan_times_s), len(surface.points), config.max_shadow_faces
    shape = (k_count, s_count, config.occluder_slots)
    normals, offsets = np.zeros((*shape, m, 2)), np.zeros((*shape, m))
    rows, active = np.zeros((*shape, m), dtype=bool), np.zeros(shape, dtype=bool)
    for slot, idx in enumerate(ranked):
        occluder = occluders[idx]
        times = scan_times_s if occluder.is_moving else scan_times_s[:1]
        if len(occluder.b) + 2 > m:
            raise SurrogateError(f"shadows of a {len(occluder.b)}-face occluder have "
                                 f"{len(occluder.b) + 2} faces > max_shadow_faces={m}")  # fmt: skip
        for k, t in enumerate(times):
            a, e, on = shadow_rows(surface.points, occluder.at_time(float(t)), sensor_height_m,
                                   far_m)  # fmt: skip
            width = a.shape[1]
            normals[k, :, slot, :width], offsets[k, :, slot, :width] = a, e
            rows[k, :, slot, :width] = on[:, None] & np.any(a != 0.0, axis=-1)  # real faces
            active[k, :, slot] = on
        if not occluder.is_moving:  # a static shadow is the same at every scan
            for arr in (normals, offsets, rows, active):
                arr[1:, :, slot] = arr[0, :, slot]
    alpha = np.asarray(config.scan_weights, dtype=np.float64)
    return ShadowSet(surface, normals, offsets, rows, active, alpha / alpha.sum(),
                     sensor_height_m, config.transition_m, config.depth_m,
                     config.depth_gain)  # fmt: skip


def rank_occluders(
    samples: np.ndarray,  # [S, 3]
    occluders: Sequence[Polytope],
    sensor_height_m: float,
    probes_xy: np.ndarray,  # [N, 2]
    scan_times_s: np.ndarray,  # [K]
) -> list[int]:
    """Occluders that block at least one probe-to-sample ray at a scan time, most first."""
    if not occluders:
        return []
    origins = np.hstack([probes_xy, np.full((len(probes_xy), 1), sensor_height_m)])
    counts = np.zeros(len(occluders))
    moving = [k for k, o in enumerate(occluders) if o.is_moving]
    static = [k for k, o in enumerate(occluders) if not o.is_moving]
    times = scan_times_s if moving else scan_times_s[:1]

    def add(idx: list[int], t_s: float, repeat: int) -> None:  # hits of these at time t_s
        hits, index = culled_hits([occluders[i].at_time(t_s) for i in idx], origins, samples)
        per = np.zeros(len(idx) + 1)  # the last one counts the padding (index -1)
        np.add.at(per, index, hits.sum(axis=1))
        counts[idx] += repeat * per[:-1]

    if static:  # a static occluder blocks the same rays at every scan: test it once
        add(static, float(times[0]), len(times))
    for t in times if moving else ():
        add(moving, float(t), 1)
    order = np.argsort(-counts, kind="stable")
    return [int(i) for i in order if counts[i] > 0]
