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


@pytest.mark.parametrize("kwargs", [{"max_batch": 0}, {"max_delay_s": -1.0}])
def test_static_settings_are_checked(kwargs) -> None:
    with pytest.raises(PolicyError):
        StaticBatching(**kwargs)
