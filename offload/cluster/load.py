"""Open-loop request load against the cluster's router, and the requests' latencies.

Arrivals are Poisson at a rate that may change over time (``set_rate``); each arrival is sent
on its own worker thread (a pool of ``workers``), so a slow answer never delays the next send
(an open loop, as robots and users behave). An arrival that finds every worker busy is counted
as ``dropped``. Requests are detector point clouds (a 32-beam scan of a street; the shape of
``robomr sim`` scans) sent with the service's client (:mod:`offload.client`).
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)


def street_scan(beams: int = 32, columns: int = 900, seed: int = 0) -> np.ndarray:
    """A float32 [beams x columns, 4] scan (x, y, z, intensity) of flat ground 1.8 m below the
    sensor between two building fronts 8 m to either side, with a few parked boxes: the spread
    of points over the detector's grid that a real street scan has."""
    rng = np.random.default_rng(seed)
    el = np.deg2rad(np.linspace(-25.0, 15.0, beams))[:, None]
    az = np.deg2rad(np.linspace(0.0, 360.0, columns, endpoint=False))[None, :]
    dx, dy, dz = np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)
    with np.errstate(divide="ignore", invalid="ignore"):
        t_ground = np.where(dz < 0, -1.8 / dz, np.inf)
        t_wall = np.where(np.abs(dy) > 1e-6, 8.0 / np.abs(dy), np.inf)
    t = np.minimum(np.minimum(t_ground, t_wall), 60.0)
    pts = np.stack([t * dx, t * dy, t * dz, rng.random(t.shape)], -1).reshape(-1, 4)
    pts[:, :3] += rng.normal(0.0, 0.02, (len(pts), 3))
    return pts.astype(np.float32)


@dataclass(frozen=True)
class Sample:
    """One request: send time (monotonic s), latency (s), outcome ("ok" or the client's
    reason: deadline, overloaded, unavailable ...), which replica answered (URL; "" if none)."""

    t_s: float
    latency_s: float
    outcome: str


class PoissonLoad:
    """See the module docstring.

    Args:
        url: the router's URL.
        token: bearer token.
        cloud: the request body's points [N, 4] float32.
        deadline_s: each request's deadline (the client gives up after it).
        workers: concurrent requests at most.
        seed: seed of the arrival times.
    """

    def __init__(
        self,
        url: str,
        token: str,
        cloud: np.ndarray,
        deadline_s: float = 10.0,
        workers: int = 16,
        seed: int = 0,
    ) -> None:
        from offload.client import ClientConfig, OffloadClient

        self.client = OffloadClient(ClientConfig(urls=(url,), token=token, max_attempts=1))
        self.cloud, self.deadline_s = cloud, deadline_s
        self.rng = np.random.default_rng(seed)
        self.rate_per_s = 0.0
        self.samples: list[Sample] = []
        self.dropped = 0
        self._busy = 0
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="robomr-load")
        self._workers = workers
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def set_rate(self, rate_per_s: float) -> None:
        self.rate_per_s = max(0.0, float(rate_per_s))

    def start(self) -> PoissonLoad:
        self._thread = threading.Thread(target=self._arrivals, daemon=True, name="robomr-arrivals")
        self._thread.start()
        return self

    def _arrivals(self) -> None:
        while not self._stop.is_set():
            rate = self.rate_per_s
            if rate <= 0:
                self._stop.wait(0.05)
                continue
            self._stop.wait(float(self.rng.exponential(1.0 / rate)))
            if self._stop.is_set():
                break
            with self._lock:
                if self._busy >= self._workers:
                    self.dropped += 1
                    continue
                self._busy += 1
            self._pool.submit(self._send)

    def _send(self) -> None:
        from offload.client import OffloadError

        start = time.monotonic()
        outcome = "ok"
        try:
            self.client.detect(self.cloud, self.deadline_s)
        except OffloadError as err:
            outcome = err.reason
        except Exception as err:  # a load generator reports every failure, never dies of one
            outcome = f"error: {type(err).__name__}"
        with self._lock:
            self._busy -= 1
            self.samples.append(Sample(start, time.monotonic() - start, outcome))

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
        self._pool.shutdown(wait=True)
        self.client.close()

    def between(self, t0: float, t1: float) -> list[Sample]:
        """Requests sent in [t0, t1)."""
        with self._lock:
            return [s for s in self.samples if t0 <= s.t_s < t1]


def closed_loop_latency(
    url: str, token: str, cloud: np.ndarray, seconds: float, deadline_s: float = 30.0
) -> list[float]:
    """Latencies (s) of back-to-back requests for ``seconds``: one at a time, so each is a pure
    service time plus the router's hop (the quiet baseline of latency inflation)."""
    from offload.client import ClientConfig, OffloadClient, OffloadError

    out = []
    with OffloadClient(ClientConfig(urls=(url,), token=token, max_attempts=1)) as client:
        end = time.monotonic() + seconds
        while time.monotonic() < end or not out:
            start = time.monotonic()
            try:
                client.detect(cloud, deadline_s)
                out.append(time.monotonic() - start)
            except OffloadError as err:
                log.warning("calibration request failed: %s", err)
                time.sleep(0.2)
                if time.monotonic() > end + 60:
                    break
    return out
