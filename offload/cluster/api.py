"""A client of the local cluster's admin API (:mod:`offload.cluster.router`), used by the agent
and by ``robomr cluster status|scale|down``.

Raises:
    ClusterApiError: the cluster is unreachable or refused the call (the message says which).
"""

from __future__ import annotations

import time
from typing import Any

import httpx


class ClusterApiError(RuntimeError):
    """See the module docstring."""


class ClusterApi:
    """Calls ``<url>/cluster/...`` with the bearer token; every call has a timeout.

    Args:
        url: the router's base URL.
        token: the cluster's bearer token.
        timeout_s: per-call timeout (s); scaling waits for replicas, so it gets ``scale_timeout_s``.
        get_retries: extra tries of a GET after a timeout or a dropped connection (POST and PUT
            are never repeated: they are not idempotent).
    """

    def __init__(
        self,
        url: str,
        token: str,
        timeout_s: float = 30.0,
        scale_timeout_s: float = 600.0,
        get_retries: int = 2,
    ) -> None:
        from offload.client import quiet_httpx

        quiet_httpx()
        self.url = url.rstrip("/")
        self.scale_timeout_s = scale_timeout_s
        self.get_retries = max(0, get_retries)
        self._http = httpx.Client(
            headers={"Authorization": f"Bearer {token}"},
            timeout=httpx.Timeout(timeout_s, connect=2.0),
        )

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, body: Any = None, timeout: float | None = None) -> Any:
        # a GET is safe to repeat: on a starved node one timeout or reset need not end a caller
        attempts = 1 + (self.get_retries if method == "GET" else 0)
        for attempt in range(attempts):
            try:
                resp = self._http.request(
                    method,
                    f"{self.url}/cluster/{path}",
                    json=body,
                    timeout=timeout or httpx.USE_CLIENT_DEFAULT,
                )
                break
            except httpx.TransportError as err:
                if attempt + 1 < attempts:
                    time.sleep(0.5 * (attempt + 1))
                    continue
                raise ClusterApiError(
                    f"cluster at {self.url} unreachable: {type(err).__name__}: {err}"
                ) from err
            except httpx.HTTPError as err:
                raise ClusterApiError(
                    f"cluster at {self.url} unreachable: {type(err).__name__}: {err}"
                ) from err
        if resp.status_code != 200:
            try:
                msg = resp.json()["error"]["message"]
            except (ValueError, KeyError, TypeError):
                msg = resp.text[:200]
            raise ClusterApiError(f"{method} /cluster/{path}: HTTP {resp.status_code}: {msg}")
        return resp.json()

    def status(self, window_s: float = 5.0) -> dict[str, Any]:
        """The cluster's state; request rates and latencies over the last ``window_s``."""
        return self._call("GET", f"status?window={window_s:g}")

    def scale(self, replicas: int) -> dict[str, Any]:
        return self._call("POST", "scale", {"replicas": replicas}, self.scale_timeout_s)

    def add_corunner(self, spec: dict[str, Any]) -> dict[str, Any]:
        return self._call("POST", "corunners", spec, 120.0)

    def corunner_op(self, name: str, op: str) -> dict[str, Any]:
        return self._call("POST", f"corunners/{name}/{op}", {}, 60.0)

    def set_weights(self, weights: dict[str, float]) -> dict[str, Any]:
        return self._call("PUT", "weights", weights)

    def report(self, report: dict[str, Any]) -> None:
        from offload.cluster.router import jsonable

        self._call("POST", "report", jsonable(report))

    def down(self) -> None:
        self._call("POST", "down", {}, 120.0)
