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


@pytest.mark.parametrize(
    ("on_padding", "budget", "splits"),
    [
        # 16 requests of ~100 units: 16 x (10 + ~100) = ~1.7k bytes
        (False, 1000.0, 1),  # the queue does not fit one batch: split
        (False, 1e6, 0),  # it fits: a split would only fragment the queue
        (True, 1e6, 1),  # the paper's criterion: padding 1 - ~100/10000, far above 0.35
    ],
)
def test_wide_bucket_splits_at_the_median_when_its_queue_overflows_or_on_padding(
    linear_ctx, make_req, on_padding: bool, budget: float, splits: int
) -> None:
    config = BucketConfig(
        bounds=(0,), max_cost=9999, split_min_arrivals=8, split_on_padding=on_padding
    )
    policy = BucketPolicy(config)
    ctx = linear_ctx(per_item_s=0.0, budget=budget)
    for i in range(16):
        policy.add(make_req(i, 90 + i, deadline_s=100.0), 0.01 * i)
    policy.adapt(0.2, ctx)
    edges = [(b.lower, b.upper) for b in policy.buckets["full"]]
    # median of 90..105 is 97.5 -> int 97, +1
    assert edges == ([(0, 98), (98, 10000)] if splits else [(0, 10000)])
    assert policy.splits == splits and len(policy) == 16  # no request lost in a split


@pytest.mark.parametrize(
    ("budget", "size"),
    [
        (1e6, 6),  # cap of the bucket [0, 10000) is 1e6 / 10009 = 99: all six
        (25_000.0, 6),  # cap 2, but six requests of 100 units need 660 bytes: all six
        (300.0, 2),  # cap 1; by actual costs 2 x 110 = 220 fits, 3 x 110 = 330 does not
    ],
)
def test_batch_fills_the_memory_budget_by_actual_costs_beyond_the_cap(
    linear_ctx, make_req, budget: float, size: int
) -> None:
    policy = BucketPolicy(BucketConfig(bounds=(0,), max_cost=9999, admission=False))
    for i in range(6):
        policy.add(make_req(i, 100, deadline_s=100.0), 0.0)
    ctx = linear_ctx(per_item_s=0.01, budget=budget)
    batch = policy.next_dispatch(0.0, ctx).batch
    assert len(batch) == size
    assert ctx.batch_bytes("full", [r.cost for r in batch]) <= budget


@pytest.mark.parametrize(
    ("queued", "admitted"),
    [
        # a batch costs 0.3 s + 0.1 s per request; deadline 1.0 s. Four queued + the newcomer
        # in one batch: 0.3 + 0.5 = 0.8 s (admitted); one at a time they would take 2.0 s
        (4, True),
        (7, False),  # eight in a batch: 0.3 + 0.8 = 1.1 s > 1.0 s
    ],
)
def test_admission_predicts_the_queue_as_the_batches_it_would_run_in(
    make_req, queued: int, admitted: bool
) -> None:
    from offload.serving.policy import PolicyContext

    ctx = PolicyContext(
        predict_s=lambda _p, units, n: 0.3 + 0.1 * n,
        batch_bytes=lambda _p, costs: float(len(costs)),
        item_bytes=lambda _p, cost: 1.0,
        memory_budget_bytes=100.0,
    )
    policy = BucketPolicy(BucketConfig(bounds=(0,), max_cost=9999))
    for i in range(queued):
        policy.add(make_req(i, 10, deadline_s=1.0), 0.0)
    newcomer = make_req(99, 10, deadline_s=1.0)
    assert policy.admit(newcomer, 0.0, ctx) is admitted
    alone = _one_at_a_time_finish(policy, newcomer, ctx)
    assert alone > 1.0  # the one-at-a-time sum would have refused both


def _one_at_a_time_finish(policy, request, ctx) -> float:
    """The base class's one-at-a-time prediction for the same queue."""
    from offload.serving.policy import BatchPolicy

    return BatchPolicy.predicted_finish_s(policy, request, 0.0, ctx)


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
