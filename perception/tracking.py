"""Multi-object tracking of detected boxes in the world frame: the detector's per-scan boxes
become tracks with identities, smoothed boxes and velocities (what a motion planner needs to
predict moving vehicles; CROA, arXiv 2412.18453, runs detection and planning interleaved).

Per update at time t (boxes already in the world frame):

1. Predict every track to t with constant velocity: ``c_j(t) = c_j + v_j (t - t_j)``.
2. Associate greedily by centre distance, nearest pairs first, each within its track's gate
   ``gate_m + w_j (t - t_j)`` around the prediction: ``w_j = max_speed_mps`` for a track seen
   once (its velocity is unknown), 0 for a static one, else ``|v_j| + speed_slack_mps`` (it
   may have sped up or braked). A parked car's track is not taken over by a vehicle driving
   past while the car itself is hidden (one that drives off starts a new track).
3. Update a matched track with an alpha-beta filter (``r = z - c_pred``):
   ``c = c_pred + alpha r``, ``v = v + beta r / (t - t_j)`` (its second detection sets
   ``v = (z - c) / (t - t_j)`` and ``c = z``: two points); size by exponential smoothing with
   ``alpha``; yaw taken from the detection, folded to within pi/2 of the track's (a box's
   heading is ambiguous front/back).
4. Start a track for every unmatched detection with ``score >= min_score``.
5. Drop tracks unseen for longer than ``keep_moving_s`` (moving) or ``keep_static_s``
   (static: a parked car hidden behind another is still there).

A track whose speed is below ``static_speed_mps`` is reported as static (velocity 0): the
velocity of a parked car estimated from noisy centres is noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from perception.errors import PerceptionError


class TrackingError(PerceptionError):
    """A bad tracker setting or update (shapes, NaN, time going backwards)."""


@dataclass(frozen=True)
class TrackerConfig:
    """Settings of :class:`BoxTracker` (module docstring).

    Attributes:
        gate_m: largest centre distance of a match at zero elapsed time (m), in (0, 20].
        max_speed_mps: speed that widens the gate of a track seen once per second (m/s),
            in [0, 60].
        speed_slack_mps: speed change that widens the gate of a track with a velocity (m/s),
            in [0, 60].
        alpha: position and size gain of the filter, in (0, 1].
        beta: velocity gain of the filter, in [0, 1].
        min_score: least detection score that starts a track, in [0, 1].
        keep_moving_s: a moving track unseen this long is dropped (s), in (0, 60].
        keep_static_s: a static track unseen this long is dropped (s), in (0, 3600].
        static_speed_mps: tracks slower than this are static (m/s), in [0, 10].
    """

    gate_m: float = 2.5
    max_speed_mps: float = 15.0
    speed_slack_mps: float = 3.0
    alpha: float = 0.6
    beta: float = 0.3
    min_score: float = 0.3
    keep_moving_s: float = 1.5
    keep_static_s: float = 60.0
    static_speed_mps: float = 1.0

    def __post_init__(self) -> None:
        for name, lo, hi in (("gate_m", 1e-3, 20.0), ("max_speed_mps", 0.0, 60.0),
                             ("speed_slack_mps", 0.0, 60.0),
                             ("alpha", 1e-3, 1.0), ("beta", 0.0, 1.0), ("min_score", 0.0, 1.0),
                             ("keep_moving_s", 1e-3, 60.0), ("keep_static_s", 1e-3, 3600.0),
                             ("static_speed_mps", 0.0, 10.0)):  # fmt: skip
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not (math.isfinite(value) and lo <= value <= hi)
            ):
                raise TrackingError(f"{name}={value!r}: must be in [{lo}, {hi}]")


@dataclass
class Track:
    """One tracked object (world frame).

    Attributes:
        track_id: unique, increasing. box: [7] filtered box at ``stamp_ns``. velocity_mps: [2]
        filtered ground velocity. score: score of the latest matched detection. label: its
        class index. hits: matched detections. stamp_ns: time of ``box``. seen_ns: time of the
        latest match.
    """

    track_id: int
    box: np.ndarray
    velocity_mps: np.ndarray
    score: float
    label: int
    hits: int
    stamp_ns: int
    seen_ns: int

    def predicted_box(self, stamp_ns: int) -> np.ndarray:  # [7]
        out = self.box.copy()
        out[:2] += self.velocity_mps * (stamp_ns - self.stamp_ns) * 1e-9
        return out


@dataclass
class BoxTracker:
    """Greedy nearest-neighbour tracker with alpha-beta filters (module docstring)."""

    config: TrackerConfig = field(default_factory=TrackerConfig)
    tracks: list[Track] = field(default_factory=list)
    _next_id: int = 0
    _stamp_ns: int | None = None

    def update(
        self,
        stamp_ns: int,
        boxes: np.ndarray,  # [K, 7] world frame
        scores: np.ndarray,  # [K]
        labels: np.ndarray,  # [K] int
    ) -> np.ndarray:  # [K] track id of each detection, -1 when it started no track
        """Associates, filters, starts and drops tracks (module docstring).

        Raises:
            TrackingError: shapes that do not match, NaN/Inf, or a stamp before the last one.
        """
        b = np.asarray(boxes, dtype=np.float64).reshape(-1, 7)
        s = np.asarray(scores, dtype=np.float64).reshape(-1)
        lab = np.asarray(labels).reshape(-1)
        if not len(b) == len(s) == len(lab):
            raise TrackingError(f"boxes {len(b)}, scores {len(s)}, labels {len(lab)}: must match")
        if not (np.all(np.isfinite(b)) and np.all(np.isfinite(s))):
            raise TrackingError("boxes or scores contain NaN or Inf")
        if self._stamp_ns is not None and stamp_ns < self._stamp_ns:
            raise TrackingError(f"stamp_ns={stamp_ns} is before the last update {self._stamp_ns}")
        self._stamp_ns = int(stamp_ns)
        ids = np.full(len(b), -1, dtype=np.int64)
        for j, k in self._associate(stamp_ns, b):
            self._correct(self.tracks[j], stamp_ns, b[k], float(s[k]), int(lab[k]))
            ids[k] = self.tracks[j].track_id
        for k in np.flatnonzero((ids < 0) & (s >= self.config.min_score)):
            self.tracks.append(Track(self._next_id, b[k].copy(), np.zeros(2), float(s[k]),
                                     int(lab[k]), 1, int(stamp_ns), int(stamp_ns)))  # fmt: skip
            ids[k] = self._next_id
            self._next_id += 1
        c = self.config
        self.tracks = [t for t in self.tracks if (stamp_ns - t.seen_ns) * 1e-9
                       <= (c.keep_moving_s if self.is_moving(t) else c.keep_static_s)]  # fmt: skip
        return ids

    def is_moving(self, track: Track) -> bool:
        return float(np.hypot(*track.velocity_mps)) >= self.config.static_speed_mps

    def velocity(self, track: Track) -> np.ndarray:  # [2]: 0 for static tracks
        return track.velocity_mps.copy() if self.is_moving(track) else np.zeros(2)

    def _associate(self, stamp_ns: int, boxes: np.ndarray) -> list[tuple[int, int]]:
        if not self.tracks or not len(boxes):
            return []
        pred = np.array([t.predicted_box(stamp_ns)[:2] for t in self.tracks])  # [J, 2]
        unseen = np.array([(stamp_ns - t.stamp_ns) * 1e-9 for t in self.tracks])  # [J]
        dist = np.linalg.norm(pred[:, None] - boxes[None, :, :2], axis=-1)  # [J, K]
        c = self.config
        widen = np.array([c.max_speed_mps if t.hits == 1 else
                          float(np.hypot(*t.velocity_mps)) + c.speed_slack_mps
                          if self.is_moving(t) else 0.0 for t in self.tracks])  # fmt: skip
        gate = c.gate_m + widen * unseen
        pairs, used_j, used_k = [], set(), set()
        for flat in np.argsort(dist, axis=None, kind="stable"):
            j, k = np.unravel_index(flat, dist.shape)
            # gates differ per track: a pair beyond its own gate does not end the search (a
            # farther pair may be within a once-seen track's wider gate)
            if dist[j, k] > gate[j] or j in used_j or k in used_k:
                continue
            pairs.append((int(j), int(k)))
            used_j.add(j)
            used_k.add(k)
        return pairs

    def _correct(self, t: Track, stamp_ns: int, box: np.ndarray, score: float, label: int) -> None:
        c = self.config
        dt = (stamp_ns - t.stamp_ns) * 1e-9
        pred = t.predicted_box(stamp_ns)
        residual = box[:2] - pred[:2]
        if t.hits == 1 and dt > 1e-6:  # two points: the velocity between them, no filter yet
            t.velocity_mps = (box[:2] - t.box[:2]) / dt
            t.box[:2] = box[:2]
        else:
            t.box[:2] = pred[:2] + c.alpha * residual
            if dt > 1e-6:
                t.velocity_mps = t.velocity_mps + c.beta * residual / dt
        t.box[2:6] += c.alpha * (box[2:6] - t.box[2:6])
        yaw = box[6] + math.pi * round((t.box[6] - box[6]) / math.pi)  # fold front/back
        t.box[6] = float(yaw)
        t.score, t.label, t.hits = score, label, t.hits + 1
        t.stamp_ns = t.seen_ns = int(stamp_ns)
