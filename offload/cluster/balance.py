"""The router's choice of replica and its per-replica statistics (pure; no I/O).

A request goes to the healthy replica with the least

    (outstanding + 1) / weight

i.e. least outstanding requests (Envoy's LEAST_REQUEST, Ray Serve's power-of-two-choices in
spirit), weighted: the steering strategy sets weight = 1 / predicted inflation
(:mod:`offload.cluster.mitigation.steer`), so the score is the predicted time until the new
request would be answered, ``(queue + 1) x service time x inflation`` in units of one service
time. Ties go round-robin. With every weight 1 this is plain least-outstanding (the router of
"mitigation off").
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field

WINDOW_S = 30.0  # how long answered requests are kept for rate and latency


class BalanceError(ValueError):
    """A bad weight or an unknown replica."""


@dataclass
class ReplicaStats:
    """One replica as the router sees it."""

    name: str
    url: str
    weight: float = 1.0
    healthy: bool = True
    outstanding: int = 0
    answered: int = 0
    failed: int = 0
    recent: deque = field(default_factory=deque)  # (t_mono, latency_s, status)

    def record(self, now: float, latency_s: float, status: int) -> None:
        self.answered += 1
        self.failed += status >= 500 or status == 0
        self.recent.append((now, latency_s, status))
        while self.recent and now - self.recent[0][0] > WINDOW_S:
            self.recent.popleft()

    def window(self, now: float, seconds: float) -> tuple[float, float, float, float, float]:
        """(rate per s, p50 ms, p90 ms, mean ms, p99 ms) of 2xx answers in the last
        ``seconds``."""
        lat = sorted(x[1] for x in self.recent if now - x[0] <= seconds and 200 <= x[2] < 300)
        if not lat:
            return 0.0, math.nan, math.nan, math.nan, math.nan
        p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1e3  # noqa: E731
        return len(lat) / seconds, p(0.5), p(0.9), sum(lat) / len(lat) * 1e3, p(0.99)


class Balancer:
    """The replica table (thread-safe) and the choice rule of the module docstring."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.replicas: dict[str, ReplicaStats] = {}
        self._rr = 0

    def add(self, name: str, url: str) -> None:
        with self._lock:
            self.replicas[name] = ReplicaStats(name, url)

    def remove(self, name: str) -> None:
        with self._lock:
            self.replicas.pop(name, None)

    def set_weights(self, weights: dict[str, float]) -> None:
        """Sets weights of known replicas (unknown names are ignored: a replica may have just
        gone).

        Raises:
            BalanceError: a weight outside (0, 1].
        """
        for name, w in weights.items():
            if not 0 < w <= 1:
                raise BalanceError(f"weight of {name}={w} must be in (0, 1]")
        with self._lock:
            for name, w in weights.items():
                if name in self.replicas:
                    self.replicas[name].weight = float(w)

    def set_healthy(self, name: str, healthy: bool) -> None:
        with self._lock:
            if name in self.replicas:
                self.replicas[name].healthy = healthy

    def pick(self, exclude: frozenset[str] = frozenset()) -> ReplicaStats | None:
        """The replica for the next request (its outstanding count is taken), or None.

        When no replica is healthy every one is a candidate (Envoy's panic routing): a health
        check that failed on a busy replica must not take the whole service down."""
        with self._lock:
            left = [r for r in self.replicas.values() if r.name not in exclude]
            cands = [r for r in left if r.healthy] or left
            if not cands:
                return None
            n, first = len(cands), self._rr
            self._rr += 1
            best = min(
                range(n),
                key=lambda i: ((cands[i].outstanding + 1) / cands[i].weight, (i - first) % n),
            )
            chosen = cands[best]
            chosen.outstanding += 1
            return chosen

    def done(self, r: ReplicaStats, latency_s: float, status: int) -> None:
        with self._lock:
            r.outstanding = max(0, r.outstanding - 1)
            r.record(time.monotonic(), latency_s, status)

    def snapshot(self, seconds: float = 5.0) -> list[dict]:
        """Per replica: url, weight, health, outstanding, counts, rate and latency."""
        now = time.monotonic()
        with self._lock:
            out = []
            for r in self.replicas.values():
                rate, p50, p90, mean, p99 = r.window(now, seconds)
                out.append(
                    {
                        "name": r.name,
                        "url": r.url,
                        "weight": r.weight,
                        "healthy": r.healthy,
                        "outstanding": r.outstanding,
                        "answered": r.answered,
                        "failed": r.failed,
                        "rate_per_s": rate,
                        "latency_p50_ms": p50,
                        "latency_p90_ms": p90,
                        "latency_mean_ms": mean,
                        "latency_p99_ms": p99,
                    }
                )
            return out
