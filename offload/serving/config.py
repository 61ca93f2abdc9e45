"""Settings of a service replica and the factory of batching policies."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from offload.serving.brownout import BrownoutConfig
from offload.serving.bucket import BucketConfig, BucketPolicy
from offload.serving.model import MODEL_FACTORIES
from offload.serving.policy import (
    BatchPolicy,
    FifoGreedy,
    NoBatching,
    StaticBatching,
    static_max_batch,
)
from offload.serving.scheduler import BROWNOUT_LAWS, ModelSpec, SchedulerConfig
from offload.serving.wire import WireLimits

POLICIES: tuple[str, ...] = ("bucket", "static", "fifo", "none")
# Latency objective per model when none is configured (s): a detection must be back within
# three lidar periods at 10 Hz, a render within two camera periods at 5 Hz.
DEFAULT_SLO_S: dict[str, float] = {"detector": 0.3, "gs_render": 0.4, "lm": 1.0}  # lm: TTFT


class ServeConfigError(ValueError):
    """A service setting is invalid (the message names it)."""


@dataclass(frozen=True)
class ServeConfig:
    """One replica: which models, how they are batched and protected.

    Attributes:
        models: registered model names (``offload.serving.model.MODEL_FACTORIES``).
        policy: batching policy, one of POLICIES.
        slo_s: latency objective per model (s); missing models use DEFAULT_SLO_S.
        brownout: whether the brownout controller runs (models with a cheaper path).
        brownout_period_s: control period of the brownout law (s).
        brownout_decrease_factor: multiplicative step of tau on a violated period, in (0, 1)
            (the paper's 0.8; ``robomr bench serving`` sweeps it with the period).
        brownout_rescue: offer the brownout path to a request the full path would refuse for
            its deadline, before answering 429 (not in the paper; off by default).
        brownout_law: "slack" (the default; ours: per request, the full path while its
            predicted finish is within ``brownout_headroom`` of its budget, else the cheap path,
            else 429) or "paper" (BrownoutServe's periodic dial tau; the reference). See
            ``offload.serving.scheduler``.
        brownout_headroom: with the slack law (or rescue), the share of a request's budget the
            full path may use, in (0, 1].
        memory_budget_bytes: activation memory one batch may use.
        max_queued: queued requests per model before 429.
        static_max_batch: static policy batch size (None: from the budget and max request).
        static_max_delay_s: static policy queue delay.
        static_queue_timeout_s: static policy queue-policy timeout (None: drop a request only
            once its deadline has passed).
        bucket_bounds: initial bucket edges per model (None: one bucket, split adaptively).
        limits: body size limits.
        model_options: keyword options per model for its factory.
        graceful_timeout_s: longest wait for in-flight requests at shutdown.
    """

    models: tuple[str, ...] = ("detector",)
    policy: str = "bucket"
    slo_s: dict[str, float] = field(default_factory=dict)
    brownout: bool = True
    brownout_period_s: float = 5.0
    brownout_decrease_factor: float = 0.8
    brownout_rescue: bool = False
    brownout_law: str = "slack"
    brownout_headroom: float = 0.8
    memory_budget_bytes: float = 512.0 * 2**20
    max_queued: int = 64
    static_max_batch: int | None = None
    static_max_delay_s: float = 0.01
    static_queue_timeout_s: float | None = None
    bucket_bounds: dict[str, tuple[int, ...]] = field(default_factory=dict)
    limits: WireLimits = field(default_factory=WireLimits)
    model_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    graceful_timeout_s: float = 30.0

    def __post_init__(self) -> None:
        unknown = [m for m in self.models if m not in MODEL_FACTORIES]
        if not self.models or unknown:
            raise ServeConfigError(
                f"models={list(self.models)}: unknown {unknown}; known: {sorted(MODEL_FACTORIES)}"
            )
        if len(set(self.models)) != len(self.models):
            raise ServeConfigError(f"models={list(self.models)} lists a model twice")
        if self.policy not in POLICIES:
            raise ServeConfigError(f"policy={self.policy!r} must be one of {POLICIES}")
        for name, value in self.slo_s.items():
            if not 0 < value <= 60:
                raise ServeConfigError(f"slo of {name}: {value} s must be in (0, 60]")
        if not 0 < self.brownout_period_s <= 600:
            raise ServeConfigError(f"brownout_period_s={self.brownout_period_s} not in (0, 600]")
        if not 0 < self.brownout_decrease_factor < 1:
            raise ServeConfigError(
                f"brownout_decrease_factor={self.brownout_decrease_factor} not in (0, 1)"
            )
        if self.brownout_law not in BROWNOUT_LAWS:
            raise ServeConfigError(
                f"brownout_law={self.brownout_law!r} must be one of {BROWNOUT_LAWS}"
            )
        if not 0 < self.brownout_headroom <= 1:
            raise ServeConfigError(f"brownout_headroom={self.brownout_headroom} not in (0, 1]")
        if not self.memory_budget_bytes > 0 or self.max_queued < 1:
            raise ServeConfigError("memory_budget_bytes must be > 0 and max_queued >= 1")
        if self.static_max_batch is not None and self.static_max_batch < 1:
            raise ServeConfigError(f"static_max_batch={self.static_max_batch} must be >= 1")
        timeout = self.static_queue_timeout_s
        if timeout is not None and not 0 < timeout <= 60:
            raise ServeConfigError(f"static_queue_timeout_s={timeout} not in (0, 60]")
        if not 0 <= self.static_max_delay_s <= 10:
            raise ServeConfigError(f"static_max_delay_s={self.static_max_delay_s} not in [0, 10]")
        if not 0 < self.graceful_timeout_s <= 3600:
            raise ServeConfigError(f"graceful_timeout_s={self.graceful_timeout_s} not in (0, 3600]")

    def slo_of(self, model: str) -> float:
        return self.slo_s.get(model, DEFAULT_SLO_S.get(model, 0.5))

    def scheduler_config(self, model: str, has_brownout: bool) -> SchedulerConfig:
        slo = self.slo_of(model)
        brownout = (
            BrownoutConfig(
                slo_s=slo,
                period_s=self.brownout_period_s,
                decrease_factor=self.brownout_decrease_factor,
            )
            if self.brownout and has_brownout
            else None
        )
        return SchedulerConfig(
            slo_s=slo,
            max_queued=self.max_queued,
            memory_budget_bytes=self.memory_budget_bytes,
            brownout=brownout,
            brownout_rescue=self.brownout_rescue,
            brownout_law=self.brownout_law,
            brownout_headroom=self.brownout_headroom,
        )


def make_policy(
    name: str,
    spec: ModelSpec,
    memory_budget_bytes: float,
    *,
    bounds: tuple[int, ...] | None = None,
    static_batch: int | None = None,
    static_delay_s: float = 0.01,
    static_timeout_s: float | None = None,
) -> BatchPolicy:
    """A fresh policy for one model. The static batch size defaults to the largest batch of
    worst-case requests (``spec.max_cost``) that fits ``memory_budget_bytes``.

    Raises:
        ServeConfigError: unknown policy name.
    """
    if name == "bucket":
        return BucketPolicy(BucketConfig(bounds=bounds or (0,), max_cost=spec.max_cost))
    if name == "static":
        size = static_batch or static_max_batch(
            spec.memory["full"], memory_budget_bytes, spec.max_cost
        )
        return StaticBatching(
            max_batch=size, max_delay_s=static_delay_s, queue_timeout_s=static_timeout_s
        )
    if name == "fifo":
        return FifoGreedy()
    if name == "none":
        return NoBatching()
    raise ServeConfigError(f"policy={name!r} must be one of {POLICIES}")
