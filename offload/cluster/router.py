"""The local cluster's front door: an HTTP router in front of the replicas, plus the cluster's
admin API and Prometheus metrics.

Data path: ``POST /v1/<route>`` is forwarded unchanged (body, ``Authorization``, content type)
to the replica :class:`~offload.cluster.balance.Balancer` picks; the answer comes back unchanged
(``Retry-After`` included). A replica that refuses the connection is marked unhealthy and the
request goes to another one (once); a health loop probes every replica's ``/readyz`` each
second and brings it back. Replicas check the bearer token themselves.

Admin API (bearer token required; the :class:`Admin` object behind it is the cluster):

| route | does |
| --- | --- |
| ``GET /cluster/status`` | replicas (with the router's rate/latency), co-runners, cgroups, agent |
| ``POST /cluster/scale`` ``{"replicas": N}`` | scale (placement by the cluster) |
| ``POST /cluster/corunners`` ``{"name", "kind", "cpus", "duty"}`` | start a co-runner |
| ``POST /cluster/corunners/{name}/{op}`` | ``pause``, ``resume``, ``stop``, ``evict`` |
| ``PUT /cluster/weights`` ``{"r0": 1.0, ...}`` | router weights (the agent's steering) |
| ``POST /cluster/report`` | the agent's latest observation (CPI, predictions, actions) |
| ``POST /cluster/down`` | ask the cluster to stop everything (it does so after answering) |

``GET /healthz``, ``GET /readyz`` (some replica healthy) and ``GET /metrics`` need no token.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

import httpx
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from offload.cluster.balance import BalanceError, Balancer

log = logging.getLogger(__name__)
FORWARD_HEADERS = ("authorization", "content-type", "accept")
BACK_HEADERS = ("content-type", "retry-after")
HEALTH_FAILURES = 3
_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0)


class Admin(Protocol):
    """What the admin API calls (the local cluster). Each may raise ValueError for bad input
    (answered 400) and runs on the cluster's own thread."""

    def status(self, window_s: float = 5.0) -> dict[str, Any]: ...

    def scale(self, replicas: int) -> dict[str, Any]: ...

    def add_corunner(self, body: dict[str, Any]) -> dict[str, Any]: ...

    def corunner_op(self, name: str, op: str) -> dict[str, Any]: ...

    def report(self, body: dict[str, Any]) -> None: ...

    def request_down(self) -> None: ...


