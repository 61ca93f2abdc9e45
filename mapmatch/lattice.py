"""The candidate lattice of a batch of trajectories: route lengths between the candidates of
consecutive points, Viterbi decoding and forward-backward posteriors.

Trajectories are padded to one length ``N`` and ``K`` candidates per point, so each step of
the recursions is a handful of numpy operations over the whole batch ``[B, K, K]``; a batch of
a few hundred trajectories costs about as much Python overhead as one. Padded steps after a
trajectory's end are identity transitions (score 0 to the same candidate).

A step whose every transition is impossible (no route within the UBODT bound) is a *break*:
decoding restarts from the next point's emissions, as HMM matchers do (FMM, Meili).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mapmatch.candidates import Candidates
from mapmatch.network import RoadNetwork
from mapmatch.ubodt import Ubodt

NEG = -np.inf


@dataclass(frozen=True)
class Batch:
    """Padded candidates of B trajectories (points without candidates already removed).

    Attributes:
        cand: candidates with arrays [B, N, K(, 2)].
        xy: observed positions [B, N, 2] (m); t_s: timestamps [B, N] (s, nan if unknown).
        length: real points per trajectory [B]; sigma_m: LED sigma per point [B, N] (m);
        radius_m: candidate search radius per point [B, N] (m).
    """

    cand: Candidates
    xy: np.ndarray
    t_s: np.ndarray
    length: np.ndarray
    sigma_m: np.ndarray
    radius_m: np.ndarray

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.cand.edge.shape  # type: ignore[return-value]

    @property
    def step_mask(self) -> np.ndarray:
        """[B, N-1] True for real steps (both ends inside the trajectory)."""
        N = self.shape[1]
        return np.arange(N - 1)[None, :] < (self.length[:, None] - 1)


def route_lengths(net: RoadNetwork, ubodt: Ubodt, batch: Batch) -> tuple:
    """Route length [B, N-1, K, K] (m; inf: no route) from each candidate of point i to each
    of point i+1, whether the pair stays on one edge [B, N-1, K, K], and how far the second
    lies *behind* the first on that edge [B, N-1, K, K] (m, 0 otherwise), and the route that
    leaves the first candidate's edge at its end [B, N-1, K, K] (for such a pair: the loop
    around the block).

    A pair on one edge in the wrong order is read as a vehicle that did not move (route 0)
    and whose second fix is off along the road by that distance; the caller scores the
    distance as along-track GNSS noise. (FMM's ``reverse_tolerance`` instead allows a fixed
    fraction of the edge and sends anything more around the block: with sparse fixes of a
    vehicle waiting at a light, that invents loops.) The caller keeps the loop where it
    scores better.
    """
    c = batch.cand
    ea, eb = c.edge[:, :-1, :, None], c.edge[:, 1:, None, :]
    oa, ob = c.offset[:, :-1, :, None], c.offset[:, 1:, None, :]
    same = ea == eb
    between = ubodt.lookup(net.target[ea], net.source[eb])
    around = net.edge_len[ea] - oa + between + ob
    route = np.where(same, np.maximum(ob - oa, 0.0), around)
    back = np.where(same, np.maximum(oa - ob, 0.0), 0.0)
    ok = c.valid[:, :-1, :, None] & c.valid[:, 1:, None, :]
    return np.where(ok, route, np.inf), same, back, np.where(ok, around, np.inf)


def uturns(net: RoadNetwork, ubodt: Ubodt, batch: Batch, same: np.ndarray) -> np.ndarray:
    """[B, N-1, K, K] True where the route between two candidates turns back on itself: onto
    the reverse of the first candidate's edge, or onto the second candidate's edge from its
    reverse (at a node, or as the first/last edge of the connecting shortest path)."""
    c = batch.cand
    ea, eb = c.edge[:, :-1, :, None], c.edge[:, 1:, None, :]
    rev_a, rev_b = net.reverse[ea], net.reverse[eb]
    ta, sa, sb = net.target[ea], net.source[ea], net.source[eb]
    direct = (eb == rev_a) & (rev_a >= 0)
    # The path t_a -> s_b starts back along rev(ea): D(t_a, s_b) = |rev ea| + D(s_a, s_b).
    d = ubodt.lookup(ta, sb)
    with np.errstate(invalid="ignore"):
        starts_back = (rev_a >= 0) & (
            np.abs(d - (net.edge_len[np.maximum(rev_a, 0)] + ubodt.lookup(sa, sb))) < 1e-6
        )
    pos, hit = ubodt._find(ta, sb)
    ends_back = hit & (ubodt.last_edge[pos] == rev_b) & (rev_b >= 0) & (ta != sb)
    return ~same & (direct | (starts_back & (ta != sb)) | ends_back)


def viterbi(em: np.ndarray, tr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Most likely candidate per point [B, N] and break flags [B, N-1].

    Args:
        em: log emission [B, N, K] (-inf for invalid candidates).
        tr: log transition [B, N-1, K, K] (-inf for impossible pairs).
    """
    B, N, K = em.shape
    score = np.empty((B, N, K))
    back = np.zeros((B, max(N - 1, 0), K), dtype=np.int64)
    brk = np.zeros((B, max(N - 1, 0)), dtype=bool)
    score[:, 0] = em[:, 0]
    for j in range(N - 1):
        m = score[:, j, :, None] + tr[:, j]
        arg = m.argmax(axis=1)
        best = np.take_along_axis(m, arg[:, None, :], axis=1)[:, 0]
        new = best + em[:, j + 1]
        broken = ~np.isfinite(new).any(axis=1)
        if broken.any():
            new[broken] = em[broken, j + 1]
        brk[:, j] = broken
        back[:, j] = arg
        score[:, j + 1] = new
    path = np.zeros((B, N), dtype=np.int64)
    k = score[:, N - 1].argmax(axis=1)
    path[:, N - 1] = k
    rows = np.arange(B)
    for j in range(N - 2, -1, -1):
        k = np.where(brk[:, j], score[:, j].argmax(axis=1), back[rows, j, k])
        path[:, j] = k
    return path, brk


def _logsumexp(m: np.ndarray, axis: int) -> np.ndarray:
    mx = np.max(m, axis=axis, keepdims=True)
    mx = np.where(np.isfinite(mx), mx, 0.0)
    with np.errstate(divide="ignore"):
        return np.squeeze(mx, axis=axis) + np.log(np.sum(np.exp(m - mx), axis=axis))


def posteriors(em: np.ndarray, tr: np.ndarray, brk: np.ndarray) -> np.ndarray:
    """Marginal posterior of every candidate [B, N, K] (forward-backward; each piece between
    breaks normalised on its own)."""
    B, N, K = em.shape
    alpha = np.empty((B, N, K))
    alpha[:, 0] = em[:, 0]
    for j in range(N - 1):
        a = _logsumexp(alpha[:, j, :, None] + tr[:, j], axis=1) + em[:, j + 1]
        alpha[:, j + 1] = np.where(brk[:, j, None], em[:, j + 1], a)
    beta = np.zeros((B, N, K))
    for j in range(N - 2, -1, -1):
        b = _logsumexp(tr[:, j] + (em[:, j + 1] + beta[:, j + 1])[:, None, :], axis=2)
        beta[:, j] = np.where(brk[:, j, None], 0.0, b)
    post = alpha + beta
    norm = _logsumexp(post, axis=2)
    with np.errstate(invalid="ignore"):
        p = np.exp(post - norm[:, :, None])
    return np.nan_to_num(p, nan=0.0)
