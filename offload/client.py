"""The client of the inference service, used by the robot's edge bridge and the load generator.

``OffloadClient.detect(points, deadline_s)`` and ``.render(T, K, width, height, deadline_s)``
send one request with a hard deadline and return the decoded answer, or raise
:class:`OffloadError` saying why not (the caller then falls back to local inference):

- connection reuse: one ``httpx.Client`` with keep-alive connections to every replica;
- explicit timeouts everywhere: connect ``connect_timeout_s``, every other phase the time left
  to the deadline, which is also sent to the service (``deadline_ms``) so it can refuse early;
- retries with backoff to another replica: replicas are tried round-robin; a connection error,
  timeout, 5xx or 429 moves on to the next replica after ``backoff_s`` x 2^k (bounded by the
  deadline); 400/401/413 are the caller's fault and are not retried;
- a circuit breaker per replica (``offload.breaker``): a replica that keeps failing is skipped
  without waiting until a probe finds it back.

Thread-safe: one call at a time per thread (httpx.Client is safe to share).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np

from offload.breaker import STATE_CODES, BreakerConfig, CircuitBreaker
from offload.serving.auth import TOKEN_ENV
from offload.serving.wire import CONTENT_TYPE, WireError, decode, encode

__all__ = ["TOKEN_ENV", "ClientConfig", "OffloadClient", "OffloadError", "Reply"]


def quiet_httpx() -> None:
    """httpx logs every request at INFO (a robot sends ten a second): WARNING unless the
    application set a level itself."""
    if logging.getLogger("httpx").level == logging.NOTSET:
        logging.getLogger("httpx").setLevel(logging.WARNING)


class OffloadError(RuntimeError):
    """No answer in time. ``reason``: deadline, unavailable, overloaded, breaker_open,
    rejected (a 4xx: the request itself is bad), or bad_response."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason


@dataclass(frozen=True)
class ClientConfig:
    """Where and how to call the service.

    Attributes:
        urls: replica base URLs (``http://host:port``), tried round-robin, >= 1.
        token: bearer token, or None for a service run with --no-auth.
        connect_timeout_s: TCP connect timeout (s), > 0.
        max_attempts: tries per call across replicas, >= 1.
        backoff_s: wait before the second try (doubles each further try), >= 0.
        breaker: per-replica circuit breaker settings.
    """

    urls: tuple[str, ...]
    token: str | None = None
    connect_timeout_s: float = 0.05
    max_attempts: int = 2
    backoff_s: float = 0.005
    breaker: BreakerConfig = field(default_factory=BreakerConfig)

    def __post_init__(self) -> None:
        if not self.urls or not all(u.startswith(("http://", "https://")) for u in self.urls):
            raise OffloadError("config", f"urls={list(self.urls)} must be http(s):// URLs")
        if not self.connect_timeout_s > 0 or self.max_attempts < 1 or self.backoff_s < 0:
            raise OffloadError("config", "connect_timeout_s > 0, max_attempts >= 1, backoff >= 0")


@dataclass(frozen=True)
class Reply:
    """A decoded answer."""

    header: dict[str, Any]
    arrays: dict[str, np.ndarray]
    url: str
    rtt_s: float  # from the first send to the answer, retries included
    attempts: int