class RouterMetrics:
    """The cluster's Prometheus families (one registry per router)."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.requests = Counter(
            "robomr_router_requests", "requests forwarded", ["replica", "code"], registry=r
        )
        self.latency = Histogram(
            "robomr_router_request_latency_seconds",
            "router arrival to answer",
            ["replica"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.outstanding = Gauge(
            "robomr_router_outstanding", "requests in flight", ["replica"], registry=r
        )
        self.weight = Gauge("robomr_router_weight", "steering weight", ["replica"], registry=r)
        self.healthy = Gauge(
            "robomr_router_replica_healthy", "1 if healthy", ["replica"], registry=r
        )
        self.cpi = Gauge(
            "robomr_cluster_cpi", "measured CPI (probe or PMU)", ["replica"], registry=r
        )
        self.predicted_cpi = Gauge(
            "robomr_cluster_predicted_cpi", "predicted CPI, next interval", ["replica"], registry=r
        )
        self.corunner_state = Gauge(
            "robomr_cluster_corunner_running",
            "1 running, 0 paused, -1 stopped/evicted",
            ["name", "kind"],
            registry=r,
        )
        self.be_limit = Gauge(
            "robomr_cluster_be_limit_cores", "best-effort CPU cap (cores; -1 uncapped)", registry=r
        )
        self.actions = Gauge(
            "robomr_agent_actions", "mitigation changes applied, by action", ["action"], registry=r
        )
        self.replicas = Gauge("robomr_cluster_replicas", "replicas in the router", registry=r)


class Router:
    """The app and its server thread (see the module docstring).

    Args:
        balancer: the replica table.
        admin: the cluster behind the admin API.
        token: bearer token of the admin API (None: the admin API is refused).
    """

    def __init__(self, balancer: Balancer, admin: Admin, token: str | None) -> None:
        self.balancer, self.admin, self.token = balancer, admin, token
        self.metrics = RouterMetrics()
        self._http: httpx.AsyncClient | None = None
        # admin calls may wait for processes to start: their own threads, not asyncio's few
        self._admin_pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="robomr-admin")
        self.app = self._build()
        self.server: uvicorn.Server | None = None
        self.thread: threading.Thread | None = None
        self.url = ""

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serves from a background thread; returns the URL once listening."""
        from offload.serving.server import bind, url_of

        sock = bind(host, port)
        self.url = url_of(sock)
        cfg = uvicorn.Config(
            self.app,
            log_level="warning",
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=5,
        )
        self.server = uvicorn.Server(cfg)
        self.thread = threading.Thread(
            target=self.server.run, args=([sock],), daemon=True, name="robomr-router"
        )
        self.thread.start()
        end = time.monotonic() + 30.0
        while not self.server.started and time.monotonic() < end and self.thread.is_alive():
            time.sleep(0.01)
        return self.url

    def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout=15.0)
        self._admin_pool.shutdown(wait=False)

    @property
    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            raise RuntimeError("the router is not running")
        return self._http

    # -- app ---------------------------------------------------------------------------------
    def _build(self) -> FastAPI:
        @contextlib.asynccontextmanager
        async def lifespan(_: FastAPI) -> AsyncIterator[None]:
            limits = httpx.Limits(max_connections=256, max_keepalive_connections=64)
            self._http = httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(60.0, connect=1))
            task = asyncio.create_task(self._health_loop())
            yield
            task.cancel()
            await self._http.aclose()

        app = FastAPI(title="robomr cluster router", lifespan=lifespan)
        app.add_api_route("/healthz", lambda: {"ok": True}, methods=["GET"])
        app.add_api_route("/readyz", self._readyz, methods=["GET"])
        app.add_api_route("/metrics", self._metrics, methods=["GET"])
        app.add_api_route("/v1/{route:path}", self._forward, methods=["POST", "GET"])
        app.add_api_route("/cluster/{what:path}", self._admin, methods=["GET", "POST", "PUT"])
        self._window_s = 5.0
        return app

    async def _readyz(self) -> Response:
        ok = any(r["healthy"] for r in self.balancer.snapshot())
        return JSONResponse({"ready": ok}, status_code=200 if ok else 503)

    async def _forward(self, route: str, request: Request) -> Response:
        body = await request.body()
        headers = {k: v for k, v in request.headers.items() if k.lower() in FORWARD_HEADERS}
        tried: frozenset[str] = frozenset()
        while True:
            replica = self.balancer.pick(tried)
            if replica is None:
                return _error(503, "unavailable", "no healthy replica")
            start = time.monotonic()
            self.metrics.outstanding.labels(replica.name).inc()
            status = 0
            try:
                resp = await self.http.request(
                    request.method, f"{replica.url}/v1/{route}", content=body, headers=headers
                )
                status = resp.status_code
                back = {k: v for k, v in resp.headers.items() if k.lower() in BACK_HEADERS}
                return Response(resp.content, status_code=status, headers=back)
            except httpx.ConnectError:
                self.balancer.set_healthy(replica.name, False)
                tried = tried | {replica.name}
                if len(tried) >= 2:
                    return _error(503, "unavailable", f"replicas {sorted(tried)} refused")
            except httpx.HTTPError as err:
                return _error(504, "deadline", f"{replica.name}: {type(err).__name__}")
            finally:
                latency = time.monotonic() - start
                self.balancer.done(replica, latency, status)
                self.metrics.outstanding.labels(replica.name).dec()
                self.metrics.requests.labels(replica.name, str(status)).inc()
                if 200 <= status < 300:
                    self.metrics.latency.labels(replica.name).observe(latency)

    async def _health_loop(self) -> None:
        """Kubernetes readiness semantics: unhealthy after ``HEALTH_FAILURES`` failed checks in
        a row (a busy replica may answer late once), healthy again after one success."""
        failures: dict[str, int] = {}
        while True:
            await asyncio.sleep(1.0)
            for r in self.balancer.snapshot():
                ok = False
                with contextlib.suppress(httpx.HTTPError):
                    resp = await self.http.get(r["url"] + "/readyz", timeout=5.0)
                    ok = resp.status_code == 200
                failures[r["name"]] = 0 if ok else failures.get(r["name"], 0) + 1
                healthy = ok or (r["healthy"] and failures[r["name"]] < HEALTH_FAILURES)
                if healthy != r["healthy"]:
                    log.info("replica %s %s", r["name"], "healthy" if healthy else "unhealthy")
                self.balancer.set_healthy(r["name"], healthy)

    async def _metrics(self) -> Response:
        m = self.metrics
        snap = self.balancer.snapshot()
        m.replicas.set(len(snap))
        for r in snap:
            m.weight.labels(r["name"]).set(r["weight"])
            m.healthy.labels(r["name"]).set(1 if r["healthy"] else 0)
        with contextlib.suppress(Exception):  # status must not break scraping
            loop = asyncio.get_running_loop()
            status = await loop.run_in_executor(self._admin_pool, self.admin.status)
            for c in status.get("corunners", []):
                code = {"running": 1, "paused": 0}.get(c["state"], -1)
                m.corunner_state.labels(c["name"], c["kind"]).set(code)
            limit = status.get("be_limit_cores")
            m.be_limit.set(-1 if limit is None else limit)
            agent = status.get("agent") or {}
            for name, v in (agent.get("cpi") or {}).items():
                m.cpi.labels(name).set(v)
            for name, v in (agent.get("predicted_cpi") or {}).items():
                m.predicted_cpi.labels(name).set(v)
            for action, n in (agent.get("action_counts") or {}).items():
                m.actions.labels(action).set(n)
        return Response(generate_latest(m.registry), media_type="text/plain; version=0.0.4")

    async def _admin(self, what: str, request: Request) -> Response:
        from offload.serving.auth import authorized

        if self.token is None or not authorized(request.headers.get("authorization"), self.token):
            return _error(401, "unauthorized", "the admin API needs the cluster's bearer token")
        body: dict[str, Any] = {}
        if request.method != "GET":
            raw = await request.body()
            try:
                body = (await request.json()) if raw else {}
            except ValueError:
                return _error(400, "bad_request", "body is not JSON")
        try:
            window = float(request.query_params.get("window", 5.0))
            loop = asyncio.get_running_loop()
            result = await loop.run_in_executor(
                self._admin_pool, self._dispatch, request.method, what, body, window
            )
        except (ValueError, KeyError, BalanceError) as err:
            return _error(400, "bad_request", str(err).strip("'\""))
        return JSONResponse(jsonable(result))

    def _dispatch(self, method: str, what: str, body: dict[str, Any], window_s: float) -> Any:
        parts = what.strip("/").split("/")
        a = self.admin
        if method == "GET" and parts == ["status"]:
            return a.status(window_s)
        if method == "POST" and parts == ["scale"]:
            return a.scale(int(body["replicas"]))
        if method == "POST" and parts == ["corunners"]:
            return a.add_corunner(body)
        if method == "POST" and len(parts) == 3 and parts[0] == "corunners":
            return a.corunner_op(parts[1], parts[2])
        if method == "PUT" and parts == ["weights"]:
            self.balancer.set_weights({str(k): float(v) for k, v in body.items()})
            return {"weights": {r["name"]: r["weight"] for r in self.balancer.snapshot()}}
        if method == "POST" and parts == ["report"]:
            a.report(body)
            return {"ok": True}
        if method == "POST" and parts == ["down"]:
            a.request_down()
            return {"ok": True}
        raise ValueError(f"no admin route {method} /cluster/{what}")


def jsonable(x: Any) -> Any:
    """``x`` with NaN and infinities replaced by None (JSON has no such numbers)."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [jsonable(v) for v in x]
    return x


def _error(code: int, reason: str, message: str) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "reason": reason, "message": message}}, status_code=code
    )
