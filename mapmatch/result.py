"""Trajectories in, match results out: the data every matcher shares."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np


class Status(StrEnum):
    """Per-trajectory outcome.

    ``ok``: every point matched on one connected path. ``partial``: matched, but some points
    were dropped (no road within their radius) or the path breaks where no route joins two
    consecutive points. The others match nothing: ``empty`` (no point), ``too_few_points``
    (fewer than two usable points), ``no_candidates`` (no point near any road: far away, or
    coordinates in another CRS), ``invalid`` (non-finite coordinates, timestamps that go
    backwards, a geometry that does not parse).
    """

    OK = "ok"
    PARTIAL = "partial"
    EMPTY = "empty"
    TOO_FEW_POINTS = "too_few_points"
    NO_CANDIDATES = "no_candidates"
    INVALID = "invalid"

    @property
    def matched(self) -> bool:
        return self in (Status.OK, Status.PARTIAL)


@dataclass(frozen=True)
class Trajectory:
    """GNSS fixes of one vehicle, in the network's metric frame.

    Attributes:
        traj_id: the input's id.
        xy: positions [N, 2] (m).
        t_s: timestamps [N] (s) or None when the input has none.
    """

    traj_id: int
    xy: np.ndarray
    t_s: np.ndarray | None = None


@dataclass
class MatchResult:
    """One trajectory's match.

    Attributes:
        traj_id: the input's id; status, message: outcome and its reason in words.
        opath: matched edge *id* per input point [N] (-1: point not matched).
        offset_m: position along that edge [N] (m, nan if unmatched).
        error_m: distance from the fix to its matched position [N] (m, nan if unmatched).
        matched_xy: matched positions [N, 2] (m, metric frame; nan if unmatched).
        confidence: posterior probability of each point's matched candidate [N] (0 unmatched).
        cpath: edge ids of the complete traversed path (consecutive duplicates merged).
        indices: for each matched point, its index in ``cpath`` [M].
        mgeom: matched geometry, one array [K, 2] (m) per connected piece.
        detours: indices i of transitions i -> i+1 whose route LNSP replaced by a longer,
        non-shortest one.
        breaks: indices i of transitions i -> i+1 (over matched points) with no route.
    """

    traj_id: int
    status: Status
    message: str = ""
    opath: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    offset_m: np.ndarray = field(default_factory=lambda: np.zeros(0))
    error_m: np.ndarray = field(default_factory=lambda: np.zeros(0))
    matched_xy: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    confidence: np.ndarray = field(default_factory=lambda: np.zeros(0))
    cpath: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    indices: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    mgeom: list[np.ndarray] = field(default_factory=list)
    detours: list[int] = field(default_factory=list)
    breaks: list[int] = field(default_factory=list)

    @property
    def matched(self) -> bool:
        return self.status.matched


def unmatched(traj_id: int, status: Status, message: str, n: int = 0) -> MatchResult:
    """A result that matched nothing, with per-point arrays of length ``n``."""
    return MatchResult(
        traj_id,
        status,
        message,
        opath=np.full(n, -1, dtype=np.int64),
        offset_m=np.full(n, np.nan),
        error_m=np.full(n, np.nan),
        matched_xy=np.full((n, 2), np.nan),
        confidence=np.zeros(n),
    )


def validate(traj: Trajectory) -> MatchResult | None:
    """None if ``traj`` can be matched, else the unmatched result saying why."""
    xy = np.asarray(traj.xy, dtype=np.float64)
    n = len(xy) if xy.ndim == 2 else 0
    if xy.size == 0:
        return unmatched(traj.traj_id, Status.EMPTY, "the trajectory has no point")
    if xy.ndim != 2 or xy.shape[1] != 2:
        return unmatched(traj.traj_id, Status.INVALID, f"positions must be [N, 2], got {xy.shape}")
    bad = ~np.all(np.isfinite(xy), axis=1)
    if bad.any():
        i = int(np.argmax(bad))
        return unmatched(traj.traj_id, Status.INVALID, f"point {i} is not finite: {xy[i]}", n)
    if traj.t_s is not None:
        t = np.asarray(traj.t_s, dtype=np.float64)
        if t.shape != (n,):
            return unmatched(traj.traj_id, Status.INVALID, f"{t.size} timestamps for {n} points", n)
        if not np.all(np.isfinite(t)):
            return unmatched(traj.traj_id, Status.INVALID, "a timestamp is not finite", n)
        back = np.diff(t) < 0
        if back.any():
            i = int(np.argmax(back)) + 1
            return unmatched(
                traj.traj_id,
                Status.INVALID,
                f"timestamps go backwards at point {i} ({t[i - 1]:g} -> {t[i]:g} s): "
                "sort the fixes by time first",
                n,
            )
    if n < 2:
        return unmatched(traj.traj_id, Status.TOO_FEW_POINTS, f"{n} point: need at least 2", n)
    return None
