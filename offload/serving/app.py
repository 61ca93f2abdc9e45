"""The HTTP front of a service replica (FastAPI): routes, authentication, errors.

Routes: ``GET /healthz`` (the process answers), ``GET /readyz`` (200 once every model is loaded
and warmed up, 503 while loading or draining), ``GET /metrics`` (Prometheus), ``GET /v1/models``
(models, units, SLOs, tau; also OpenAI's ``object``/``data`` list), and one ``POST`` route per
model (``/v1/detect``, ``/v1/render``) taking and returning ``offload.serving.wire`` bodies; a
token-level language model instead runs its own continuous-batching engine and answers OpenAI's
``POST /v1/completions`` (``offload.serving.completions``, ``offload.serving.models.lm``). The
probe and metrics routes carry no payload data and need no token (Kubernetes probes and
Prometheus scrape them); inference routes need ``Authorization: Bearer <token>``.

Errors answer JSON ``{"error": {"code", "reason", "message"}}``: 400 malformed body or input,
401 missing or wrong token, 413 body or request too large, 429 overloaded or the deadline cannot
be met (with ``Retry-After``, s), 503 not ready or draining, 500 a model failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from offload.models.lm.openai_api import models_body
from offload.serving.auth import authorized
from offload.serving.batcher import DeadlineMissed, ModelWorker, Overloaded
from offload.serving.completions import add_completion_routes
from offload.serving.config import ServeConfig, make_policy
from offload.serving.metrics import ServeMetrics
from offload.serving.model import PATHS, ItemError, ServedModel, build_model, model_class
from offload.serving.scheduler import ModelScheduler, ModelSpec
from offload.serving.service_time import ServiceTimeModel, ServiceTimePrior
from offload.serving.wire import CONTENT_TYPE, TooLargeError, WireError, decode, encode

_log = logging.getLogger("robomr.serve")


class Replica:
    """Everything one replica holds: models, their workers, metrics, readiness."""

    def __init__(
        self, config: ServeConfig, token: str | None, models: dict[str, ServedModel] | None = None
    ) -> None:
        self.config, self.token = config, token
        self.metrics = ServeMetrics()
        self.models: dict[str, ServedModel] = dict(models or {})
        self.workers: dict[str, ModelWorker] = {}
        self.engines: dict[str, Any] = {}  # token-level models (language model): own engine
        self.ready = False
        self.draining = False
        self.load_error: str | None = None
        self.started = time.time()
        self._load_task: asyncio.Task | None = None

    async def start(self) -> None:
        self._load_task = asyncio.get_running_loop().create_task(self._load())

    async def _load(self) -> None:
        try:
            for name in self.config.models:
                if name not in self.models:
                    opts = self.config.model_options.get(name, {})
                    self.models[name] = await asyncio.to_thread(build_model, name, opts)
                if getattr(self.models[name], "token_level", False):
                    await asyncio.to_thread(self._start_engine, name)
                    continue
                priors = await asyncio.to_thread(_warm_up, self.models[name])
                self.workers[name] = self._worker(self.models[name], priors)
                self.workers[name].start()
                _log.info("%s ready (%s)", name, self.models[name].version)
        except Exception as err:  # reported by /readyz; the process stays up for diagnosis
            self.load_error = f"{type(err).__name__}: {err}"
            _log.error("model loading failed: %s", self.load_error)
            return
        self.ready = True
        self.metrics.ready.set(1)

    def _start_engine(self, name: str) -> None:
        """Starts a token-level model's engine with this replica's policy, SLO and brownout."""
        model: Any = self.models[name]
        cfg = self.config.scheduler_config(name, model.has_brownout)
        model.start(
            self.config.policy,
            cfg.slo_s,
            cfg.brownout,
            law_name=cfg.brownout_law,
            headroom=cfg.brownout_headroom,
        )
        self.engines[name] = model
        _log.info("%s ready (%s, token-level)", name, model.version)

    def _worker(self, model: ServedModel, priors: dict[str, ServiceTimePrior]) -> ModelWorker:
        spec = ModelSpec(
            model.name, model.max_cost, model.has_brownout, {p: model.memory(p) for p in PATHS}
        )
        config = self.config.scheduler_config(model.name, model.has_brownout)
        example = model.example()
        scale = float(model.cost(example, "full")) if example is not None else 1.0
        service = {p: ServiceTimeModel(priors.get(p), unit_scale=scale) for p in PATHS}
        policy = make_policy(
            self.config.policy,
            spec,
            config.memory_budget_bytes,
            bounds=self.config.bucket_bounds.get(model.name),
            static_batch=self.config.static_max_batch,
            static_delay_s=self.config.static_max_delay_s,
            static_timeout_s=self.config.static_queue_timeout_s,
        )
        return ModelWorker(model, ModelScheduler(spec, policy, config, service), self.metrics)

    async def stop(self) -> None:
        """Finishes queued work of every model (in-flight HTTP requests are already done)."""
        self.draining = True
        if self._load_task is not None and not self._load_task.done():
            self._load_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._load_task
        await asyncio.gather(*(w.stop() for w in self.workers.values()))
        for model in self.engines.values():
            await asyncio.to_thread(model.stop, True)


def _warm_up(model: ServedModel) -> dict[str, ServiceTimePrior]:
    """Runs the model's example on each path twice; the second time is the prior."""
    example = model.example()
    if example is None:
        return {}
    priors = {}
    for path in PATHS if model.has_brownout else ("full",):
        model.run([example], path)  # type: ignore[arg-type]
        start = time.perf_counter()
        model.run([example], path)  # type: ignore[arg-type]
        priors[path] = ServiceTimePrior(per_item_s=time.perf_counter() - start)
    return priors