class OffloadClient:
    """See the module docstring. ``transport`` is for httpx test transports."""

    def __init__(self, config: ClientConfig, transport: httpx.BaseTransport | None = None) -> None:
        self.config = config
        quiet_httpx()
        headers = {"Content-Type": CONTENT_TYPE}
        if config.token:
            headers["Authorization"] = f"Bearer {config.token}"
        self._http = httpx.Client(
            headers=headers,
            transport=transport,
            limits=httpx.Limits(max_keepalive_connections=8, keepalive_expiry=30.0),
            timeout=httpx.Timeout(1.0, connect=config.connect_timeout_s),
        )
        self.breakers = {u: CircuitBreaker(config.breaker) for u in config.urls}
        self._next = 0

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> OffloadClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def breaker_state(self) -> dict[str, int]:
        """Replica URL -> breaker state code (0 closed, 1 half-open, 2 open)."""
        return {u: STATE_CODES[b.state] for u, b in self.breakers.items()}

    def detect(
        self, points: np.ndarray, deadline_s: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, Reply]:
        """(boxes [K, 7], labels [K], scores [K], reply) for one cloud [N, >=3] (lidar frame)."""
        cloud = np.ascontiguousarray(points, dtype=np.float32)
        reply = self.call("/v1/detect", {}, {"points": cloud}, deadline_s)
        try:
            boxes = reply.arrays["boxes"].reshape(-1, 7)
            return boxes, reply.arrays["labels"], reply.arrays["scores"], reply
        except (KeyError, ValueError) as err:
            raise OffloadError("bad_response", f"detect answer lacks boxes: {err}") from err

    def render(
        self,
        T_world_camera_optical: np.ndarray,
        K: np.ndarray,
        width: int,
        height: int,
        deadline_s: float,
    ) -> tuple[np.ndarray, Reply]:
        """(rgb uint8 [height, width, 3], reply) of the map seen from the pose."""
        arrays = {
            "T_world_camera_optical": np.asarray(T_world_camera_optical, np.float64),
            "K": np.asarray(K, np.float64),
        }
        reply = self.call("/v1/render", {"width": width, "height": height}, arrays, deadline_s)
        image = reply.arrays.get("image")
        if image is None or image.shape != (height, width, 3):
            raise OffloadError("bad_response", "render answer lacks an image of the asked size")
        return image, reply

    def call(
        self, route: str, header: dict[str, Any], arrays: dict[str, np.ndarray], deadline_s: float
    ) -> Reply:
        """POSTs one request to ``route`` within ``deadline_s`` (see the module docstring).

        Raises:
            OffloadError: no answer within the deadline, or the request was refused.
        """
        start = time.monotonic()
        end = start + deadline_s
        n = len(self.config.urls)
        order = [self.config.urls[(self._next + i) % n] for i in range(n)]
        self._next = (self._next + 1) % n
        last = OffloadError("breaker_open", "every replica's breaker is open")
        attempts = 0
        for url in order:
            if attempts >= self.config.max_attempts:
                break
            now = time.monotonic()
            if not self.breakers[url].allow(now):
                continue
            if attempts:
                time.sleep(min(self.config.backoff_s * 2 ** (attempts - 1), max(end - now, 0.0)))
            left = end - time.monotonic()
            if left <= 0:
                last = OffloadError("deadline", f"no answer within {deadline_s * 1e3:.0f} ms")
                break
            attempts += 1
            try:
                return self._try(url, route, header, arrays, left, start, attempts)
            except OffloadError as err:
                last = err
                if err.reason == "rejected":
                    break
        raise last

    def _try(
        self,
        url: str,
        route: str,
        header: dict[str, Any],
        arrays: dict[str, np.ndarray],
        left_s: float,
        start: float,
        attempts: int,
    ) -> Reply:
        breaker = self.breakers[url]
        body = encode({**header, "deadline_ms": left_s * 1e3}, arrays)
        timeout = httpx.Timeout(left_s, connect=min(self.config.connect_timeout_s, left_s))
        try:
            resp = self._http.post(url + route, content=body, timeout=timeout)
        except httpx.TimeoutException as err:
            breaker.failure(time.monotonic())
            raise OffloadError("deadline", f"{url}: {type(err).__name__}") from err
        except httpx.HTTPError as err:
            breaker.failure(time.monotonic())
            raise OffloadError("unavailable", f"{url}: {type(err).__name__}: {err}") from err
        if resp.status_code == 200:
            breaker.success()
            try:
                msg = decode(resp.content)
            except WireError as err:
                raise OffloadError("bad_response", f"{url}: {err}") from err
            return Reply(msg.header, msg.arrays, url, time.monotonic() - start, attempts)
        reason = _error_text(resp)
        if resp.status_code == 429:  # overloaded, not sick: the breaker is left alone
            raise OffloadError("overloaded", f"{url}: {reason}")
        if resp.status_code in (400, 401, 413):
            breaker.success()  # the replica works; the request is what is wrong
            raise OffloadError("rejected", f"{url}: HTTP {resp.status_code}: {reason}")
        breaker.failure(time.monotonic())
        raise OffloadError("unavailable", f"{url}: HTTP {resp.status_code}: {reason}")


def _error_text(resp: httpx.Response) -> str:
    try:
        return str(resp.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return resp.text[:200]
