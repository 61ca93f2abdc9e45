"""The discrete-event simulator drives the real schedulers: queueing behaves as queueing
theory says, and every request gets exactly one outcome."""

from __future__ import annotations

import numpy as np
import pytest

from offload.loadgen import poisson_arrivals
from offload.serving.bucket import BucketConfig, BucketPolicy
from offload.serving.model import MemoryModel
from offload.serving.policy import NoBatching, QueuedRequest, StaticBatching
from offload.serving.scheduler import (
    ModelScheduler,
    ModelSpec,
    SchedulerConfig,
    default_service_models,
)
from offload.serving.service_time import ServiceTimePrior
from offload.serving.simulate import SimRequest, simulate

SPEC = ModelSpec("m", 10_000, True, {p: MemoryModel(10.0, 1.0) for p in ("full", "brownout")})


def _scheduler(policy, slo_s=10.0, **config):
    priors = {p: ServiceTimePrior(per_item_s=0.1) for p in ("full", "brownout")}
    return ModelScheduler(
        SPEC, policy, SchedulerConfig(slo_s=slo_s, max_queued=10_000, **config),
        default_service_models(priors),
    )  # fmt: skip


def _requests(rate: float, duration: float, seed: int = 0) -> list[SimRequest]:
    arr = poisson_arrivals(rate, duration, seed)
    return [SimRequest(float(t), lambda _p: 100) for t in arr.times_s]


def test_mm1_mean_latency_matches_theory() -> None:
    # M/D/1 with service 0.1 s at 5 req/s (rho 0.5): mean sojourn = s + rho s / (2 (1 - rho))
    reqs = _requests(5.0, 2000.0)
    r = simulate(reqs, _scheduler(NoBatching()), lambda _p, costs: 0.1 * len(costs))
    assert set(r.status) == {"ok"}
    expected = 0.1 + 0.5 * 0.1 / (2 * 0.5)
    # 10k requests: the sample mean is within 5% of the theory (checked over seeds 0..4)
    assert r.latency_s.mean() == pytest.approx(expected, rel=0.05)


def test_every_request_gets_one_outcome_under_overload() -> None:
    reqs = _requests(30.0, 20.0)  # three times the capacity
    sched = _scheduler(BucketPolicy(BucketConfig(max_cost=10_000)), slo_s=0.5)
    r = simulate(reqs, sched, lambda _p, costs: 0.1 * len(costs), window_s=20.0)
    assert len(r.status) == len(reqs) and set(r.status) <= {"ok", "rejected", "expired"}
    ok = r.status == "ok"
    assert np.all(np.isfinite(r.latency_s[ok])) and np.all(np.isinf(r.latency_s[~ok]))
    # a deadline-aware server keeps what it answers within the SLO (service noise is zero)
    assert np.all(r.latency_s[ok] <= 0.5 + 1e-9)
    assert r.goodput_hz(0.5) == pytest.approx(ok.sum() / 20.0)
    assert r.goodput_hz(0.5) > 8.0  # close to the capacity of 10 req/s, not collapsed


def test_static_batching_waits_for_its_delay() -> None:
    reqs = [SimRequest(0.0, lambda _p: 10), SimRequest(5.0, lambda _p: 10)]
    policy = StaticBatching(max_batch=4, max_delay_s=0.25)
    r = simulate(reqs, _scheduler(policy), lambda _p, costs: 0.1)
    np.testing.assert_allclose(r.latency_s, [0.35, 0.35])
    assert r.batch_sizes == [1, 1] and r.peak_memory_bytes == 20.0


def test_brownout_lowers_tau_under_overload_and_records_it() -> None:
    from offload.serving.brownout import BrownoutConfig

    reqs = _requests(20.0, 30.0)
    sched = _scheduler(NoBatching(), slo_s=0.3, brownout=BrownoutConfig(slo_s=0.3, period_s=2.0))
    r = simulate(reqs, sched, lambda p, costs: (0.1 if p == "full" else 0.02) * len(costs))
    assert len(r.tau) > 1 and r.mean_tau() < 0.9 and "brownout" in set(r.path)


def test_a_run_without_requests_reports_empty_figures() -> None:
    r = simulate([], _scheduler(NoBatching()), lambda _p, costs: 0.1, window_s=10.0)
    assert r.goodput_hz(1.0) == 0.0 and r.attainment(1.0) == 0.0
    assert np.isnan(r.percentile_ms(90)) and r.batch_sizes == []


