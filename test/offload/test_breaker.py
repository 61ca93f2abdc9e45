"""The per-replica circuit breaker: closed -> open -> half-open -> closed/open."""

from __future__ import annotations

import pytest

from offload.breaker import BreakerConfig, BreakerError, CircuitBreaker


def test_breaker_opens_after_consecutive_failures_and_probes_after_the_pause() -> None:
    b = CircuitBreaker(BreakerConfig(failure_threshold=3, open_s=2.0))
    for t in (0.0, 0.1):
        assert b.allow(t)
        b.failure(t)
    assert b.state == "closed"
    b.failure(0.2)
    assert b.state == "open" and not b.allow(1.0)
    assert b.allow(2.3) and b.state == "half_open"  # one probe
    assert not b.allow(2.31)  # no second probe while the first is out
    b.success()
    assert b.state == "closed" and b.allow(2.4)


def test_failed_probe_opens_the_breaker_again() -> None:
    b = CircuitBreaker(BreakerConfig(failure_threshold=1, open_s=1.0))
    b.failure(0.0)
    assert b.allow(1.5)
    b.failure(1.5)
    assert b.state == "open" and not b.allow(2.0) and b.allow(2.6)
    assert b.opens == 2


def test_success_resets_the_failure_count() -> None:
    b = CircuitBreaker(BreakerConfig(failure_threshold=2))
    b.failure(0.0)
    b.success()
    b.failure(0.1)
    assert b.state == "closed"


@pytest.mark.parametrize("kwargs", [{"failure_threshold": 0}, {"open_s": 0.0}])
def test_settings_are_checked(kwargs) -> None:
    with pytest.raises(BreakerError):
        BreakerConfig(**kwargs)
