"""Runs the token-level engine for an asyncio server: one worker thread, streams per request.

The engine is not thread-safe, so exactly one worker thread calls it; the asyncio side only puts
submissions and aborts on a queue and reads events from per-request ``asyncio.Queue``s (filled
with ``loop.call_soon_threadsafe``). Each loop iteration: take submissions and aborts, run one
engine step (or wait for work), deliver the step's tokens, and every ``control_period_s`` hand the
finished requests' latencies to the brownout law (injected: the service's control law) and apply
the level it returns. ``stop`` lets running requests finish (graceful) or aborts them.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from offload.models.lm.engine import Engine, EngineError, LMRequest, TokenEvent

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Finished:
    """Latency of one finished request, as the brownout law sees it."""

    ttft_s: float
    tpot_s: float
    ttft_slo_s: float
    tpot_slo_s: float

    @property
    def normalized(self) -> float:
        """max(TTFT / its SLO, TPOT / its SLO): <= 1 meets the SLO."""
        return max(self.ttft_s / self.ttft_slo_s, self.tpot_s / self.tpot_slo_s)


BrownoutLaw = Callable[[list[Finished]], float | None]  # finished in the period -> new tau


class EngineRunner:
    """The engine on a worker thread behind an asyncio-friendly interface."""

    def __init__(
        self,
        engine: Engine,
        tpot_slo_s: float = 0.2,
        law: BrownoutLaw | None = None,
        control_period_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = engine
        self.tpot_slo_s = tpot_slo_s
        self._law = law
        self._period = control_period_s
        self._clock = clock
        self._inbox: queue.Queue[tuple[str, object]] = queue.Queue()
        self._streams: dict[str, tuple[asyncio.AbstractEventLoop, asyncio.Queue]] = {}
        self._first: dict[str, float] = {}  # request id -> time of its first token
        self._meta: dict[str, tuple[float, float]] = {}  # request id -> (arrival, TTFT SLO)
        self._finished: list[Finished] = []
        self._stop = threading.Event()
        self._drain = True
        self._thread: threading.Thread | None = None
        self.steps = 0

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="lm-engine", daemon=True)
            self._thread.start()

    def stop(self, drain: bool = True, timeout_s: float = 30.0) -> None:
        """Stops the worker; with ``drain`` it first finishes every admitted request."""
        self._drain = drain
        self._stop.set()
        self._inbox.put(("wake", None))
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    @property
    def now(self) -> float:
        return self._clock()

    def submit(self, req: LMRequest) -> asyncio.Queue:
        """Checks ``req`` now (raises ``EngineError``) and returns the queue its events arrive on.

        Must be called from the event loop that will read the queue.
        """
        self.engine.check(req.prompt_len, req.max_tokens)  # pure: safe off the worker thread
        stream: asyncio.Queue = asyncio.Queue()
        self._streams[req.request_id] = (asyncio.get_running_loop(), stream)
        self._meta[req.request_id] = (req.arrival_s, req.ttft_slo_s)
        self._inbox.put(("submit", req))
        return stream

    def abort(self, request_id: str) -> None:
        """The client went away: drop the request (no further events)."""
        self._streams.pop(request_id, None)
        self._meta.pop(request_id, None)
        self._inbox.put(("abort", request_id))

    def _loop(self) -> None:
        next_control = self._clock() + self._period
        while True:
            self._take(block=self.engine.idle and not self._stop.is_set())
            if self._stop.is_set() and (not self._drain or self.engine.idle):
                break
            if not self.engine.idle:
                try:
                    events = self.engine.step(self._clock())
                except Exception:  # a model failure must not kill the server: fail the batch
                    log.exception("engine step failed; aborting the running requests")
                    events = self._abort_all()
                self.steps += 1
                self._deliver(events)
            if self._law is not None and self._clock() >= next_control:
                next_control = self._clock() + self._period
                tau = self._law(self._finished)
                self._finished = []
                if tau is not None:
                    self.engine.set_brownout(tau)
        for event in self._abort_all():
            self._deliver([event])

    def _take(self, block: bool) -> None:
        try:
            item = self._inbox.get(timeout=0.05) if block else self._inbox.get_nowait()
        except queue.Empty:
            return
        while True:
            kind, value = item
            if kind == "submit":
                req: LMRequest = value  # type: ignore[assignment]
                try:
                    self.engine.submit(req)
                except EngineError as err:  # cannot happen after check(); keep the loop alive
                    log.warning("request %s rejected: %s", req.request_id, err)
            elif kind == "abort":
                self.engine.abort(str(value))
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                return

    def _abort_all(self) -> list[TokenEvent]:
        ids = [r.request_id for r in self.engine.waiting] + [
            r.req.request_id for r in self.engine.running
        ]
        for rid in ids:
            self.engine.abort(rid)
        return [TokenEvent(rid, None, -1, "abort") for rid in ids]

    def _deliver(self, events: list[TokenEvent]) -> None:
        now = self._clock()
        for ev in events:
            if ev.index == 0:
                self._first[ev.request_id] = now
            target = self._streams.get(ev.request_id)
            if ev.finish is not None:
                self._streams.pop(ev.request_id, None)
                self._record(ev, now)
            if target is not None:
                loop, stream = target
                loop.call_soon_threadsafe(stream.put_nowait, ev)

    def _record(self, ev: TokenEvent, now: float) -> None:
        first = self._first.pop(ev.request_id, None)
        meta = self._meta.pop(ev.request_id, None)
        if first is None or meta is None or ev.finish == "abort":
            return
        arrival, ttft_slo = meta
        tpot = (now - first) / ev.index if ev.index > 0 else 0.0
        self._finished.append(Finished(first - arrival, tpot, ttft_slo, self.tpot_slo_s))
