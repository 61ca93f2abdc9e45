"""LNSP: offline map matching of sparse trajectories with sub-region localisation-error models
and local non-shortest-path detection (arXiv 2505.23123).

Formulation (what this module computes; notation per trajectory, fixes i = 0..n-1):

- Candidates of fix i: the ``k`` nearest edges within the radius of i's sub-region LED
  (:mod:`mapmatch.led`): ``radius_sigmas`` times the largest sigma of i's cell and its
  neighbours; a fix with no edge inside searches ``fallback_radius_factor`` times farther.
- Emission: log p(z_i | c) = -0.5 (d(z_i, c) / sigma_i)^2, sigma_i of i's sub-region.
- Transition (Newson-Krumm with the regions' LED): with L the route length between
  candidates (UBODT) and g the straight-line distance between the fixes,
  log p(c -> c') = -|L - g| / beta_i - uturn_penalty [route turns back on itself],
  beta_i = beta_sigma * sqrt(sigma_i^2 + sigma_{i+1}^2) + beta_gc * g: noise in both fixes
  moves g by about sqrt(sigma_i^2 + sigma_{i+1}^2), and a correct route exceeds g more the
  farther apart the fixes are. A second candidate behind the first on one edge is a vehicle
  that stood still: -0.5 (back / sqrt(sigma_i^2 + sigma_{i+1}^2))^2 (engine, all methods).
- Sliding-window path scoring: a first Viterbi pass gives route lengths L_j; the speed around
  step j is v_j = sum(L) / sum(dt) over ``window`` steps on each side, j left out (the window
  test below uses it). With ``speed_term`` a second pass adds
  log p = -0.5 (max(0, log((L + s) / (v_j dt_j + s)) - log(1 + speed_tolerance)) / speed_sigma)^2
  (s = sigma_i): a route much faster than its window costs, a slower one is free (vehicles
  queue and stop), and Viterbi decodes again over all fixes.
- Local non-shortest paths (:mod:`mapmatch.window`): in every three-fix window the route
  through the middle fix is compared with the direct one; a non-shortest path that the fix
  forces but that the fix's own LED radius explains away is noise (the fix is dropped, the
  trajectory decoded again, the fix placed on the path); one the LED cannot explain is a
  real detour and stays.
- Unobserved detours (``detours``, off by default): a step whose route is much shorter than
  the window speed says, L_j < detour_ratio * v_j * dt_j, is tried through via nodes v inside
  the ellipse |v - x_j| + |v - x_{j+1}| <= v_j dt_j (route c_j -> v -> c_{j+1}, no U-turn at v),
  kept if it beats the shortest route by ``detour_margin``. On our synthetic data vehicles
  stop often enough that this mostly invents detours (docs/mapmatch.md has the numbers).

Every term is a log added to the path score, so each can be switched off for ablations
(a uniform LED, ``speed_term``, ``uturn_penalty = 0``, ``outliers = False``, ``detours``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from mapmatch.lattice import Batch, viterbi
from mapmatch.led import LedModel
from mapmatch.matcher import Decoded, LatticeMatcher, MatcherError
from mapmatch.network import RoadNetwork
from mapmatch.ubodt import Ubodt
from mapmatch.window import window_outliers


@dataclass(frozen=True)
class LnspConfig:
    """Attributes:
    k: candidates per point, >= 1.
    beta_sigma: transition scale per combined LED sigma, > 0.
    beta_gc: transition scale per metre of straight-line distance, >= 0.
    speed_term: add the one-sided speed term and decode a second time (off by default: it
    changed no figure of the benchmark, docs/mapmatch.md).
    speed_sigma: std of log(route speed / window speed), > 0 (speed term, via detours).
    window: steps on each side of the sliding window, >= 1.
    detours: try via-node detours where the speed says the route is too short.
    detour_ratio: route/expected length below which a step is a detour suspect, (0, 1].
    detour_margin: log-score a via route must gain over the shortest one, >= 0.
    max_via: via nodes tried per suspect step (nearest to the fixes' midpoint), >= 1.
    max_speed_mps: hard speed limit on routes (m/s), 0 = none.
    speed_tolerance: relative excess over the window speed that is free, >= 0.
    fallback_radius_factor: points with no road within their LED radius search this many
    times farther, >= 1.
    uturn_penalty: log-score cost of a route that turns back on itself between two fixes,
    >= 0 (part of the path score: drivers rarely U-turn; noisy fixes make HMMs do it).
    outliers: run the three-fix window test (:mod:`mapmatch.window`): a non-shortest path
    forced by a fix that the direct route explains within its LED is dropped.
    """

    k: int = 8
    beta_sigma: float = 1.0
    beta_gc: float = 0.02
    speed_term: bool = False
    speed_sigma: float = 0.6
    window: int = 3
    detours: bool = False
    detour_ratio: float = 0.6
    detour_margin: float = 1.0
    max_via: int = 64
    max_speed_mps: float = 0.0
    speed_tolerance: float = 0.3
    fallback_radius_factor: float = 3.0
    uturn_penalty: float = 10.0
    outliers: bool = True

    def __post_init__(self) -> None:
        if self.k < 1 or self.window < 1 or self.max_via < 1:
            raise MatcherError(
                f"k, window and max_via must be >= 1, got {self.k}, {self.window}, {self.max_via}"
            )
        if not self.speed_sigma > 0:
            raise MatcherError(f"speed_sigma must be > 0, got {self.speed_sigma}")
        if not self.beta_sigma > 0:
            raise MatcherError(f"beta_sigma must be > 0, got {self.beta_sigma}")
        for name in (
            "beta_gc",
            "detour_margin",
            "max_speed_mps",
            "speed_tolerance",
            "uturn_penalty",
        ):
            if not getattr(self, name) >= 0:
                raise MatcherError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not self.fallback_radius_factor >= 1:
            raise MatcherError(
                f"fallback_radius_factor must be >= 1, got {self.fallback_radius_factor}"
            )
        if not 0 < self.detour_ratio <= 1:
            raise MatcherError(f"detour_ratio must be in (0, 1], got {self.detour_ratio}")


class LnspMatcher(LatticeMatcher):
    """LNSP (see the module docstring)."""

    name = "lnsp"

    def __init__(
        self, network: RoadNetwork, ubodt: Ubodt, led: LedModel, config: LnspConfig | None = None
    ):
        self.config = config or LnspConfig()
        super().__init__(network, ubodt, self.config.k)
        self.led = led
        self.fallback_radius_factor = self.config.fallback_radius_factor
        self.uturn_penalty = self.config.uturn_penalty
        self._node_tree = cKDTree(network.node_xy)

    def point_model(self, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        sigma = self.led.sigma_at(xy)
        return sigma, self.led.radius_at(xy)

    def _beta(self, batch: Batch, gc: np.ndarray) -> np.ndarray:
        s = batch.sigma_m
        pair = np.sqrt(s[:, :-1] ** 2 + s[:, 1:] ** 2)
        return self.config.beta_sigma * pair + self.config.beta_gc * gc

    def score(self, batch: Batch, route: np.ndarray, gc: np.ndarray) -> tuple:
        c = batch.cand
        em = np.where(c.valid, -0.5 * (c.dist / batch.sigma_m[:, :, None]) ** 2, -np.inf)
        tr = -np.abs(route - gc[:, :, None, None]) / self._beta(batch, gc)[:, :, None, None]
        if self.config.max_speed_mps > 0:
            dt = np.diff(batch.t_s, axis=1)[:, :, None, None]
            limit = self.config.max_speed_mps * np.where(dt > 0, dt, np.inf)
            tr = np.where(route > limit, -np.inf, tr)
        return em, np.where(np.isfinite(route), tr, -np.inf)

    def find_outliers(self, batch: Batch, dec: Decoded) -> np.ndarray | None:
        if not self.config.outliers:
            return None
        wide = self.led.wide_sigma_at(batch.xy.reshape(-1, 2)).reshape(batch.xy.shape[:2])
        B, N = wide.shape
        max_via = np.full((B, N), np.inf)
        if np.isfinite(batch.t_s).any() and N >= 3:
            _, v = self.window_speed(batch, dec)
            span = batch.t_s[:, 2:] - batch.t_s[:, :-2]
            pair = np.stack([v[:, :-1], v[:, 1:]])
            ok = np.isfinite(pair)
            speed = np.where(
                ok.any(0), np.where(ok, pair, 0).sum(0) / np.maximum(ok.sum(0), 1), np.nan
            )
            fast = (1.0 + self.config.speed_tolerance) * speed * span
            max_via[:, 1:-1] = np.where(np.isfinite(fast) & (span > 0), fast, np.inf)
        return window_outliers(self.net, self.ubodt, batch, dec.path, dec.brk, dec.route,
                               1.5 * wide, 4.0 * wide, max_via)  # fmt: skip

    # --- sliding window -------------------------------------------------------------------
    def window_speed(self, batch: Batch, dec: Decoded) -> tuple[np.ndarray, np.ndarray]:
        """Decoded route length per step [B, N-1] and the leave-one-out speed of the window
        around each step [B, N-1] (m/s; nan where no timed neighbour)."""
        B, N = dec.path.shape
        bi, ji = np.arange(B)[:, None], np.arange(N - 1)[None, :]
        L = dec.route[bi, ji, dec.path[:, :-1], dec.path[:, 1:]]
        dt = np.diff(batch.t_s, axis=1)
        ok = batch.step_mask & ~dec.brk & np.isfinite(L) & (dt > 0)
        Lz, dz = np.where(ok, L, 0.0), np.where(ok, dt, 0.0)
        w = self.config.window
        cl = np.cumsum(np.pad(Lz, ((0, 0), (w + 1, w))), axis=1)
        cd = np.cumsum(np.pad(dz, ((0, 0), (w + 1, w))), axis=1)
        idx = np.arange(N - 1)
        sum_l = cl[:, idx + 2 * w + 1] - cl[:, idx] - Lz
        sum_d = cd[:, idx + 2 * w + 1] - cd[:, idx] - dz
        with np.errstate(invalid="ignore", divide="ignore"):
            v = np.where(sum_d > 0, sum_l / sum_d, np.nan)
        return L, v

    def refine(self, batch: Batch, dec: Decoded, gc: np.ndarray) -> Decoded:
        cfg = self.config
        if not (cfg.speed_term or cfg.detours) or not np.isfinite(batch.t_s).any():
            return dec
        _, v = self.window_speed(batch, dec)
        dt = np.diff(batch.t_s, axis=1)
        out = dec
        if cfg.speed_term:
            expect = v * dt
            s = batch.sigma_m[:, :-1]
            speed = self._speed_term(dec.route, expect[:, :, None, None], s[:, :, None, None])
            use = np.isfinite(expect) & (dt > 0) & batch.step_mask
            tr = np.where(use[:, :, None, None], dec.tr + np.nan_to_num(speed, nan=0.0), dec.tr)
            tr = self._pad_steps(batch, tr)
            path, brk = viterbi(dec.em, tr)
            out = Decoded(path, brk, dec.route, dec.forward, dec.em, tr, {})
        if cfg.detours:
            out = self._detours(batch, out, gc, v, dt)
        return out

    def _speed_term(self, route: np.ndarray, expect: np.ndarray, s: np.ndarray) -> np.ndarray:
        """One-sided: a route faster than the window speed by more than the tolerance costs;
        a slower one is free (vehicles stop at lights and in queues)."""
        cfg = self.config
        with np.errstate(invalid="ignore", divide="ignore"):
            excess = np.log((route + s) / (expect + s)) - np.log1p(cfg.speed_tolerance)
        return -0.5 * (np.maximum(excess, 0.0) / cfg.speed_sigma) ** 2

    # --- detours --------------------------------------------------------------------------
    def _detours(self, batch, dec: Decoded, gc, v, dt) -> Decoded:
        cfg = self.config
        L, _ = self.window_speed(batch, dec)
        expect = v * dt
        with np.errstate(invalid="ignore"):
            suspect = batch.step_mask & ~dec.brk & (cfg.detour_ratio * expect > L)
        bb, jj = np.nonzero(suspect)
        if len(bb) == 0:
            return dec
        net, c = self.net, batch.cand
        ka, kc = dec.path[bb, jj], dec.path[bb, jj + 1]
        ea, ec = c.edge[bb, jj, ka], c.edge[bb, jj + 1, kc]
        oa, oc = c.offset[bb, jj, ka], c.offset[bb, jj + 1, kc]
        pa, pc = c.xy[bb, jj, ka], c.xy[bb, jj + 1, kc]
        E = expect[bb, jj]
        nb = min(cfg.max_via, net.num_nodes)
        _, vias = self._node_tree.query(0.5 * (pa + pc), k=nb)
        vias = np.asarray(vias).reshape(len(bb), nb)
        head = (net.edge_len[ea] - oa)[:, None]
        d1 = self.ubodt.lookup(net.target[ea][:, None], vias)
        d2 = self.ubodt.lookup(vias, net.source[ec][:, None])
        Lv = head + d1 + d2 + oc[:, None]
        vxy = net.node_xy[vias]
        inside = (
            E[:, None] >= np.hypot(*(vxy - pa[:, None]).T).T + np.hypot(*(vxy - pc[:, None]).T).T
        )
        # Immediate U-turn at v: the path v -> c starts by driving back to the node before v.
        pos, hit = self.ubodt._find(net.target[ea][:, None], vias)
        prev = net.source[self.ubodt.last_edge[pos]]
        back = self.ubodt.lookup(vias, prev) + self.ubodt.lookup(prev, net.source[ec][:, None])
        with np.errstate(invalid="ignore"):
            uturn = hit & (np.abs(back - d2) < 1e-6)
        ok = np.isfinite(Lv) & inside & ~uturn & (Lv > L[bb, jj][:, None] + 1e-6)
        sig = batch.sigma_m
        pair = np.sqrt(sig[bb, jj] ** 2 + sig[bb, jj + 1] ** 2)
        beta = (cfg.beta_sigma * pair + cfg.beta_gc * gc[bb, jj])[:, None]
        s = sig[bb, jj][:, None]

        def score(length: np.ndarray) -> np.ndarray:
            # The speed deficit of the shortest route is what a detour explains: here the
            # two-sided log-speed term (the lattice's one-sided term cannot see it).
            with np.errstate(invalid="ignore", divide="ignore"):
                ratio = np.log((length + s) / (E[:, None] + s))
            nk = -np.abs(length - gc[bb, jj][:, None]) / beta
            return nk - 0.5 * (ratio / cfg.speed_sigma) ** 2

        gain = np.where(ok, score(Lv) - score(L[bb, jj][:, None]), -np.inf)
        best = gain.argmax(axis=1)
        take = gain[np.arange(len(bb)), best] > cfg.detour_margin
        via = dict(dec.via)
        tr = dec.tr.copy()
        for r in np.nonzero(take)[0]:
            b, j = int(bb[r]), int(jj[r])
            via[(b, j)] = int(vias[r, best[r]])
            tr[b, j, ka[r], kc[r]] += gain[r, best[r]]
        route = dec.route.copy()
        route[bb[take], jj[take], ka[take], kc[take]] = Lv[take, best[take]]
        return Decoded(dec.path, dec.brk, route, dec.forward, dec.em, tr, via)
