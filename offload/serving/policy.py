"""Batching policies: the interface, and the baselines BucketServe is compared with.

A policy decides which queued requests run together and when. It is pure: no threads, no
clock of its own (``now_s`` is passed in), so the asyncio server (``offload.serving.batcher``)
and the discrete-event simulator (``offload.serving.simulate``) run the very same objects.

Contract (the model's scheduler calls these, single-threaded):
- ``admit(request, now_s, ctx)`` for each arriving request: False rejects it (HTTP 429);
- ``add(request, now_s)`` for each admitted request;
- ``next_dispatch(now_s, ctx)`` whenever the model's worker is idle (after an arrival, a
  completion, or the time asked for in the previous ``Dispatch.wake_at_s``); it returns the
  batch to run now (requests of one path), requests that can no longer meet their deadline
  (answered without running), and when to ask again if nothing runs.

``ctx`` (:class:`PolicyContext`) gives the predicted service time of a batch (the online
service-time model), the memory a batch needs and the memory budget.

Baselines (same interface): ``none`` (one request at a time, FIFO), ``static`` (the Triton /
TorchServe dynamic batcher: run when ``max_batch`` requests wait or the oldest has waited
``max_delay_s``) and ``fifo`` (greedy: when idle, take requests from the head while the batch
fits the memory budget). All three drop a request whose deadline has already passed before it
starts (Triton's queue-policy timeout): running it would only delay others.
"""

from __future__ import annotations

import abc
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from offload.serving.model import MemoryModel, Path


class PolicyError(ValueError):
    """A policy setting is invalid."""


@dataclass(eq=False)
class QueuedRequest:
    """A request waiting for its batch (times in seconds on the scheduler's clock)."""

    id: int
    cost: int  # model units
    path: Path
    arrival_s: float
    deadline_s: float  # absolute: arrival + the request's latency budget
    payload: Any = None  # the parsed request (server) or None (simulation)


@dataclass(frozen=True)
class Dispatch:
    """What to do now."""

    batch: tuple[QueuedRequest, ...] = ()  # run now, all of one path; empty: nothing to run
    expired: tuple[QueuedRequest, ...] = ()  # answer "deadline cannot be met", do not run
    wake_at_s: float | None = None  # ask again at this time if nothing arrives (None: on arrival)


@dataclass
class PolicyContext:
    """What a policy may ask about the model."""

    predict_s: Callable[[Path, float, int], float]  # (path, total units, requests) -> seconds
    batch_bytes: Callable[[Path, list[int]], float]  # (path, costs) -> bytes
    item_bytes: Callable[[Path, float], float]  # (path, cost) -> bytes one request adds
    memory_budget_bytes: float
    busy_until_s: float = 0.0  # when the running batch is predicted to finish


class BatchPolicy(abc.ABC):
    """See the module docstring for the calling contract."""

    name: str = "policy"

    def admit(self, request: QueuedRequest, now_s: float, ctx: PolicyContext) -> bool:
        """Whether to queue ``request`` (default: always; the scheduler bounds the queue)."""
        return True

    def predicted_finish_s(self, request: QueuedRequest, now_s: float, ctx: PolicyContext) -> float:
        """When ``request`` would finish if queued now: the running batch, then every queued
        request due no later than it, one at a time, then itself (policies that batch refine
        this)."""
        ahead = max(ctx.busy_until_s - now_s, 0.0) + sum(
            ctx.predict_s(r.path, r.cost, 1)
            for r in self.queued()
            if r.deadline_s <= request.deadline_s
        )
        return now_s + ahead + ctx.predict_s(request.path, request.cost, 1)

    @abc.abstractmethod
    def add(self, request: QueuedRequest, now_s: float) -> None: ...

    @abc.abstractmethod
    def next_dispatch(self, now_s: float, ctx: PolicyContext) -> Dispatch: ...

    @abc.abstractmethod
    def queued(self) -> Iterable[QueuedRequest]:
        """Every queued request (any order)."""

    def queue_lengths(self) -> dict[str, int]:
        """Queued requests per queue label (buckets for BucketServe), for /metrics."""
        return {"all": sum(1 for _ in self.queued())}

    def __len__(self) -> int:
        return sum(1 for _ in self.queued())


