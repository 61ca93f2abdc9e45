"""The matching engine every method shares (baselines: :mod:`mapmatch.baselines`).

``LatticeMatcher.match_many`` validates the trajectories, finds candidates for all their
points in one query, drops points with no road within their radius, pads the rest into
batches and decodes each batch (:mod:`mapmatch.lattice`); a subclass only says how points are
scored (``point_model``, ``score``) and may refine the decoded path (``refine``). Results come
back in input order, one per trajectory, each with its :class:`~mapmatch.result.Status`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from mapmatch import candidates as cand_mod
from mapmatch.assemble import complete_paths, piece_geometries, place_outliers
from mapmatch.lattice import Batch, posteriors, route_lengths, uturns, viterbi
from mapmatch.network import RoadNetwork
from mapmatch.result import MatchResult, Status, Trajectory, unmatched, validate
from mapmatch.ubodt import Ubodt


class MatcherError(ValueError):
    """A matcher configuration outside its bounds."""


def check_positive(name: str, value: float, allow_zero: bool = False) -> None:
    ok = np.isfinite(value) and (value >= 0 if allow_zero else value > 0)
    if not ok:
        raise MatcherError(f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {value}")


@dataclass
class Decoded:
    """A decoded batch: chosen candidate [B, N], break flags [B, N-1], route lengths and
    same-edge flags of all pairs, scores, and detour via nodes ((b, step) -> node)."""

    path: np.ndarray
    brk: np.ndarray
    route: np.ndarray
    forward: np.ndarray
    em: np.ndarray
    tr: np.ndarray
    via: dict[tuple[int, int], int]


class LatticeMatcher(ABC):
    """Shared engine. Subclasses set ``name`` and implement ``point_model`` and ``score``."""

    name = "lattice"
    # Points with no road within their radius search again this many times farther (1: no).
    fallback_radius_factor = 1.0
    # Log-score cost of a route that turns back on itself between two fixes (0: none).
    uturn_penalty = 0.0

    def __init__(self, network: RoadNetwork, ubodt: Ubodt, k: int, batch_points: int = 20000):
        if k < 1:
            raise MatcherError(f"k must be >= 1, got {k}")
        self.net, self.ubodt, self.k, self.batch_points = network, ubodt, int(k), batch_points

    # --- hooks -------------------------------------------------------------------------
    @abstractmethod
    def point_model(self, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(sigma_m, radius_m) per point [N] (m)."""

    @abstractmethod
    def score(self, batch: Batch, route: np.ndarray, gc: np.ndarray) -> tuple:
        """(log emission [B, N, K], log transition [B, N-1, K, K])."""

    def refine(self, batch: Batch, dec: Decoded, gc: np.ndarray) -> Decoded:
        return dec

    # --- engine ------------------------------------------------------------------------
    def match(self, traj: Trajectory) -> MatchResult:
        return self.match_many([traj])[0]

    def match_many(self, trajs: list[Trajectory]) -> list[MatchResult]:
        results: list[MatchResult | None] = [validate(t) for t in trajs]
        todo = [i for i, r in enumerate(results) if r is None]
        if not todo:
            return results  # type: ignore[return-value]
        xy_all = np.concatenate([np.asarray(trajs[i].xy, dtype=np.float64) for i in todo])
        sigma, radius = self.point_model(xy_all)
        radius = np.asarray(radius, dtype=np.float64)
        cands = cand_mod.search(self.net, xy_all, radius, self.k)
        lost = np.nonzero(~cands.valid.any(axis=1))[0]
        if len(lost) and self.fallback_radius_factor > 1:
            radius = radius.copy()
            radius[lost] *= self.fallback_radius_factor
            again = cand_mod.search(self.net, xy_all[lost], radius[lost], self.k)
            cands = cands.replace(lost, again)
        start = np.cumsum([0] + [len(trajs[i].xy) for i in todo])
        prepared = []
        for n, i in enumerate(todo):
            rows = np.arange(start[n], start[n + 1])
            has = cands.valid[rows].any(axis=1)
            kept = rows[has]
            if len(kept) == 0:
                results[i] = unmatched(
                    trajs[i].traj_id,
                    Status.NO_CANDIDATES,
                    f"no point is within its search radius (max {radius[rows].max():.4g}) of "
                    "any road: far from the network, or coordinates in another CRS?",
                    len(rows),
                )
            elif len(kept) < 2:
                results[i] = unmatched(
                    trajs[i].traj_id,
                    Status.TOO_FEW_POINTS,
                    f"only 1 of {len(rows)} points is near a road",
                    len(rows),
                )
            else:
                prepared.append((i, rows, has, np.zeros(len(rows), dtype=bool)))
        prepared.sort(key=lambda p: int(p[2].sum()))
        chunk: list = []
        size = 0
        for item in prepared:
            n_pts = int(item[2].sum())
            if chunk and (size + n_pts > self.batch_points):
                self._run(chunk, trajs, xy_all, (sigma, radius), cands, results)
                chunk, size = [], 0
            chunk.append(item)
            size += n_pts
        if chunk:
            self._run(chunk, trajs, xy_all, (sigma, radius), cands, results)
        return results  # type: ignore[return-value]

    def _batch(self, chunk: list, trajs: list[Trajectory], xy_all, model, cands) -> Batch:
        lens = np.array([int(h.sum()) for _, _, h, _ in chunk])
        B, N = len(chunk), int(lens.max())
        rows = np.zeros((B, N), dtype=np.int64)
        t = np.full((B, N), np.nan)
        for b, (i, r, h, _) in enumerate(chunk):
            kept = r[h]
            rows[b, : len(kept)] = kept
            rows[b, len(kept) :] = kept[-1]  # padding repeats the last point
            if trajs[i].t_s is not None:
                ts = np.asarray(trajs[i].t_s, dtype=np.float64)[h]
                t[b, : len(kept)] = ts
                t[b, len(kept) :] = ts[-1]
        c = cands.take(rows)
        return Batch(c, xy_all[rows], t, lens, model[0][rows], model[1][rows])

    def decode(self, batch: Batch) -> tuple[Decoded, np.ndarray]:
        gc = np.hypot(*np.moveaxis(np.diff(batch.xy, axis=1), -1, 0))
        route, forward, back, around = route_lengths(self.net, self.ubodt, batch)
        em, tr = self.score(batch, route, gc)
        # A fix behind its predecessor on one edge: along-track noise of the pair of fixes,
        # or a loop around the block, whichever scores better.
        s = batch.sigma_m
        pair = np.sqrt(s[:, :-1] ** 2 + s[:, 1:] ** 2)[:, :, None, None]
        tr = tr - 0.5 * (back / pair) ** 2
        if self.uturn_penalty > 0:
            tr = tr - self.uturn_penalty * uturns(self.net, self.ubodt, batch, forward)
        behind = back > 0
        if behind.any():
            _, tr_loop = self.score(batch, around, gc)
            loop = behind & (tr_loop > tr)
            route = np.where(loop, around, route)
            forward = forward & ~loop
            tr = np.where(loop, tr_loop, tr)
        tr = self._pad_steps(batch, tr)
        path, brk = viterbi(em, tr)
        return Decoded(path, brk, route, forward, em, tr, {}), gc

    @staticmethod
    def _pad_steps(batch: Batch, tr: np.ndarray) -> np.ndarray:
        """Identity transitions after each trajectory's end."""
        pad = ~batch.step_mask
        if pad.any():
            K = tr.shape[-1]
            eye = np.where(np.eye(K, dtype=bool), 0.0, -np.inf)
            tr = tr.copy()
            tr[pad] = eye
        return tr

    def find_outliers(self, batch: Batch, dec: Decoded) -> np.ndarray | None:
        """[B, N] fixes to ignore (decoded again without them, then placed on the path)."""
        return None

    def _run(self, chunk, trajs, xy_all, model, cands, results, outliers_ok=True) -> None:
        batch = self._batch(chunk, trajs, xy_all, model, cands)
        dec, gc = self.decode(batch)
        dec = self.refine(batch, dec, gc)
        out = self.find_outliers(batch, dec) if outliers_ok else None
        done: set[int] = set()
        if out is not None and out.any():
            # Trajectories with outliers are decoded again without them (their results are
            # written by that call); the others keep this decoding.
            redo = []
            for b, (i, rows, has, outl) in enumerate(chunk):
                if out[b].any():
                    kept = np.nonzero(has)[0]
                    drop = kept[np.nonzero(out[b, : len(kept)])[0]]
                    has2, outl2 = has.copy(), outl.copy()
                    has2[drop], outl2[drop] = False, True
                    redo.append((i, rows, has2, outl2))
                    done.add(b)
            self._run(redo, trajs, xy_all, model, cands, results, outliers_ok=False)
            if len(done) == len(chunk):
                return
        post = posteriors(dec.em, dec.tr, dec.brk)
        B, N = dec.path.shape
        c = batch.cand
        bi = np.arange(B)[:, None]
        ni = np.arange(N)[None, :]
        edge = c.edge[bi, ni, dec.path]
        fwd = dec.forward[bi, ni[:, :-1], dec.path[:, :-1], dec.path[:, 1:]]
        cpaths, indices, pieces = complete_paths(
            self.net, self.ubodt, edge, fwd, dec.brk, batch.length, dec.via
        )
        off = c.offset[bi, ni, dec.path]
        dist = c.dist[bi, ni, dec.path]
        pxy = c.xy[bi, ni, dec.path]
        conf = post[bi, ni, dec.path]
        # Geometry of every connected piece of every trajectory in one call.
        owner, p_edges, p_first, p_last = [], [], [], []
        for b, (_, _, has, _) in enumerate(chunk):
            if b in done:
                continue
            cp, idx, n = cpaths[b], indices[b], int(has.sum())
            bounds = [*pieces[b].tolist(), len(cp)]
            pt = [int(np.searchsorted(idx, p)) for p in pieces[b]] + [n]
            for q in range(len(pieces[b])):
                owner.append(b)
                p_edges.append(cp[bounds[q] : bounds[q + 1]])
                p_first.append(pt[q])
                p_last.append(pt[q + 1] - 1)
        ob, f, la = np.array(owner, dtype=np.int64), np.array(p_first), np.array(p_last)
        geoms = piece_geometries(
            self.net, p_edges, off[ob, f], pxy[ob, f], off[ob, la], pxy[ob, la]
        ) if owner else []  # fmt: skip
        by_b: dict[int, list[np.ndarray]] = {}
        for b, g in zip(owner, geoms, strict=True):
            by_b.setdefault(b, []).append(g)
        for b, (i, rows, has, outl) in enumerate(chunk):
            if b in done:
                continue
            results[i] = self._result(
                trajs[i], b, rows, has, edge, off, dist, pxy, conf, cpaths[b], indices[b],
                by_b[b], dec, outl,
            )  # fmt: skip

    def _result(self, traj, b, rows, has, edge, off, dist, pxy, conf, cp, idx, geoms, dec, outl):
        n_all, n = len(rows), int(has.sum())
        opath = np.full(n_all, -1, dtype=np.int64)
        opath[has] = self.net.edge_ids[edge[b, :n]]
        full = lambda v, fill: _scatter(has, v, fill)  # noqa: E731
        breaks = np.nonzero(dec.brk[b, : n - 1])[0].tolist()
        dropped = n_all - n - int(outl.sum())
        status = Status.OK if not breaks and not dropped else Status.PARTIAL
        why = []
        if dropped:
            why.append(f"{dropped} of {n_all} points have no road within their radius")
        if breaks:
            why.append(f"no route between {len(breaks)} pair(s) of consecutive points")
        if outl.any():
            why.append(f"{int(outl.sum())} outlier fix(es) ignored and placed on the path")
        kept_idx = np.nonzero(has)[0]
        res = MatchResult(
            traj_id=traj.traj_id,
            status=status,
            message="; ".join(why),
            opath=opath,
            offset_m=full(off[b, :n], np.nan),
            error_m=full(dist[b, :n], np.nan),
            matched_xy=_scatter(has, pxy[b, :n], np.nan),
            confidence=full(conf[b, :n], 0.0),
            cpath=self.net.edge_ids[cp],
            indices=idx,
            mgeom=geoms,
            detours=sorted(int(kept_idx[j]) for (bb, j) in dec.via if bb == b),
            breaks=[int(kept_idx[j]) for j in breaks],
        )
        if outl.any():
            place_outliers(self.net, res, np.asarray(traj.xy, dtype=np.float64), outl, cp)
        return res


def _scatter(mask: np.ndarray, values: np.ndarray, fill: float) -> np.ndarray:
    out = np.full((len(mask), *values.shape[1:]), fill, dtype=np.float64)
    out[mask] = values
    return out
