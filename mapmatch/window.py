"""LNSP's three-fix window test: is a local non-shortest path a detour or a noisy fix?

For each window of decoded candidates (c_{j-1}, c_j, c_{j+1}) the route through c_j is
compared with the direct route c_{j-1} -> c_{j+1}. When going through c_j costs more than
twice fix j's LED search radius (a detour to reach the fix and come back), the fix decides:

- if the region's noise explains fix j on the direct route, the fix is an outlier and the
  direct (shortest) route is kept. "Explains" is within 4 (wide) LED sigmas of the direct
  route when the route through the fix is longer than the vehicle could drive between the
  window's outer fixes at the speed of its sliding window (a spur that would need a burst of
  speed), and within 1.5 sigmas otherwise (a long gap leaves time for real detours);
- otherwise no plausible error puts the vehicle on the direct route: the non-shortest path
  through c_j is a real detour and stays.

In an open-sky region (sigma 5 m) a fix 60 m off the direct route is a detour; in an urban
canyon (sigma 45 m) it is noise. One global sigma cannot make both
calls, which is why the test uses the sub-region LED.
"""

from __future__ import annotations

import numpy as np
import shapely

from mapmatch.assemble import piece_geometries, unroll
from mapmatch.lattice import Batch
from mapmatch.network import RoadNetwork
from mapmatch.ubodt import Ubodt


def window_outliers(net: RoadNetwork, ubodt: Ubodt, batch: Batch, path: np.ndarray,
                    brk: np.ndarray, route: np.ndarray, tight_m: np.ndarray, loose_m: np.ndarray,
                    max_via_m: np.ndarray) -> np.ndarray:  # fmt: skip
    """Outlier fixes [B, N] of a decoded batch (see the module docstring).

    Args:
        path: decoded candidate per point [B, N]; brk: breaks [B, N-1];
        route: route lengths between candidates [B, N-1, K, K] (m);
        tight_m, loose_m: how far from the direct route a fix may lie and still count as
        noise [B, N] (m): ``loose_m`` where the route through the fix is longer than the
        vehicle could drive in the window (``max_via_m`` [B, N], m; inf without timestamps),
        else ``tight_m``.
    """
    B, N = path.shape
    out = np.zeros((B, N), dtype=bool)
    if N < 3:
        return out
    c = batch.cand
    bi, ni = np.arange(B)[:, None], np.arange(N)[None, :]
    e, o = c.edge[bi, ni, path], c.offset[bi, ni, path]
    step = route[bi, ni[:, :-1], path[:, :-1], path[:, 1:]]
    via = step[:, :-1] + step[:, 1:]
    ea, oa, ec, oc = e[:, :-2], o[:, :-2], e[:, 2:], o[:, 2:]
    gap = ubodt.lookup(net.target[ea], net.source[ec])
    direct = np.where((ea == ec) & (oc >= oa), oc - oa, net.edge_len[ea] - oa + gap + oc)
    radius = batch.radius_m[:, 1:-1]
    real = (np.arange(1, N - 1)[None, :] < batch.length[:, None] - 1) & ~brk[:, :-1] & ~brk[:, 1:]
    with np.errstate(invalid="ignore"):
        excess = np.where(real & np.isfinite(direct), via - direct, -np.inf)
    bb, jj = np.nonzero(excess > 2.0 * radius)
    if len(bb) == 0:
        return out
    # Greedy by excess: never two neighbouring fixes of one trajectory in the same round.
    order = np.argsort(-excess[bb, jj])
    bb, jj = bb[order], jj[order]
    a_e, c_e = ea[bb, jj], ec[bb, jj]
    same = (a_e == c_e) & (oc[bb, jj] >= oa[bb, jj])
    r, hop, edges, _ = unroll(ubodt, net, net.target[a_e], net.source[c_e])
    srt = np.lexsort((hop, r))
    r, edges = r[srt], edges[srt]
    lo, hi = np.searchsorted(r, np.arange(len(bb))), np.searchsorted(r, np.arange(len(bb)), "right")
    pxy = c.xy[bi, ni, path]
    # Every direct route's geometry (a one-edge route is that edge from oa to oc: the same
    # call with a one-edge sequence), then every fix's distance to it, vectorised.
    seqs = [
        np.array([a_e[q]])
        if same[q]
        else np.concatenate([[a_e[q]], edges[lo[q] : hi[q]], [c_e[q]]])
        for q in range(len(bb))
    ]
    lines = piece_geometries(net, seqs, oa[bb, jj], pxy[bb, jj], oc[bb, jj], pxy[bb, jj + 2])
    lines = [g if len(g) >= 2 else np.vstack([g, g]) for g in lines]
    d = _distances(batch.xy[bb, jj + 1], lines)
    too_far = via[bb, jj] > max_via_m[bb, jj + 1]
    noise = d <= np.where(too_far, loose_m[bb, jj + 1], tight_m[bb, jj + 1])
    taken: set[tuple[int, int]] = set()
    for q in np.nonzero(noise)[0]:
        b, j = int(bb[q]), int(jj[q])
        if (b, j - 1) in taken or (b, j + 1) in taken:
            continue
        out[b, j + 1] = True
        taken.add((b, j))
    return out


def _distances(xy: np.ndarray, lines: list[np.ndarray]) -> np.ndarray:
    """Distance of each point [Q, 2] to its polyline (shapely, vectorised)."""
    if not lines:
        return np.zeros(0)
    counts = np.array([len(g) for g in lines])
    geoms = shapely.linestrings(
        np.concatenate(lines), indices=np.repeat(np.arange(len(lines)), counts)
    )
    return shapely.distance(shapely.points(xy), geoms)