@dataclass
class _Fifo(BatchPolicy):
    """Shared FIFO queue handling of the baselines."""

    queue: deque = field(default_factory=deque, init=False)

    def add(self, request: QueuedRequest, now_s: float) -> None:
        self.queue.append(request)

    def queued(self) -> Iterable[QueuedRequest]:
        return iter(self.queue)

    def __len__(self) -> int:
        return len(self.queue)

    def _drop_expired(self, now_s: float) -> tuple[QueuedRequest, ...]:
        late = tuple(r for r in self.queue if r.deadline_s <= now_s)
        if late:
            self.queue = deque(r for r in self.queue if r.deadline_s > now_s)
        return late

    def _take_run(self, limit: Callable[[list[QueuedRequest]], bool]) -> tuple[QueuedRequest, ...]:
        """Head requests of the head's path (in order) while ``limit(batch + [next])`` holds."""
        batch = [self.queue.popleft()]
        while self.queue and self.queue[0].path == batch[0].path and limit([*batch, self.queue[0]]):
            batch.append(self.queue.popleft())
        return tuple(batch)


@dataclass
class NoBatching(_Fifo):
    """One request at a time, first come first served."""

    name: str = "none"

    def next_dispatch(self, now_s: float, ctx: PolicyContext) -> Dispatch:
        expired = self._drop_expired(now_s)
        if not self.queue:
            return Dispatch(expired=expired)
        return Dispatch(batch=(self.queue.popleft(),), expired=expired)


@dataclass
class StaticBatching(_Fifo):
    """Triton/TorchServe dynamic batching: ``max_batch`` requests or ``max_delay_s`` of waiting.

    Attributes:
        max_batch: largest batch, >= 1 (set it from the memory budget and the largest request,
            as an operator must: ``static_max_batch``).
        max_delay_s: longest time the oldest request waits for a fuller batch, >= 0.
        queue_timeout_s: a request that has waited this long is answered without running
            (Triton's queue policy ``default_timeout_microseconds`` with REJECT), > 0; None: only
            once its deadline has passed. An operator sets it below the SLO so that a request
            still starts early enough to finish in time.
    """

    max_batch: int = 4
    max_delay_s: float = 0.01
    name: str = "static"
    queue_timeout_s: float | None = None

    def __post_init__(self) -> None:
        if self.max_batch < 1:
            raise PolicyError(f"max_batch={self.max_batch} must be >= 1")
        if not self.max_delay_s >= 0:
            raise PolicyError(f"max_delay_s={self.max_delay_s} must be >= 0")
        if self.queue_timeout_s is not None and not self.queue_timeout_s > 0:
            raise PolicyError(f"queue_timeout_s={self.queue_timeout_s} must be > 0")

    def _drop_expired(self, now_s: float) -> tuple[QueuedRequest, ...]:
        timeout = self.queue_timeout_s
        if timeout is None:
            return super()._drop_expired(now_s)
        late = tuple(
            r for r in self.queue if r.deadline_s <= now_s or now_s - r.arrival_s >= timeout
        )
        if late:
            gone = {id(r) for r in late}
            self.queue = deque(r for r in self.queue if id(r) not in gone)
        return late

    def next_dispatch(self, now_s: float, ctx: PolicyContext) -> Dispatch:
        expired = self._drop_expired(now_s)
        if not self.queue:
            return Dispatch(expired=expired)
        head = self.queue[0]
        same = sum(1 for r in self.queue if r.path == head.path)
        due = head.arrival_s + self.max_delay_s
        if same < self.max_batch and now_s < due:
            return Dispatch(expired=expired, wake_at_s=due)
        return Dispatch(self._take_run(lambda b: len(b) <= self.max_batch), expired)


@dataclass
class FifoGreedy(_Fifo):
    """When idle, run the head requests of one path while the batch fits the memory budget."""

    name: str = "fifo"

    def next_dispatch(self, now_s: float, ctx: PolicyContext) -> Dispatch:
        expired = self._drop_expired(now_s)
        if not self.queue:
            return Dispatch(expired=expired)
        path = self.queue[0].path

        def fits(batch: list[QueuedRequest]) -> bool:
            return ctx.batch_bytes(path, [r.cost for r in batch]) <= ctx.memory_budget_bytes

        return Dispatch(self._take_run(fits), expired)


def static_max_batch(
    memory: MemoryModel, budget_bytes: float, max_cost: float, cap: int = 64
) -> int:
    """The largest static batch whose worst case (every request ``max_cost``) fits the budget."""
    per_item = memory.item_bytes(max_cost)
    return max(1, min(cap, int(budget_bytes // per_item) if per_item > 0 else cap))
