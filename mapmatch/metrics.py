"""Route-level accuracy of a match (Newson & Krumm 2009's route mismatch fraction, with the
length precision and recall that LNSP reports).

Routes are compared as multisets of directed edges weighted by edge length (an edge driven
twice counts twice; the opposite direction of a street is another edge):

    mismatch  = (d_missed + d_added) / d_true
    precision = d_common / d_matched,   recall = d_common / d_true
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RouteScore:
    mismatch: float
    precision: float
    recall: float


def route_score(
    true_edges: np.ndarray, matched_edges: np.ndarray, edge_len: np.ndarray
) -> RouteScore:
    """Scores of a matched route against the true one (edge *indices*; lengths [E] in m).

    An empty match scores mismatch 1, precision 0, recall 0.

    Raises:
        ValueError: the true route is empty or has no length.
    """
    t, m = Counter(np.asarray(true_edges).tolist()), Counter(np.asarray(matched_edges).tolist())
    length = lambda c: float(sum(edge_len[e] * n for e, n in c.items()))  # noqa: E731
    d_true, d_match = length(t), length(m)
    if d_true <= 0:
        raise ValueError("the true route is empty")
    d_common = length(t & m)
    missed, added = d_true - d_common, d_match - d_common
    return RouteScore(
        mismatch=(missed + added) / d_true,
        precision=d_common / d_match if d_match > 0 else 0.0,
        recall=d_common / d_true,
    )
