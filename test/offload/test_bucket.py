"""BucketServe policy: bucket assignment, caps under a memory budget, split/merge, slack order,
deadline-aware admission and expiry (table-driven, with a known linear cost model)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from offload.serving.bucket import BucketConfig, BucketPolicy
from offload.serving.policy import PolicyError


@pytest.mark.parametrize(
    ("cost", "expected"),
    [(0, (0, 100)), (99, (0, 100)), (100, (100, 1000)), (999, (100, 1000)), (5000, (1000, 10000))],
)
def test_request_joins_the_bucket_holding_its_cost(cost: int, expected: tuple[int, int]) -> None:
    policy = BucketPolicy(BucketConfig(bounds=(0, 100, 1000), max_cost=9999))
    b = policy.bucket_of("full", cost)
    assert (b.lower, b.upper) == expected


@pytest.mark.parametrize(
    ("budget", "fixed", "per_unit", "caps"),
    [
        # cap = floor(budget / (fixed + (U - 1) x per_unit)) for U = 100, 1000, 10000
        (1000.0, 10.0, 1.0, [9, 1, 1]),
        (100_000.0, 10.0, 1.0, [917, 99, 9]),
        (100_000.0, 0.0, 10.0, [101, 10, 1]),
        (5.0, 10.0, 1.0, [1, 1, 1]),  # a request larger than the budget still runs alone
    ],
)
def test_batch_cap_of_each_bucket_follows_the_memory_budget(
    linear_ctx, budget: float, fixed: float, per_unit: float, caps: list[int]
) -> None:
    policy = BucketPolicy(BucketConfig(bounds=(0, 100, 1000), max_cost=9999))
    ctx = linear_ctx(fixed_bytes=fixed, bytes_per_unit=per_unit, budget=budget)
    assert [policy.cap(b, ctx) for b in policy.buckets["full"]] == caps


@settings(max_examples=60, deadline=None)
@given(
    costs=st.lists(st.integers(1, 9999), min_size=1, max_size=40),
    budget=st.floats(500.0, 200_000.0),
)
def test_no_batch_exceeds_the_memory_budget(linear_ctx, make_req, costs, budget) -> None:
    ctx = linear_ctx(per_item_s=0.0, fixed_bytes=10.0, bytes_per_unit=1.0, budget=budget)
    policy = BucketPolicy(BucketConfig(bounds=(0, 100, 1000), max_cost=9999, admission=False))
    for i, c in enumerate(costs):
        policy.add(make_req(i, c, deadline_s=100.0), 0.0)
    served = 0
    while len(policy):
        batch = policy.next_dispatch(0.0, ctx).batch
        assert batch
        if len(batch) > 1:
            assert ctx.batch_bytes("full", [r.cost for r in batch]) <= budget
        assert len({policy.bucket_of("full", r.cost).lower for r in batch}) == 1
        served += len(batch)
    assert served == len(costs)


def test_wide_bucket_with_small_requests_splits_at_their_median(linear_ctx, make_req) -> None:
    policy = BucketPolicy(
        BucketConfig(bounds=(0,), max_cost=9999, split_min_arrivals=8, adapt_period_s=1.0)
    )
    ctx = linear_ctx(per_item_s=0.0)
    for i in range(16):  # padding 1 - ~100/10000: far above split_padding
        policy.add(make_req(i, 90 + i, deadline_s=100.0), 0.01 * i)
    policy.adapt(0.2, ctx)
    edges = [(b.lower, b.upper) for b in policy.buckets["full"]]
    assert edges == [(0, 98), (98, 10000)]  # median of 90..105 is 97.5 -> int 97, +1
    assert policy.splits == 1 and len(policy) == 16  # no request lost in the split


def test_quiet_neighbours_merge_once_their_rates_decay(linear_ctx, make_req) -> None:
    config = BucketConfig(bounds=(0, 100, 1000), max_cost=9999, rate_halflife_s=1.0)
    policy = BucketPolicy(config)
    ctx = linear_ctx(per_item_s=0.0, budget=1e9)
    for i in range(20):
        policy.add(make_req(i, 50, deadline_s=1e3), 0.0)
        policy.add(make_req(100 + i, 500, deadline_s=1e3), 0.0)
    policy.adapt(0.0, ctx)
    assert len(policy.buckets["full"]) >= 3  # busy: rates ~ 20 x ln2 per s, far above 0.2
    policy.adapt(60.0, ctx)  # a minute later the rates have decayed below merge_rate_hz
    assert [(b.lower, b.upper) for b in policy.buckets["full"]] == [(0, 10000)]
    assert len(policy) == 40


@pytest.mark.parametrize(
    ("deadlines", "first"),
    [
        ([1.0, 0.5, 2.0], 1),  # least slack first
        ([0.9, 0.9, 0.3], 2),
        ([3.0, 2.0, 1.0], 2),
    ],
)
def test_batch_starts_with_the_least_slack(linear_ctx, make_req, deadlines, first) -> None:
    policy = BucketPolicy(BucketConfig(bounds=(0,), max_cost=9999, admission=False))
    for i, d in enumerate(deadlines):
        policy.add(make_req(i, 10, d), 0.0)
    batch = policy.next_dispatch(0.0, linear_ctx(per_item_s=0.1)).batch
    assert batch[0].id == first


def test_most_urgent_bucket_is_served_first(linear_ctx, make_req) -> None:
    config = BucketConfig(bounds=(0, 100), max_cost=9999, admission=False, merge_rate_hz=0.0)
    policy = BucketPolicy(config)
    policy.add(make_req(0, 50, deadline_s=5.0), 0.0)
    policy.add(make_req(1, 500, deadline_s=0.5), 0.0)
    batch = policy.next_dispatch(0.0, linear_ctx(per_item_s=0.1, budget=1e9)).batch
    assert [r.id for r in batch] == [1]


@pytest.mark.parametrize(
    ("per_item_s", "deadlines", "size"),
    [
        (0.1, [0.25, 0.25, 0.25, 0.25], 2),  # a third request would finish at 0.3 > 0.25
        (0.1, [1.0, 1.0, 1.0, 1.0], 4),
        (0.1, [0.15, 1.0, 1.0, 1.0], 1),  # the urgent head cannot share its batch
    ],
)
def test_batch_grows_only_while_every_member_meets_its_deadline(
    linear_ctx, make_req, per_item_s, deadlines, size
) -> None:
    policy = BucketPolicy(BucketConfig(bounds=(0,), max_cost=9999, admission=False))
    for i, d in enumerate(deadlines):
        policy.add(make_req(i, 10, d), 0.0)
    batch = policy.next_dispatch(0.0, linear_ctx(per_item_s=per_item_s, budget=1e9)).batch
    assert len(batch) == size


def test_request_that_cannot_meet_its_deadline_is_answered_not_run(linear_ctx, make_req) -> None:
    policy = BucketPolicy(BucketConfig(bounds=(0,), max_cost=9999, admission=False))
    policy.add(make_req(0, 10, deadline_s=0.05), 0.0)  # needs 0.1 s alone
    policy.add(make_req(1, 10, deadline_s=1.0), 0.0)
    d = policy.next_dispatch(0.0, linear_ctx(per_item_s=0.1))  # request 1 can run: no probe
    assert [r.id for r in d.expired] == [0] and [r.id for r in d.batch] == [1]


def test_a_pessimistic_model_still_probes_once_per_interval(linear_ctx, make_req) -> None:
    # the model predicts 0.1 s, every request allows 0.05 s: all predicted late. One of them runs
    # per probe interval anyway, so the service-time model can learn it was wrong.
    policy = BucketPolicy(BucketConfig(bounds=(0,), max_cost=9999, probe_interval_s=1.0))
    ctx = linear_ctx(per_item_s=0.1)
    assert policy.admit(make_req(0, 10, 0.05), 0.0, ctx)  # idle and no run yet: admitted
    policy.add(make_req(0, 10, 0.05), 0.0)
    policy.add(make_req(1, 10, 0.04), 0.0)
    d = policy.next_dispatch(0.0, ctx)
    assert [r.id for r in d.batch] == [0] and [r.id for r in d.expired] == [1]
    policy.add(make_req(2, 10, 0.55), 0.5)
    assert not policy.next_dispatch(0.5, ctx).batch  # within the interval: no second probe
    assert not policy.admit(make_req(3, 10, 0.55), 0.5, ctx)
    assert policy.admit(make_req(4, 10, 1.05), 1.0, ctx)


@pytest.mark.parametrize(
    ("busy_until_s", "queued_deadlines", "deadline", "admitted"),
    [
        (0.0, [], 0.15, True),
        (0.0, [], 0.05, False),  # cannot finish even alone
        (0.1, [], 0.15, False),  # the running batch ends at 0.1, then 0.1 s of work
        (0.0, [0.2, 0.3], 0.35, True),  # 0.2 s of earlier-deadline work + 0.1 s
        (0.0, [0.2, 0.22], 0.25, False),
        (0.0, [0.2, 5.0], 0.25, True),  # later deadlines do not count as ahead (EDF)
    ],
)
def test_admission_rejects_a_request_predicted_to_finish_late(
    linear_ctx, make_req, busy_until_s, queued_deadlines, deadline, admitted
) -> None:
    policy = BucketPolicy(BucketConfig(bounds=(0,), max_cost=9999))
    policy._last_dispatch_s = 0.0  # a batch just ran: no probe is due
    ctx = linear_ctx(per_item_s=0.1)
    ctx.busy_until_s = busy_until_s
    for i, d in enumerate(queued_deadlines):
        policy.add(make_req(i, 10, d), 0.0)
    assert policy.admit(make_req(99, 10, deadline), 0.0, ctx) is admitted


@pytest.mark.parametrize(
    "kwargs",
    [
        {"bounds": ()},
        {"bounds": (10, 5)},
        {"bounds": (-1, 5)},
        {"bounds": (0, 100), "max_cost": 50},
        {"split_padding": 1.0},
        {"adapt_period_s": 0.0},
    ],
)
def test_invalid_settings_are_refused(kwargs) -> None:
    with pytest.raises(PolicyError):
        BucketConfig(**kwargs)