def _error(
    code: int, reason: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = {"error": {"code": code, "reason": reason, "message": message}}
    return JSONResponse(body, status_code=code, headers=headers)


def create_app(replica: Replica) -> FastAPI:
    """The FastAPI application of ``replica`` (its lifespan loads and stops the models)."""

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await replica.start()
        yield
        await replica.stop()

    app = FastAPI(
        title="robomr inference service", lifespan=lifespan, docs_url=None, redoc_url=None
    )
    app.state.replica = replica

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        ok = replica.ready and not replica.draining
        body = {
            "ready": ok,
            "draining": replica.draining,
            "models": {
                n: n in replica.workers or n in replica.engines for n in replica.config.models
            },
            "error": replica.load_error,
        }
        return JSONResponse(body, status_code=200 if ok else 503)

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(replica.metrics.render(), media_type="text/plain; version=0.0.4")

    @app.get("/v1/models")
    async def list_models() -> dict[str, Any]:
        # "object"/"data" make the list readable by OpenAI clients (``client.models.list()``)
        return {
            **models_body(list(replica.models), int(replica.started)),
            "policy": replica.config.policy,
            "models": [
                {
                    "name": n,
                    "route": m.route,
                    "unit": m.unit,
                    "version": m.version,
                    "slo_ms": 1e3 * replica.config.slo_of(n),
                    "tau": _tau(replica, n),
                }
                for n, m in replica.models.items()
            ],
        }

    for name in replica.config.models:
        if getattr(model_class(name), "token_level", False):
            add_completion_routes(app, replica, name)
        else:
            _add_model_route(app, replica, name)
    return app


def _tau(replica: Replica, name: str) -> float | None:
    if name in replica.workers:
        return replica.workers[name].scheduler.tau
    return replica.engines[name].tau if name in replica.engines else None


def _add_model_route(app: FastAPI, replica: Replica, name: str) -> None:
    route = model_class(name).route

    async def infer(request: Request) -> Response:
        return await _infer(replica, name, request)

    app.add_api_route(route, infer, methods=["POST"], name=name)


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLargeError(f"body of {declared} bytes exceeds the limit {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLargeError(f"body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def _infer(replica: Replica, name: str, request: Request) -> Response:
    counter = replica.metrics.requests
    if not authorized(request.headers.get("authorization"), replica.token):
        counter.labels(name, "", "401").inc()
        return _error(
            401, "unauthorized", "missing or wrong bearer token", {"WWW-Authenticate": "Bearer"}
        )
    worker = replica.workers.get(name)
    if worker is None or replica.draining:
        why = replica.load_error or ("draining" if replica.draining else "the model is loading")
        return _error(503, "not_ready", why, {"Retry-After": "1"})
    limits = replica.config.limits
    try:
        message = decode(await _read_body(request, limits.max_body_bytes), limits)
        parsed = worker.model.parse(message)
        budget_ms = message.field("deadline_ms", float, -1.0)
        if budget_ms != -1.0 and not 0 < budget_ms <= 60_000:
            raise WireError(f"deadline_ms={budget_ms} must be in (0, 60000]")
        outcome = await worker.submit(parsed, None if budget_ms == -1.0 else budget_ms / 1e3)
    except TooLargeError as err:
        counter.labels(name, "", "413").inc()
        return _error(413, "too_large", str(err))
    except (WireError, ItemError) as err:
        counter.labels(name, "", "400").inc()
        return _error(400, "bad_request", str(err))
    except Overloaded as err:
        r = err.rejection
        code = 413 if r.reason == "too_large" else 503 if r.reason == "shutting_down" else 429
        counter.labels(name, "", str(code)).inc()
        retry = str(max(1, math.ceil(r.retry_after_s)))
        return _error(code, r.reason, str(err), {"Retry-After": retry})
    except DeadlineMissed as err:
        counter.labels(name, "", "429").inc()
        return _error(429, "deadline", str(err), {"Retry-After": "1"})
    except Exception as err:  # a model failure answers 500 with its text, never a traceback
        counter.labels(name, "", "500").inc()
        return _error(500, "model_error", f"{type(err).__name__}: {err}")
    header, arrays = worker.model.encode(outcome.result)
    header.update(
        model=name,
        version=worker.model.version,
        path=outcome.path,
        queue_ms=1e3 * outcome.queue_s,
        service_ms=1e3 * outcome.service_s,
        batch_size=outcome.batch_size,
        tau=worker.scheduler.tau,
    )
    counter.labels(name, outcome.path, "200").inc()
    return Response(encode(header, arrays), media_type=CONTENT_TYPE)
