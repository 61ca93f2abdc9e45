"""Baseline batching policies (none, static, FIFO greedy) behind the same interface."""

from __future__ import annotations

import pytest

from offload.serving.model import MemoryModel
from offload.serving.policy import (
    FifoGreedy,
    NoBatching,
    PolicyError,
    StaticBatching,
    static_max_batch,
)


def _drain(policy, ctx, now_s=0.0):
    batches = []
    while len(policy):
        d = policy.next_dispatch(now_s, ctx)
        if not d.batch:
            break
        batches.append([r.id for r in d.batch])
    return batches


def test_no_batching_serves_one_request_at_a_time_in_arrival_order(linear_ctx, make_req) -> None:
    policy = NoBatching()
    for i in range(4):
        policy.add(make_req(i, 10, 9.0), 0.0)
    assert _drain(policy, linear_ctx()) == [[0], [1], [2], [3]]


@pytest.mark.parametrize(
    ("max_batch", "max_delay_s", "queued", "now_s", "batch", "wake_at_s"),
    [
        (4, 0.01, 2, 0.0, [], 0.01),  # not full, oldest has not waited: wait until due
        (4, 0.01, 2, 0.01, [0, 1], None),  # due: run what is there
        (2, 0.01, 5, 0.0, [0, 1], None),  # full: run at once
        (4, 0.0, 1, 0.0, [0], None),  # zero delay: greedy
    ],
)
def test_static_batching_waits_for_a_full_batch_or_the_delay(
    linear_ctx, make_req, max_batch, max_delay_s, queued, now_s, batch, wake_at_s
) -> None:
    policy = StaticBatching(max_batch=max_batch, max_delay_s=max_delay_s)
    for i in range(queued):
        policy.add(make_req(i, 10, 9.0), 0.0)
    d = policy.next_dispatch(now_s, linear_ctx())
    assert [r.id for r in d.batch] == batch and d.wake_at_s == wake_at_s


def test_a_batch_holds_one_path_only(linear_ctx, make_req) -> None:
    policy = StaticBatching(max_batch=8, max_delay_s=0.0)
    for i, path in enumerate(["full", "full", "brownout", "full"]):
        policy.add(make_req(i, 10, 9.0, path=path), 0.0)
    assert _drain(policy, linear_ctx()) == [[0, 1], [2], [3]]


@pytest.mark.parametrize(
    ("costs", "budget", "batches"),
    [
        ([100, 100, 100], 1000.0, [[0, 1, 2]]),  # 3 x (10 + 100) = 330 fits
        ([400, 400, 400], 1000.0, [[0, 1], [2]]),  # 3 x 410 = 1230 does not
        ([2000, 10], 1000.0, [[0], [1]]),  # an oversized head runs alone
    ],
)
def test_fifo_greedy_takes_head_requests_while_the_batch_fits(
    linear_ctx, make_req, costs, budget, batches
) -> None:
    policy = FifoGreedy()
    for i, c in enumerate(costs):
        policy.add(make_req(i, c, 9.0), 0.0)
    assert _drain(policy, linear_ctx(budget=budget)) == batches


@pytest.mark.parametrize("policy", [NoBatching(), StaticBatching(4, 0.0), FifoGreedy()])
def test_baselines_drop_requests_whose_deadline_has_passed(linear_ctx, make_req, policy) -> None:
    policy.add(make_req(0, 10, deadline_s=0.5), 0.0)
    policy.add(make_req(1, 10, deadline_s=2.0), 0.0)
    d = policy.next_dispatch(1.0, linear_ctx())
    assert [r.id for r in d.expired] == [0] and [r.id for r in d.batch] == [1]


@pytest.mark.parametrize(
    ("fixed", "per_unit", "budget", "max_cost", "size"),
    [(10.0, 1.0, 1000.0, 90, 10), (10.0, 1.0, 1000.0, 5000, 1), (0.0, 0.0, 1.0, 5, 64)],
)
def test_static_batch_size_from_the_worst_case_request(fixed, per_unit, budget, max_cost, size):
    assert static_max_batch(MemoryModel(fixed, per_unit), budget, max_cost) == size


@pytest.mark.parametrize(
    ("timeout_s", "expired", "batch"),
    [
        (None, [0], [1, 2]),  # Triton's default: only the passed deadline drops a request
        (0.8, [0, 1], [2]),  # request 1 arrived at 0.1 s: waited 0.9 s >= 0.8 s
        (0.95, [0], [1, 2]),  # request 1 waited 0.9 s < 0.95 s
    ],
)
def test_static_queue_timeout_drops_requests_that_waited_too_long(
    linear_ctx, make_req, timeout_s, expired, batch
) -> None:
    policy = StaticBatching(max_batch=4, max_delay_s=0.0, queue_timeout_s=timeout_s)
    for i, (arrival, deadline) in enumerate([(0.0, 0.5), (0.1, 2.0), (0.9, 2.0)]):
        policy.add(make_req(i, 10, deadline, arrival_s=arrival), arrival)
    d = policy.next_dispatch(1.0, linear_ctx())
    assert [r.id for r in d.expired] == expired and [r.id for r in d.batch] == batch


@pytest.mark.parametrize(
    "kwargs", [{"max_batch": 0}, {"max_delay_s": -1.0}, {"queue_timeout_s": 0.0}]
)
def test_static_settings_are_checked(kwargs) -> None:
    with pytest.raises(PolicyError):
        StaticBatching(**kwargs)


def test_service_passes_the_static_queue_timeout_to_the_policy() -> None:
    import argparse

    from offload.serving.cli import add_arguments, config_from_args
    from offload.serving.config import ServeConfigError, make_policy
    from offload.serving.scheduler import ModelSpec

    p = argparse.ArgumentParser()
    add_arguments(p)
    config = config_from_args(p.parse_args(["--policy", "static", "--static-timeout-ms", "250"]))
    assert config.static_queue_timeout_s == 0.25
    assert config_from_args(p.parse_args([])).static_queue_timeout_s is None
    spec = ModelSpec("m", 100, False, {"full": MemoryModel(1.0, 1.0)})
    policy = make_policy("static", spec, 1e6, static_timeout_s=config.static_queue_timeout_s)
    assert isinstance(policy, StaticBatching) and policy.queue_timeout_s == 0.25
    from offload.serving.config import ServeConfig

    with pytest.raises(ServeConfigError, match="static_queue_timeout_s"):
        ServeConfig(static_queue_timeout_s=0.0)
