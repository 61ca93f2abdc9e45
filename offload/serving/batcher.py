"""The asyncio batch loop of one model: requests in, batches run on the model's own thread.

``ModelWorker.submit`` admits a request through the model's :class:`ModelScheduler` and awaits
its result; ``ModelWorker.run`` is the loop that asks the scheduler for a batch whenever the model
is idle, runs it with ``model.run`` on a one-thread executor (the event loop never blocks on
inference), and resolves the requests' futures. It wakes on arrivals, on the time the policy
asks for, and every brownout period. ``stop`` lets it finish every queued request first
(graceful shutdown), then ends it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from offload.serving.metrics import ServeMetrics
from offload.serving.model import ItemError, Path, ServedModel
from offload.serving.policy import QueuedRequest
from offload.serving.scheduler import ModelScheduler, Rejection

_log = logging.getLogger("robomr.serve")


class Overloaded(Exception):
    """The request was not queued (HTTP 429 or 413)."""

    def __init__(self, rejection: Rejection) -> None:
        super().__init__(rejection.message)
        self.rejection = rejection


class DeadlineMissed(Exception):
    """The request could no longer meet its deadline and was not run (HTTP 504)."""


@dataclass(frozen=True)
class Outcome:
    """A request's result and how it was served."""

    result: Any
    path: Path
    queue_s: float
    service_s: float
    batch_size: int


class ModelWorker:
    """Admission plus the batch loop of one model (see the module docstring)."""

    def __init__(
        self,
        model: ServedModel,
        scheduler: ModelScheduler,
        metrics: ServeMetrics | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.model, self.scheduler, self.metrics, self.clock = model, scheduler, metrics, clock
        self._pool = ThreadPoolExecutor(1, thread_name_prefix=f"model-{model.name}")
        self._futures: dict[int, asyncio.Future] = {}
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self.run(), name=self.model.name)

    async def stop(self) -> None:
        """Finishes every queued request, then ends the loop and the model thread."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await self._task
        self._pool.shutdown(wait=True)

    async def submit(self, request: Any, budget_s: float | None) -> Outcome:
        """Queues ``request`` and waits for its outcome.

        Raises:
            Overloaded: not admitted (queue full, deadline, too large, or shutting down).
            DeadlineMissed: dropped because it could no longer meet its deadline.
            ItemError: the model found the request's input unusable.
        """
        s = self.scheduler
        if self._stopping:
            raise Overloaded(Rejection("shutting_down", 1.0, "the replica is shutting down"))
        admitted = s.admit(lambda p: self.model.cost(request, p), self.clock(), budget_s, request)
        if isinstance(admitted, Rejection):
            if self.metrics:
                self.metrics.rejected.labels(self.model.name, admitted.reason).inc()
            raise Overloaded(admitted)
        future = asyncio.get_running_loop().create_future()
        self._futures[admitted.id] = future
        self._wake.set()
        try:
            return await future
        finally:
            self._futures.pop(admitted.id, None)

    async def run(self) -> None:
        """The batch loop (see the module docstring)."""
        loop = asyncio.get_running_loop()
        s = self.scheduler
        period = s.control_period_s
        next_control = self.clock() + period if period else None
        while not (self._stopping and len(s.policy) == 0):
            self._wake.clear()
            now = self.clock()
            if next_control is not None and now >= next_control:
                decision = s.control(now)
                next_control = now + period
                if decision is not None and decision.action != "hold":
                    _log.info(
                        "%s: brownout tau -> %.3f (%s)",
                        self.model.name,
                        decision.tau,
                        decision.action,
                    )
            d = s.next_dispatch(now)
            for r in d.expired:
                self._fail(
                    r,
                    DeadlineMissed(
                        f"cannot finish within its {(r.deadline_s - r.arrival_s) * 1e3:.0f} ms"
                    ),
                )
                if self.metrics:
                    self.metrics.rejected.labels(self.model.name, "deadline_missed").inc()
            self._publish_gauges()
            if d.batch:
                await self._run_batch(loop, d.batch)
                continue
            wake = [t for t in (d.wake_at_s, next_control) if t is not None]
            timeout = max(min(wake) - self.clock(), 0.0) if wake else None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    async def _run_batch(
        self, loop: asyncio.AbstractEventLoop, batch: tuple[QueuedRequest, ...]
    ) -> None:
        s, path = self.scheduler, batch[0].path
        start = self.clock()
        s.started(batch, start)
        try:
            results = await loop.run_in_executor(
                self._pool, self.model.run, [r.payload for r in batch], path
            )
            if len(results) != len(batch):
                raise RuntimeError(
                    f"{self.model.name}.run gave {len(results)} results for {len(batch)} requests"
                )
        except Exception as err:  # a model bug must answer 500, not hang the requests
            _log.exception("%s: batch of %d failed", self.model.name, len(batch))
            s.aborted(batch, self.clock())
            for r in batch:
                self._fail(r, err)
            return
        end = self.clock()
        s.finished(batch, end, end - start)
        if self.metrics:
            self.metrics.batch_size.labels(self.model.name).observe(len(batch))
            self.metrics.service.labels(self.model.name).observe(end - start)
        for r, result in zip(batch, results, strict=True):
            future = self._futures.get(r.id)
            if future is None or future.done():
                continue  # the client went away
            if isinstance(result, ItemError):
                future.set_exception(result)
            else:
                future.set_result(
                    Outcome(result, path, start - r.arrival_s, end - start, len(batch))
                )
            if self.metrics:
                self.metrics.latency.labels(self.model.name, path).observe(end - r.arrival_s)

    def _fail(self, r: QueuedRequest, err: Exception) -> None:
        future = self._futures.get(r.id)
        if future is not None and not future.done():
            future.set_exception(err)

    def _publish_gauges(self) -> None:
        if self.metrics:
            self.metrics.set_queues(self.model.name, self.scheduler.policy.queue_lengths())
            self.metrics.tau.labels(self.model.name).set(self.scheduler.tau)
