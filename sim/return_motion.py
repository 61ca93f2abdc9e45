"""Motion of the safety scanner's returns from scan to scan, and the stop it calls for: an
emergency brake for what moves fast, on raw returns, whatever the detector reported.

A protective field on the returns of one scan (``sim.safety_scanner``) trips when something is
already in the footprint swept while stopping; a vehicle that crosses that sweep faster than the
robot stops (a car at 8.6 m/s comes 8.6 m closer in the second a robot at 2.3 m/s needs to stop)
is inside it only once it is in the way. Automatic emergency braking (UN R152, ISO 22839) acts
on tracked objects' motion instead: it brakes when an object's predicted path meets the
vehicle's. Here, on the planar scanner's returns:

* **Segments.** Consecutive returns (ray order) closer than ``segment_gap_m`` form one segment:
  the visible faces of one object (the classic breakpoint segmentation of a 2D laser scan).
* **Association.** Each segment of at least ``min_points`` returns (a lone return, as a face
  seen at a grazing angle leaves them, has no shape to follow) is matched with the nearest
  segment of the previous scan (centroids, mutual nearest neighbours, within ``max_speed_mps``
  times the scans' interval plus ``segment_gap_m``), if the two have similar point counts
  (within a factor 2) and spans (within ``span_tolerance_m``), and if the segment shifted back
  by the centroids' displacement lies on the previous one (median distance of its returns to
  the previous segment's nearest return within ``residual_m``): a change of visible extent,
  or two different faces paired, moves a centroid as much as motion does, and those pairs are
  left without a velocity.
* **Aperture.** A straight segment (one face: its returns within ``straight_m`` of their
  principal line) shows only the motion across the face; along it, a face looks the same
  wherever it slides (a parked car's side seen from an angle splits and joins from scan to
  scan, and its centroid moves along the face by metres). Such a segment keeps only the
  component of its velocity along the face's normal. A corner (two faces) shows both.
* **Velocity.** centroid displacement / interval, kept only at ``moving_speed_mps`` and above
  (below it the robot's own motion and the change of view move a static face's centroid by
  comparable amounts: parked vehicles, walls and poles must not trip it). Scans further apart
  than ``max_interval_s`` are not compared (the robot stood still between plans).
* **Stop.** A moving segment's returns are predicted at constant velocity over the time the
  robot needs to stop (reaction + v / a) plus ``predict_s``; if a predicted return lies in the
  protective field (the footprint swept while stopping, as for the static field), the robot
  brakes.

Pure numpy; the benchmark's episode (bench/croa_sim.py) runs it on the scanner's scans.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from sim.safety_scanner import SafetyScannerError, check_bounds, in_field


@dataclass(frozen=True)
class ReturnMotionConfig:
    """Attributes:
    segment_gap_m: returns farther apart than this start a new segment (m), in (0, 5].
    moving_speed_mps: slower segments count as static (m/s), in (0, 50].
    max_speed_mps: fastest motion associated between scans (m/s), in (0, 100].
    min_points: fewest returns of a segment given a velocity, in [2, 1000].
    span_tolerance_m: a segment's span may change this much between scans (m), in [0, 10].
    residual_m: median distance of a segment, shifted back, to its predecessor (m), in (0, 5].
    straight_m: a segment whose returns lie within this of a line is one face (m), in [0, 5].
    max_interval_s: scans further apart are not compared (s), in (0, 5].
    predict_s: time beyond the stopping time over which moving returns are predicted (s),
        in [0, 5].
    step_s: prediction step (s), in (0, 1].
    """

    segment_gap_m: float = 0.5
    moving_speed_mps: float = 2.5
    max_speed_mps: float = 20.0
    min_points: int = 3
    span_tolerance_m: float = 0.5
    residual_m: float = 0.15
    straight_m: float = 0.1
    max_interval_s: float = 0.25
    predict_s: float = 0.5
    step_s: float = 0.1

    def __post_init__(self) -> None:
        bounds = {
            "segment_gap_m": (1e-6, 5.0),
            "moving_speed_mps": (1e-6, 50.0),
            "max_speed_mps": (1e-6, 100.0),
            "span_tolerance_m": (0.0, 10.0),
            "residual_m": (1e-6, 5.0),
            "straight_m": (0.0, 5.0),
            "max_interval_s": (1e-6, 5.0),
            "predict_s": (0.0, 5.0),
            "step_s": (1e-6, 1.0),
        }
        if not isinstance(self.min_points, int) or not 2 <= self.min_points <= 1000:
            raise SafetyScannerError(f"min_points={self.min_points!r}: an integer in [2, 1000]")
        check_bounds(self, bounds)


def segments(points_xy: np.ndarray, gap_m: float) -> np.ndarray:  # [N] int segment label
    """Labels 0..S-1 of the runs of consecutive returns (ray order) closer than ``gap_m``; the
    last run joins the first when the scan's two ends are that close (the fan is 360 deg)."""
    p = np.asarray(points_xy, dtype=np.float64).reshape(-1, 2)
    if len(p) == 0:
        return np.zeros(0, dtype=np.int64)
    breaks = np.hypot(*np.diff(p, axis=0).T) > gap_m
    labels = np.concatenate([[0], np.cumsum(breaks)])
    if labels[-1] > 0 and math.hypot(*(p[0] - p[-1])) <= gap_m:
        labels[labels == labels[-1]] = 0  # the highest label goes: 0..S-1 stay contiguous
    return labels


