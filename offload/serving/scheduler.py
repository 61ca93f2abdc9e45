"""One model's scheduler: admission, batching policy, brownout dial and service-time models.

Time-agnostic and single-threaded: every method takes ``now_s`` from the caller's clock, so the
asyncio server (``batcher``, monotonic wall clock) and the discrete-event simulator
(``simulate``, virtual clock) drive the same code. The caller:

1. ``admit`` for each request: a :class:`QueuedRequest` (queued) or a :class:`Rejection` (429:
   queue full, deadline cannot be met; 413: larger than the model accepts);
2. ``next_dispatch`` when the model is idle, ``started`` / ``finished`` around each batch it
   runs, ``expire`` for requests the policy gave up on;
3. ``control`` every ``control_period_s`` (the brownout period): applies the control law.

Brownout laws (``SchedulerConfig.brownout_law``):

- ``"paper"``: BrownoutServe's dial (``offload.serving.brownout``): every period, tau from the
  P90 latency; a share 1 - tau of arrivals takes the cheap path. Optionally with rescue.
- ``"slack"`` (ours, not in the paper): no dial. Each arrival takes the full path if its predicted
  finish (work queued ahead of it by deadline plus its own full-path time) is within
  ``brownout_headroom`` x its latency budget, else the cheap path if that meets the deadline,
  else 429. It reacts to a burst at its first request instead of a control period later, and
  degrades only requests the full path could not serve in time (none while the load is light).
  The headroom reserves the rest of the budget for cheap-path work: at 1 it is rescue alone, and
  a sustained burst fills the queue with full-path work up to the deadline, so cheap requests
  no longer fit either. tau is then reported (not set) as the share of the period's admissions
  that took the full path.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from offload.serving.brownout import (
    BrownoutConfig,
    BrownoutDecision,
    BrownoutObservation,
    BrownoutState,
    PathGate,
    decide,
)
from offload.serving.model import PATHS, MemoryModel, Path
from offload.serving.policy import BatchPolicy, Dispatch, PolicyContext, QueuedRequest
from offload.serving.service_time import ServiceTimeModel

BROWNOUT_LAWS = ("paper", "slack")


class SchedulerError(ValueError):
    """A scheduler setting is invalid."""


@dataclass(frozen=True)
class ModelSpec:
    """What scheduling needs to know about a model."""

    name: str
    max_cost: int
    has_brownout: bool
    memory: dict[Path, MemoryModel]


@dataclass(frozen=True)
class SchedulerConfig:
    """Admission and control settings of one model."""

    slo_s: float = 0.5  # latency budget of a request that brings no deadline (s), > 0
    max_budget_s: float = 60.0  # largest latency budget a request may ask for (s), >= slo_s
    max_queued: int = 256  # queued requests beyond which arrivals get 429, >= 1
    memory_budget_bytes: float = 2.0 * 2**30  # activation memory for one batch, > 0
    brownout: BrownoutConfig | None = None  # None: brownout off (tau stays 1)
    # With brownout on: a request refused on the full path because it cannot meet its deadline
    # is offered the brownout path before it is answered 429 (an addition to BrownoutServe's
    # dial, off by default: the dial alone reacts a control period late to a burst)
    brownout_rescue: bool = False
    # "paper": the dial above sets the share of cheap requests; "slack": per request from its
    # predicted finish (module docstring), with rescue implied; needs ``brownout`` (its period
    # is then only the reporting period of tau)
    brownout_law: str = "paper"
    # the share of a request's budget the full path may use at admission (predicted finish);
    # beyond it the cheap path is tried; in (0, 1] (1: only what the deadline forbids)
    brownout_headroom: float = 1.0

    def __post_init__(self) -> None:
        if not self.slo_s > 0 or not self.max_budget_s >= self.slo_s:
            raise SchedulerError(f"need 0 < slo_s <= max_budget_s, got {self.slo_s}")
        if self.brownout_law not in BROWNOUT_LAWS:
            raise SchedulerError(f"brownout_law={self.brownout_law!r}: use one of {BROWNOUT_LAWS}")
        if not 0 < self.brownout_headroom <= 1:
            raise SchedulerError(f"brownout_headroom={self.brownout_headroom} not in (0, 1]")
        if self.max_queued < 1 or not self.memory_budget_bytes > 0:
            raise SchedulerError("max_queued must be >= 1 and memory_budget_bytes > 0")


@dataclass(frozen=True)
class Rejection:
    """An arrival answered without queueing."""

    reason: str  # "queue_full", "deadline", "too_large"
    retry_after_s: float  # when the queue is predicted to have drained (s)
    message: str


@dataclass
class SchedulerStats:
    admitted: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    expired: int = 0
    batches: int = 0
    completed: int = 0
    rescued: int = 0  # admitted on the brownout path after the full path was refused


class ModelScheduler:
    """See the module docstring. One per model per replica."""

    def __init__(
        self,
        spec: ModelSpec,
        policy: BatchPolicy,
        config: SchedulerConfig,
        service_models: dict[Path, ServiceTimeModel],
    ) -> None:
        if config.brownout is not None and not spec.has_brownout:
            raise SchedulerError(f"model {spec.name} has no brownout path")
        self.spec, self.policy, self.config = spec, policy, config
        self.service = service_models
        self.brownout = BrownoutState()
        self.gate = PathGate()
        self.stats = SchedulerStats()
        self._ids = itertools.count()
        self._window: list[float] = []
        self._busy_until_s = 0.0
        self._admitted_paths = {"full": 0, "brownout": 0}  # this control period (slack law)
        self.ctx = PolicyContext(
            predict_s=self.predict_s,
            batch_bytes=lambda p, costs: spec.memory[p].batch_bytes(costs),
            item_bytes=lambda p, cost: spec.memory[p].item_bytes(cost),
            memory_budget_bytes=config.memory_budget_bytes,
        )

    @property
    def tau(self) -> float:
        return self.brownout.tau

    def predict_s(self, path: Path, units: float, items: int) -> float:
        return self.service[path].predict(units, items)

    def admit(
        self,
        cost_of: Any,  # Callable[[Path], int]: the request's cost on a path
        now_s: float,
        budget_s: float | None = None,
        payload: Any = None,
    ) -> QueuedRequest | Rejection:
        """Queues a request with latency budget ``budget_s`` (None: the SLO), or rejects it."""
        budget = self.config.slo_s if budget_s is None else min(budget_s, self.config.max_budget_s)
        dial = self.config.brownout is not None and self.config.brownout_law == "paper"
        path: Path = self.gate.path(self.tau) if dial else "full"
        cost = int(cost_of(path))
        req = QueuedRequest(next(self._ids), cost, path, now_s, now_s + budget, payload)
        if cost > self.spec.max_cost:
            msg = f"request of {cost} units exceeds the model's limit {self.spec.max_cost}"
            return self._reject("too_large", now_s, msg)
        if len(self.policy) >= self.config.max_queued:
            msg = f"{len(self.policy)} requests queued (limit {self.config.max_queued})"
            return self._reject("queue_full", now_s, msg)
        self.ctx.busy_until_s = self._busy_until_s
        if not (self.policy.admit(req, now_s, self.ctx) and self._within_headroom(req, now_s)):
            rescued = self._rescue(req, cost_of, now_s)
            if rescued is None:
                msg = f"cannot finish within {budget * 1e3:.0f} ms"
                return self._reject("deadline", now_s, msg)
            req = rescued
        self.policy.add(req, now_s)
        self.stats.admitted += 1
        self._admitted_paths[req.path] += 1
        return req

    @property
    def _rescuing(self) -> bool:
        c = self.config
        return c.brownout is not None and (c.brownout_rescue or c.brownout_law == "slack")

    def _within_headroom(self, req: QueuedRequest, now_s: float) -> bool:
        """Whether the full path's predicted finish leaves the headroom (always, when no
        cheaper path could be offered instead)."""
        h = self.config.brownout_headroom
        if h >= 1.0 or req.path != "full" or not self._rescuing:
            return True
        self.ctx.busy_until_s = self._busy_until_s
        finish = self.policy.predicted_finish_s(req, now_s, self.ctx)
        return finish <= req.arrival_s + h * (req.deadline_s - req.arrival_s)

    def _rescue(self, req: QueuedRequest, cost_of: Any, now_s: float) -> QueuedRequest | None:
        """``req`` on the brownout path if rescue is on and that path meets its deadline."""
        if not (self._rescuing and req.path == "full"):
            return None
        cost = int(cost_of("brownout"))
        cheap = QueuedRequest(req.id, cost, "brownout", req.arrival_s, req.deadline_s, req.payload)
        if cost > self.spec.max_cost or not self.policy.admit(cheap, now_s, self.ctx):
            return None
        self.stats.rescued += 1
        return cheap

    def _reject(self, reason: str, now_s: float, message: str) -> Rejection:
        self.stats.rejected[reason] = self.stats.rejected.get(reason, 0) + 1
        if reason != "too_large":
            self._window.append(float("inf"))
        return Rejection(reason, self.drain_s(now_s), message)

    def drain_s(self, now_s: float) -> float:
        """Predicted time until the queue and the running batch are done (s)."""
        queued = sum(self.predict_s(r.path, r.cost, 1) for r in self.policy.queued())
        return max(self._busy_until_s - now_s, 0.0) + queued

    def next_dispatch(self, now_s: float) -> Dispatch:
        self.ctx.busy_until_s = self._busy_until_s
        d = self.policy.next_dispatch(now_s, self.ctx)
        self.stats.expired += len(d.expired)
        self._window += [float("inf")] * len(d.expired)
        return d

    def started(self, batch: tuple[QueuedRequest, ...], now_s: float) -> None:
        units = sum(r.cost for r in batch)
        self._busy_until_s = now_s + self.predict_s(batch[0].path, units, len(batch))
        self.stats.batches += 1

    def finished(self, batch: tuple[QueuedRequest, ...], now_s: float, service_s: float) -> None:
        """Records a completed batch: service-time fit, latencies for the brownout law."""
        self.service[batch[0].path].observe(sum(r.cost for r in batch), len(batch), service_s)
        self._busy_until_s = now_s
        self.stats.completed += len(batch)
        self._window += [now_s - r.arrival_s for r in batch]

    def aborted(self, batch: tuple[QueuedRequest, ...], now_s: float) -> None:
        """A batch whose run failed: counted as violations, not as service-time samples."""
        self._busy_until_s = now_s
        self._window += [float("inf")] * len(batch)

    @property
    def control_period_s(self) -> float | None:
        return self.config.brownout.period_s if self.config.brownout else None

    def control(self, now_s: float) -> BrownoutDecision | None:
        """One brownout period: the law applied to the latencies seen since the last call."""
        if self.config.brownout is None:
            return None
        obs = BrownoutObservation(tuple(self._window))
        self._window = []
        if self.config.brownout_law == "slack":
            return self._report_tau()
        decision, self.brownout = decide(obs, self.brownout, self.config.brownout)
        return decision

    def _report_tau(self) -> BrownoutDecision:
        """Slack law: tau := the share of this period's admissions on the full path."""
        full, cheap = self._admitted_paths["full"], self._admitted_paths["brownout"]
        self._admitted_paths = {"full": 0, "brownout": 0}
        tau = full / (full + cheap) if full + cheap else 1.0
        action = (
            "hold" if tau == self.brownout.tau else "decrease" if tau < self.tau else "increase"
        )
        self.brownout = BrownoutState(tau)
        return BrownoutDecision(tau, action, None)


def default_service_models(
    priors: dict[Path, Any] | None = None, unit_scale: float = 1.0
) -> dict[Path, ServiceTimeModel]:
    """One online service-time model per path (optionally with priors)."""
    priors = priors or {}
    return {p: ServiceTimeModel(priors.get(p), unit_scale=unit_scale) for p in PATHS}
