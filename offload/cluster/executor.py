"""The one executor: applies mitigation actions and logs every change.

Strategies only decide; this is the single place that writes mitigation knobs (koordlet's
``resourceexecutor``). What an action touches depends on where the cluster runs, so the executor
talks to a :class:`Targets` object:

| action | local backend | Kubernetes backend |
| --- | --- | --- |
| ``SetBeLimit`` | BE group's cfs quota / ``cpu.max`` | node's besteffort cgroup (host mount) |
| ``SetBeWeight`` | BE group's ``cpu.shares`` / ``cpu.weight`` | the same (kubelet gives it 2) |
| ``ThrottleCoRunner`` | its own group's cfs quota / ``cpu.max`` | the pod's cgroup (host mount) |
| ``PauseCoRunner`` | freezer of its group (SIGSTOP without) | freezer of the pod's group |
| ``ResumeCoRunner`` | thaw | thaw |
| ``EvictCoRunner`` | stop the co-runner | Eviction API (PodDisruptionBudgets apply) |
| ``SetWeights`` | the router's weights | pod annotation ``robomr.io/weight`` |
| ``PlaceReplica`` | start a replica on the cpus | (the scheduler's job; logged) |

Each change is logged (Python logging, and one JSON line per change in ``log_path``) with the
value before and after and the strategy's reason. An action that fails (a vanished co-runner, a
controller the machine lacks) is logged with its error and the rest still run: the executor
never raises.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections import deque
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from offload.cluster.mitigation.interface import (
    Action,
    EvictCoRunner,
    PauseCoRunner,
    PlaceReplica,
    ResumeCoRunner,
    SetBeLimit,
    SetBeWeight,
    SetWeights,
    ThrottleCoRunner,
)

log = logging.getLogger(__name__)


class Targets(Protocol):
    """What the executor acts on (one implementation per backend)."""

    def be_limit(self) -> float | None: ...

    def set_be_limit(self, cores: float | None) -> None: ...

    def be_weight(self) -> int: ...

    def set_be_weight(self, shares: int) -> None: ...

    def corunner_limit(self, name: str) -> float | None: ...

    def throttle(self, name: str, cores: float | None) -> None: ...

    def pause(self, name: str, paused: bool) -> None: ...

    def evict(self, name: str) -> None: ...

    def weights(self) -> dict[str, float]: ...

    def set_weights(self, weights: dict[str, float]) -> None: ...

    def place(self, cpus: tuple[int, ...]) -> None: ...


@dataclass(frozen=True)
class Change:
    """One applied (or failed) action, as logged."""

    t_unix_s: float
    action: str
    target: str
    before: Any
    after: Any
    reason: str
    ok: bool
    error: str = ""


class Executor:
    """Applies actions to ``targets`` (see the module docstring).

    Args:
        targets: the backend's knobs.
        log_path: a JSON-lines file that gets one line per change (appended), or None.
        keep: recent changes kept in memory (``recent``) for status pages.
    """

    def __init__(self, targets: Targets, log_path: Path | None = None, keep: int = 200) -> None:
        self.targets, self.log_path = targets, log_path
        self.recent: deque[Change] = deque(maxlen=keep)
        self.counts: dict[str, int] = {}

    def apply(self, actions: list[Action]) -> list[Change]:
        """Applies each action in order; returns what happened to each."""
        return [self._apply(a) for a in actions]

    def _apply(self, action: Action) -> Change:
        kind = type(action).__name__
        target, before, after = self._describe(action)
        try:
            self._do(action)
            change = Change(time.time(), kind, target, before, after, action.reason, True)
        except Exception as err:  # one failed knob must not stop the others
            change = Change(
                time.time(),
                kind,
                target,
                before,
                after,
                action.reason,
                False,
                f"{type(err).__name__}: {err}",
            )
        self._record(change)
        return change

    def _describe(self, action: Action) -> tuple[str, Any, Any]:
        with contextlib.suppress(Exception):
            if isinstance(action, SetBeLimit):
                return "be", self.targets.be_limit(), action.cores
            if isinstance(action, SetBeWeight):
                return "be", self.targets.be_weight(), action.shares
            if isinstance(action, SetWeights):
                return "router", self.targets.weights(), action.weights
            if isinstance(action, ThrottleCoRunner):
                return action.name, self.targets.corunner_limit(action.name), action.cores
        if isinstance(action, SetBeLimit):
            return "be", None, action.cores
        if isinstance(action, SetBeWeight):
            return "be", None, action.shares
        if isinstance(action, SetWeights):
            return "router", None, action.weights
        if isinstance(action, ThrottleCoRunner):
            return action.name, None, action.cores
        if isinstance(action, PauseCoRunner):
            return action.name, "running", "paused"
        if isinstance(action, ResumeCoRunner):
            return action.name, "paused", "running"
        if isinstance(action, EvictCoRunner):
            return action.name, "running", "evicted"
        if isinstance(action, PlaceReplica):
            return "replica", None, list(action.cpus)
        return "?", None, None

    def _do(self, action: Action) -> None:
        if isinstance(action, SetBeLimit):
            self.targets.set_be_limit(action.cores)
        elif isinstance(action, SetBeWeight):
            self.targets.set_be_weight(action.shares)
        elif isinstance(action, ThrottleCoRunner):
            self.targets.throttle(action.name, action.cores)
        elif isinstance(action, PauseCoRunner):
            self.targets.pause(action.name, True)
        elif isinstance(action, ResumeCoRunner):
            self.targets.pause(action.name, False)
        elif isinstance(action, EvictCoRunner):
            self.targets.evict(action.name)
        elif isinstance(action, SetWeights):
            self.targets.set_weights(action.weights)
        elif isinstance(action, PlaceReplica):
            self.targets.place(action.cpus)
        else:
            raise TypeError(f"unknown action {type(action).__name__}")

    def _record(self, change: Change) -> None:
        self.recent.append(change)
        key = change.action if change.ok else f"{change.action}_failed"
        self.counts[key] = self.counts.get(key, 0) + 1
        level = logging.INFO if change.ok else logging.WARNING
        log.log(
            level,
            "%s %s: %s -> %s (%s)%s",
            change.action,
            change.target,
            change.before,
            change.after,
            change.reason,
            f" FAILED: {change.error}" if change.error else "",
        )
        if self.log_path is not None:
            with contextlib.suppress(OSError), open(self.log_path, "a") as f:
                f.write(json.dumps(asdict(change), default=str) + "\n")
