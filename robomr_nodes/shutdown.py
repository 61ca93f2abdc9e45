"""SIGINT, SIGTERM and SIGHUP turned into one orderly stop, so a stopped run keeps its bag.

SIGTERM is what ``timeout``, systemd, ``docker stop`` and Kubernetes send; SIGHUP comes when the
terminal closes. All three are handled like Ctrl-C (SIGINT), as rclpy does for SIGINT and
SIGTERM (``rclpy.signals.SignalHandlerOptions.ALL``, the default: one handler that shuts the
context down so ``spin`` returns):

- while a graph spins (:func:`stop_gracefully`), the first signal asks the executor to stop
  after the current callback; the caller closes its bag and then raises :class:`Interrupted`;
- anywhere else, or on a second signal, :class:`Interrupted` (a ``KeyboardInterrupt``) is
  raised at once, so ``finally`` blocks close what is open;
- inside :func:`critical` (a bag write in progress) the signal waits until the write is
  complete, so an interrupted write never leaves half a record.

SIGKILL cannot be caught; bags survive it because their metadata and every complete chunk
are on disk while recording (see ``robomr_nodes/bagio``).
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType

HANDLED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Interrupted(KeyboardInterrupt):
    """The process got SIGINT, SIGTERM or SIGHUP; ``detail`` says what was kept."""

    def __init__(self, signum: int, detail: str = "") -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.detail = detail

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        """128 + signal number, as a shell reports a process ended by that signal."""
        return 128 + self.signum


@dataclass
class _State:
    received: list[int] = field(default_factory=list)
    critical_depth: int = 0
    pending: int | None = None
    stop_hooks: list[Callable[[], None]] = field(default_factory=list)


_state = _State()


def _deliver(signum: int) -> None:
    if _state.stop_hooks and len(_state.received) == 1:
        for hook in list(_state.stop_hooks):
            hook()
        return
    raise Interrupted(signum)


def _handler(signum: int, _frame: FrameType | None) -> None:
    _state.received.append(signum)
    if _state.critical_depth:
        _state.pending = signum
        return
    _deliver(signum)


@contextmanager
def handling_signals() -> Iterator[None]:
    """Installs the handler for SIGINT, SIGTERM and SIGHUP; restores the old ones after."""
    previous = {s: signal.getsignal(s) for s in HANDLED}
    _state.received.clear()
    _state.pending = None
    for s in HANDLED:
        signal.signal(s, _handler)
    try:
        yield
    finally:
        for s, old in previous.items():
            signal.signal(s, old)


@contextmanager
def critical() -> Iterator[None]:
    """A section a signal must not cut (a file write): a signal waits until it is left."""
    _state.critical_depth += 1
    try:
        yield
    finally:
        _state.critical_depth -= 1
        if not _state.critical_depth and _state.pending is not None:
            signum, _state.pending = _state.pending, None
            _deliver(signum)


@contextmanager
def stop_gracefully(request_stop: Callable[[], None]) -> Iterator[None]:
    """While inside, the first signal calls ``request_stop()`` instead of raising."""
    _state.stop_hooks.append(request_stop)
    try:
        yield
    finally:
        _state.stop_hooks.remove(request_stop)


def signal_received() -> int | None:
    """The first signal received since :func:`handling_signals` began, or None."""
    return _state.received[0] if _state.received else None


def raise_if_received(detail: str = "") -> None:
    """Raises :class:`Interrupted` if a signal stopped the run (after a graceful stop)."""
    signum = signal_received()
    if signum is not None:
        raise Interrupted(signum, detail)
