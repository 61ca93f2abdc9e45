"""A circuit breaker per service replica (the client's protection against a dead or sick one).

States (Nygard, "Release It!", as in Envoy outlier detection / resilience4j):
- closed: requests go through; ``failure_threshold`` consecutive failures open the breaker;
- open: requests are refused without trying, for ``open_s``; then
- half-open: one probe request goes through; success closes the breaker, failure opens it
  again (for ``open_s`` again).
Pure and clock-free: the caller passes ``now_s``; a refused request costs nothing, so a robot
whose service died falls back to local inference at once instead of waiting on timeouts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

State = Literal["closed", "open", "half_open"]
STATE_CODES: dict[State, int] = {"closed": 0, "half_open": 1, "open": 2}


class BreakerError(ValueError):
    """A breaker setting is out of bounds."""


@dataclass(frozen=True)
class BreakerConfig:
    failure_threshold: int = 3  # consecutive failures that open the breaker, >= 1
    open_s: float = 2.0  # time an open breaker refuses before a probe (s), > 0

    def __post_init__(self) -> None:
        if self.failure_threshold < 1 or not self.open_s > 0:
            raise BreakerError("failure_threshold must be >= 1 and open_s > 0")


class CircuitBreaker:
    """One replica's breaker (see the module docstring)."""

    def __init__(self, config: BreakerConfig | None = None) -> None:
        self.config = config or BreakerConfig()
        self.state: State = "closed"
        self.failures = 0
        self.opened_at_s = 0.0
        self.opens = 0  # times the breaker opened

    def allow(self, now_s: float) -> bool:
        """Whether a request may go to the replica now (an open breaker turns half-open after
        ``open_s`` and lets one probe through)."""
        if self.state == "open" and now_s - self.opened_at_s >= self.config.open_s:
            self.state = "half_open"
            return True
        return self.state == "closed"

    def success(self) -> None:
        self.state, self.failures = "closed", 0

    def failure(self, now_s: float) -> None:
        self.failures += 1
        if self.state == "half_open" or self.failures >= self.config.failure_threshold:
            if self.state != "open":
                self.opens += 1
            self.state, self.opened_at_s = "open", now_s