@pytest.mark.parametrize(
    ("rescue", "cheap_s", "outcome"),
    [
        (False, 0.1, "rejected"),  # the paper's dial only: tau is still 1, the request is refused
        (True, 0.1, "brownout"),  # rescue: the cheap path makes the deadline
        (True, 0.8, "rejected"),  # rescue, but the cheap path is late too
    ],
)
def test_rescue_offers_the_brownout_path_to_a_request_that_would_be_late(
    rescue: bool, cheap_s: float, outcome: str
) -> None:
    from offload.serving.brownout import BrownoutConfig

    priors = {p: ServiceTimePrior(per_item_s=t) for p, t in (("full", 1.0), ("brownout", cheap_s))}
    config = SchedulerConfig(
        slo_s=0.5, brownout=BrownoutConfig(slo_s=0.5), brownout_rescue=rescue, max_queued=10
    )
    sched = ModelScheduler(
        SPEC, BucketPolicy(BucketConfig(max_cost=10_000)), config, default_service_models(priors)
    )
    # a batch is running until 0.3 s: the request must wait behind it (and is no probe)
    sched.started((QueuedRequest(99, 100, "full", -0.7, 1.0),), now_s=-0.7)
    got = sched.admit(lambda p: 100 if p == "full" else 25, now_s=0.0)
    if outcome == "rejected":
        assert getattr(got, "reason", None) == "deadline"
    else:
        assert got.path == "brownout" and got.cost == 25 and sched.stats.rescued == 1


def _slack_scheduler(headroom: float, law: str = "slack", slo_s: float = 0.5) -> ModelScheduler:
    from offload.serving.brownout import BrownoutConfig

    priors = {p: ServiceTimePrior(per_item_s=t) for p, t in (("full", 0.1), ("brownout", 0.025))}
    config = SchedulerConfig(
        slo_s=slo_s,
        brownout=BrownoutConfig(slo_s=slo_s, period_s=1.0),
        brownout_law=law,
        brownout_headroom=headroom,
        max_queued=1000,
    )
    return ModelScheduler(
        SPEC, BucketPolicy(BucketConfig(max_cost=10_000)), config, default_service_models(priors)
    )


@pytest.mark.parametrize(
    ("queued", "headroom", "path"),
    [
        # a batch runs until 0.1 s, then `queued` full requests of 0.1 s: the newcomer's full
        # path finishes at 0.2 + 0.1 queued, its cheap path (0.025 s) at 0.125 + 0.1 queued
        (0, 0.7, "full"),  # 0.2 s <= 0.7 x 0.5 s
        (1, 0.7, "full"),  # 0.3 s <= 0.35 s
        (2, 0.7, "brownout"),  # 0.4 s > 0.35 s; cheap 0.325 s <= 0.5 s
        (2, 1.0, "full"),  # headroom 1: only the deadline counts
        (4, 1.0, None),  # full 0.6 s, cheap 0.525 s: both late -> 429
    ],
)
def test_slack_law_picks_the_path_from_the_predicted_finish(queued, headroom, path) -> None:
    sched = _slack_scheduler(headroom)
    sched.started((QueuedRequest(99, 100, "full", 0.0, 1.0),), now_s=0.0)
    for i in range(queued):
        sched.policy.add(QueuedRequest(100 + i, 100, "full", 0.0, 0.5), 0.0)
    got = sched.admit(lambda p: 100 if p == "full" else 25, now_s=0.0)
    if path is None:
        assert getattr(got, "reason", None) == "deadline"
    else:
        assert got.path == path and got.deadline_s == pytest.approx(0.5)


def test_slack_law_degrades_only_under_a_burst_and_reports_tau() -> None:
    # 5 req/s (half the full path's capacity) with a 2 s burst at 25 req/s in the middle
    calm = [SimRequest(0.2 * k, lambda p: 100 if p == "full" else 25) for k in range(50)]
    burst = [SimRequest(4.0 + 0.04 * k, lambda p: 100 if p == "full" else 25) for k in range(50)]
    reqs = sorted(calm + burst, key=lambda r: r.arrival_s)
    times = np.array([r.arrival_s for r in reqs])
    for law in ("slack", "paper"):
        r = simulate(
            reqs, _slack_scheduler(0.7, law), lambda p, c: (0.1 if p == "full" else 0.025) * len(c)
        )
        quiet = (times < 4.0) | (times >= 7.0)  # before the burst, and after it has drained
        if law == "slack":
            # no request outside the burst is degraded, and the burst is absorbed: the cheap
            # path's capacity (40/s) exceeds the burst's 30/s
            assert set(r.path[quiet]) == {"full"}
            assert np.mean(r.latency_s <= 0.5) >= 0.95
            assert min(v for _, v in r.tau) < 0.5 and r.tau[-1][1] == 1.0
        else:
            # the paper's dial with a 1 s period reacts a period late: more requests are late
            assert np.mean(r.latency_s <= 0.5) < 0.95


def test_unknown_brownout_law_or_headroom_is_refused() -> None:
    from offload.serving.scheduler import SchedulerError

    with pytest.raises(SchedulerError, match="brownout_law"):
        SchedulerConfig(brownout_law="pid")
    for bad in (0.0, 1.5):
        with pytest.raises(SchedulerError, match="brownout_headroom"):
            SchedulerConfig(brownout_headroom=bad)
