"""Rounding, repair and local search for the GSCLO covering knapsack (arXiv 2504.13697).

Shared by APO (:mod:`planning.gsclo.apo`, steps 1 and 6) and the exact solver's fallback
(:mod:`planning.gsclo.exact`). All functions work on the upload-feasible frames only:

    minimise c.x  subject to  L.x >= W,  x in {0, 1}^n,

with ``cost`` = c (normalised), ``weight`` = L and ``need`` = W. None of them raises.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import numpy as np


def normalised_cost(extra_j: np.ndarray, scale: Literal["min", "mean"]) -> np.ndarray:
    """Extra upload energies [n] clipped at 0 (they are > 0 up to rounding) and divided by
    their smallest or mean positive value (returned unscaled if none is positive)."""
    extra = np.maximum(extra_j, 0.0)
    positive = extra[extra > 0.0]
    if positive.shape[0] == 0:
        return extra
    return extra / float(positive.min() if scale == "min" else positive.mean())


def ranking_init(weight: np.ndarray, need: float) -> np.ndarray:  # [n] -> [n] float 0/1
    """Uploads the largest-``weight`` items until ``weight.x >= need``."""
    order = np.argsort(-weight, kind="stable")
    cum = np.cumsum(weight[order])
    k = int(np.searchsorted(cum, need)) + 1 if need > 0.0 else 0
    x = np.zeros(weight.shape[0])
    x[order[: min(k, weight.shape[0])]] = 1.0
    return x


def repair(
    selected: np.ndarray,  # [n] bool
    cost: np.ndarray,  # [n]
    weight: np.ndarray,  # [n]
    need: float,
) -> np.ndarray:
    """Makes a binary selection feasible, adding the item with the least cost per useful
    weight ``cost / min(weight, residual)``, then drops redundant items, most expensive
    first. Returns [n] bool; every item is taken if even that cannot cover ``need``."""
    sel = selected.copy()
    while (residual := need - float(weight[sel].sum())) > 0.0:
        cand = np.flatnonzero(~sel & (weight > 0.0))
        if cand.shape[0] == 0:
            break
        with np.errstate(over="ignore"):  # a subnormal weight gives inf: never preferred
            j = cand[np.argmin(cost[cand] / np.minimum(weight[cand], residual))]
        sel[j] = True
    return _prune(sel, cost, weight, need)


def _prune(sel: np.ndarray, cost: np.ndarray, weight: np.ndarray, need: float) -> np.ndarray:
    """Drops selected items [n] whose removal keeps ``weight.x >= need``, most expensive first."""
    sel = sel.copy()
    for j in np.flatnonzero(sel)[np.argsort(-cost[sel], kind="stable")]:
        sel[j] = False
        # A fresh sum, not a running one: rounding must not admit a cover short of need.
        if float(weight[sel].sum()) < need:
            sel[j] = True
    return sel


def _bundles(
    items: np.ndarray,  # [k] indices
    cost: np.ndarray,  # [n]
    weight: np.ndarray,  # [n]
    size: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All subsets of ``items`` with 1 or 2 members [m, size], their cost and weight sums [m]."""
    if size == 1:
        members = items[:, None]
    else:
        a, b = np.triu_indices(items.shape[0], 1)
        members = np.stack([items[a], items[b]], axis=1)
    return members, cost[members].sum(axis=1), weight[members].sum(axis=1)


def exchange_search(
    selected: np.ndarray,  # [n] bool, feasible
    cost: np.ndarray,  # [n], normalised to >= 1 where positive
    weight: np.ndarray,  # [n]
    need: float,
    max_pair_moves: int,
) -> np.ndarray:
    """Applies the best cost-reducing feasible exchange (1 upload for 1 pose-only frame, 1 for
    2, or 2 for 1), then prunes, until none is left; each pass strictly lowers the cost, so it
    terminates. Exchanges involving pairs are skipped while more than ``max_pair_moves`` of
    them would be evaluated. Returns [n] bool."""
    sel = selected.copy()
    while True:
        inside, outside = np.flatnonzero(sel), np.flatnonzero(~sel)
        covered = float(weight[sel].sum())
        # 1e-12: costs are normalised to >= 1, so this separates a saving from rounding.
        best_gain, best_move = 1e-12, None
        for out_size, in_size in ((1, 1), (1, 2), (2, 1)):
            moves = math.comb(inside.shape[0], out_size) * math.comb(outside.shape[0], in_size)
            if moves == 0 or (out_size + in_size > 2 and moves > max_pair_moves):
                continue
            drop, drop_c, drop_w = _bundles(inside, cost, weight, out_size)
            add, add_c, add_w = _bundles(outside, cost, weight, in_size)
            gain = drop_c[:, None] - add_c[None, :]  # [drops, adds] saving per exchange
            feasible = covered - drop_w[:, None] + add_w[None, :] >= need
            gain = np.where(feasible, gain, -np.inf)
            i, j = np.unravel_index(int(np.argmax(gain)), gain.shape)
            if gain[i, j] > best_gain:
                best_gain, best_move = float(gain[i, j]), (drop[i], add[j])
        if best_move is None:
            return sel
        moved = sel.copy()
        moved[best_move[0]], moved[best_move[1]] = False, True
        if float(weight[moved].sum()) < need:  # admitted only by rounding of the estimate
            return sel
        sel = _prune(moved, cost, weight, need)


def swap_polish(
    x: np.ndarray,
    weight: np.ndarray,
    need: float,
    energy_of: Callable[[np.ndarray], np.ndarray],
) -> np.ndarray:
    """Best single exchange (one upload for one pose-only frame), scored exactly by
    ``energy_of`` ([S, n] bool -> [S] energy), until none lowers the energy while keeping the
    coverage ``weight @ x >= need``; at most n rounds."""
    current = energy_of(x[None])[0]
    for _ in range(len(x)):
        inside, outside = np.flatnonzero(x), np.flatnonzero(~x)
        if not len(inside) or not len(outside):
            break
        a, b = np.meshgrid(inside, outside, indexing="ij")
        a, b = a.ravel(), b.ravel()
        ok = weight[x].sum() - weight[a] + weight[b] >= need
        if not ok.any():
            break
        moves = np.repeat(x[None], int(ok.sum()), axis=0)
        moves[np.arange(len(moves)), a[ok]] = False
        moves[np.arange(len(moves)), b[ok]] = True
        energy = energy_of(moves)
        k = int(np.argmin(energy))
        if not energy[k] < current * (1.0 - 1e-12):
            break
        x, current = moves[k], energy[k]
    return x