def _describe(points: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per segment 0..S-1 of ``labels``: centroid [S, 2], count [S] and span [S] (the larger
    side of its bounding rectangle: enough to tell a face that grew from one that moved)."""
    if len(labels) == 0:
        return np.zeros((0, 2)), np.zeros(0, dtype=np.int64), np.zeros(0)
    counts = np.bincount(labels)  # every label 0..S-1 is used: counts >= 1
    n = len(counts)
    sums = np.stack([np.bincount(labels, points[:, i], n) for i in (0, 1)], axis=1)
    cents = sums / counts[:, None]
    lo, hi = np.full((n, 2), np.inf), np.full((n, 2), -np.inf)
    np.minimum.at(lo, labels, points)
    np.maximum.at(hi, labels, points)
    return cents, counts, (hi - lo).max(axis=1)


def _observable(v: np.ndarray, points: np.ndarray, straight_m: float) -> np.ndarray:
    """``v`` where ``points`` [n, 2] bend (a corner); on a straight face only its component
    along the face's normal (the aperture problem: sliding along itself, a face looks still)."""
    if len(points) < 3:
        return v
    centred = points - points.mean(axis=0)
    _, sing, vt = np.linalg.svd(centred, full_matrices=False)
    if sing[-1] / math.sqrt(len(points)) > straight_m:  # RMS distance to the principal line
        return v
    normal = vt[-1]
    return float(v @ normal) * normal


class _Scan(NamedTuple):
    t_s: float
    points: np.ndarray  # [N, 2]
    labels: np.ndarray  # [N] segment 0..S-1 of each return
    centroids: np.ndarray  # [S, 2]
    counts: np.ndarray  # [S]
    spans: np.ndarray  # [S]


class ReturnMotion:
    """Velocities of the scanner's returns from consecutive scans (module docstring)."""

    def __init__(self, config: ReturnMotionConfig | None = None) -> None:
        self.config = config or ReturnMotionConfig()
        self._prev: _Scan | None = None

    def update(self, t_s: float, points_xy: np.ndarray) -> np.ndarray:  # [N, 2] m/s
        """The velocity of each return of the scan taken at ``t_s`` (0 where static or not
        associated with the previous scan); the scan becomes the previous one.

        Raises:
            SafetyScannerError: non-finite time or returns, or time running backwards.
        """
        c = self.config
        p = np.asarray(points_xy, dtype=np.float64).reshape(-1, 2)
        if not math.isfinite(t_s) or not np.all(np.isfinite(p)):
            raise SafetyScannerError("scan time and returns must be finite")
        prev = self._prev
        if prev is not None and t_s < prev.t_s:
            raise SafetyScannerError(f"scan at {t_s} s before the previous one at {prev.t_s} s")
        labels = segments(p, c.segment_gap_m)
        cents, counts, spans = _describe(p, labels)
        self._prev = _Scan(t_s, p, labels, cents, counts, spans)
        velocity = np.zeros_like(p)
        if prev is None or not len(p) or not len(prev.counts):
            return velocity
        dt = t_s - prev.t_s
        if dt == 0.0 or dt > c.max_interval_s:
            return velocity
        d = np.hypot(*(cents[:, None, :] - prev.centroids[None]).transpose(2, 0, 1))  # [S, S']
        near, back = d.argmin(axis=1), d.argmin(axis=0)
        gate = c.max_speed_mps * dt + c.segment_gap_m
        for k, j in enumerate(near):
            if back[j] != k or d[k, j] > gate or counts[k] < c.min_points:
                continue
            if not 0.5 <= counts[k] / prev.counts[j] <= 2.0:
                continue
            if abs(spans[k] - prev.spans[j]) > c.span_tolerance_m:
                continue
            mine, theirs = p[labels == k], prev.points[prev.labels == j]
            shift = cents[k] - prev.centroids[j]
            gaps = np.hypot(*((mine - shift)[:, None, :] - theirs[None]).transpose(2, 0, 1))
            if np.median(gaps.min(axis=1)) > c.residual_m:
                continue
            v = _observable(shift / dt, mine, c.straight_m)
            if math.hypot(*v) >= c.moving_speed_mps:
                velocity[labels == k] = v
        return velocity


def moving_in_field(
    points_xy: np.ndarray,  # [N, 2] returns
    velocity: np.ndarray,  # [N, 2] their velocities (``ReturnMotion.update``)
    poses: np.ndarray,  # [M, 3] the protective field's poses (``field_poses``, ``arc_poses``)
    length_m: float,
    width_m: float,
    margin_m: float,
    horizon_s: float,
    step_s: float,
) -> bool:
    """Whether a moving return, predicted at constant velocity at ``step_s`` intervals up to
    ``horizon_s``, enters the footprint grown by ``margin_m`` at any of ``poses``.

    Raises:
        SafetyScannerError: returns and velocities of different counts.
    """
    p = np.asarray(points_xy, dtype=np.float64).reshape(-1, 2)
    v = np.asarray(velocity, dtype=np.float64).reshape(-1, 2)
    if p.shape != v.shape:
        raise SafetyScannerError(f"{len(p)} returns but {len(v)} velocities")
    moving = np.any(v != 0.0, axis=1)
    if not moving.any() or horizon_s <= 0.0:
        return False
    taus = np.arange(1, math.ceil(horizon_s / step_s - 1e-9) + 1) * step_s
    future = (p[moving][None] + taus[:, None, None] * v[moving][None]).reshape(-1, 2)
    return bool(np.any(in_field(future, poses, length_m, width_m, margin_m)))
