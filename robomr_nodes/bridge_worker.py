"""Running the edge bridge's jobs off the executor thread, and its counters.

``JobRunner`` runs a job (offload, or fall back to local inference) either inline in the
callback ("sync") or on one worker thread ("async"). In async mode a finished job's result goes
into a thread-safe queue and the node's guard condition is triggered, so the result is published
by the executor thread (both backends run guard callbacks there). Jobs run one at a time, in
arrival order, so outputs keep their input order; when more than ``max_pending`` frames wait,
the oldest waiting one is dropped (KEEP_LAST, like a sensor-data subscription of that depth) and
counted.

``BridgeStats`` keeps what ``/diagnostics`` reports: offloaded and fallback counts (by reason),
the RTT of recent offloaded requests, dropped frames.
"""

from __future__ import annotations

import queue
import threading
from collections import Counter, deque
from collections.abc import Callable
from typing import Any

import numpy as np


class BridgeStats:
    """Counters of one bridge task ("detect" or "render"), safe to update from the worker."""

    def __init__(self, window: int = 200) -> None:
        self._lock = threading.Lock()
        self.offloaded = 0
        self.fallbacks: Counter[str] = Counter()
        self.dropped = 0
        self.rtt_ms: deque[float] = deque(maxlen=window)
        self.last_error = ""

    def offload(self, rtt_s: float) -> None:
        with self._lock:
            self.offloaded += 1
            self.rtt_ms.append(1e3 * rtt_s)

    def fallback(self, reason: str, error: str = "") -> None:
        with self._lock:
            self.fallbacks[reason] += 1
            self.last_error = error or self.last_error

    def drop(self) -> None:
        with self._lock:
            self.dropped += 1

    def values(self) -> dict[str, Any]:
        """Diagnostic key/values (totals since start; RTT over the recent window)."""
        with self._lock:
            total = self.offloaded + sum(self.fallbacks.values())
            rtt = np.asarray(self.rtt_ms)
            out: dict[str, Any] = {
                "frames": total,
                "offloaded": self.offloaded,
                "fallbacks": sum(self.fallbacks.values()),
                "offload_ratio": self.offloaded / total if total else 0.0,
                "dropped": self.dropped,
                "rtt_ms_p50": float(np.percentile(rtt, 50)) if len(rtt) else 0.0,
                "rtt_ms_p90": float(np.percentile(rtt, 90)) if len(rtt) else 0.0,
            }
            out.update({f"fallbacks_{k}": v for k, v in sorted(self.fallbacks.items())})
            if self.last_error:
                out["last_error"] = self.last_error
            return out


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


class JobRunner:
    """Runs ``job()`` callables inline or on a worker thread (see the module docstring).

    Args:
        asynchronous: run on the worker thread; results come back through ``trigger``.
        trigger: the node's guard-condition trigger (async mode).
        max_pending: frames allowed to wait for the worker, >= 1.
    """

    def __init__(
        self,
        asynchronous: bool,
        trigger: Callable[[], None] | None = None,
        max_pending: int = 4,
    ) -> None:
        self.asynchronous = asynchronous
        self._trigger = trigger
        self._max_pending = max_pending
        self._pending: deque[tuple[Callable[[], Any], Callable[[Any], None], Any]] = deque()
        self._done: queue.SimpleQueue = queue.SimpleQueue()
        self._cv = threading.Condition()
        self._closing = False
        self._busy = False
        self._thread: threading.Thread | None = None
        if asynchronous:
            if trigger is None:
                raise ValueError("async mode needs a guard-condition trigger")
            self._thread = threading.Thread(target=self._loop, name="edge_bridge", daemon=True)
            self._thread.start()

    def submit(
        self,
        job: Callable[[], Any],
        deliver: Callable[[Any], None],
        on_drop: Callable[[], None] | None = None,
    ) -> None:
        """Runs ``job`` and passes its result to ``deliver`` on the executor thread;
        ``on_drop()`` is called instead if the frame is dropped while waiting."""
        if not self.asynchronous:
            deliver(job())
            return
        with self._cv:
            self._pending.append((job, deliver, on_drop))
            while len(self._pending) > self._max_pending:
                _, _, dropped = self._pending.popleft()
                if dropped is not None:
                    dropped()
            self._cv.notify()

    def deliver_ready(self) -> None:
        """Publishes finished results (the guard condition's callback; executor thread).

        Raises:
            Exception: the first error a job raised (after delivering every other result), so
                the executor logs it as a callback error like any other.
        """
        first: BaseException | None = None
        while not self._done.empty():
            deliver, result = self._done.get_nowait()
            if isinstance(result, _Failed):
                first = first or result.error
            else:
                deliver(result)
        if first is not None:
            raise first

    def _loop(self) -> None:
        while True:
            with self._cv:
                while not self._pending and not self._closing:
                    self._cv.wait()
                if not self._pending:
                    return
                job, deliver, _ = self._pending.popleft()
                self._busy = True
            try:
                self._done.put((deliver, job()))
            except Exception as err:  # reported on the executor thread by deliver_ready
                self._done.put((deliver, _Failed(err)))
            with self._cv:
                self._busy = False
                self._cv.notify_all()
            self._trigger()  # type: ignore[misc]  (set whenever the worker runs)

    def idle(self) -> bool:
        """No job waiting or running (results may still wait for ``deliver_ready``)."""
        with self._cv:
            return not self._pending and not self._busy

    def close(self, timeout_s: float = 10.0) -> None:
        """Finishes waiting jobs, then stops the worker."""
        with self._cv:
            self._closing = True
            self._cv.notify_all()
        if self._thread is not None:
            self._thread.join(timeout_s)
