"""Admission policies (table-driven): buckets by length, memory caps, slack order, baselines."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from offload.models.lm.scheduling import (
    AdmitObservation,
    PolicyConfig,
    SchedulingError,
    admit_bucket,
    admit_fifo,
    admit_static,
    bucket_of,
)

BYTES_PER_TOKEN = 10


@dataclass(frozen=True)
class Req:
    name: str
    prompt_len: int
    max_tokens: int
    arrival_s: float = 0.0
    ttft_slo_s: float = 1.0

    @property
    def ttft_deadline_s(self) -> float:
        return self.arrival_s + self.ttft_slo_s


def obs(waiting, free_tokens=10_000, running=0, now=0.0) -> AdmitObservation:
    return AdmitObservation(
        waiting=waiting,
        now_s=now,
        free_kv_bytes=free_tokens * BYTES_PER_TOKEN,
        running=running,
        kv_bytes_for=lambda n: n * BYTES_PER_TOKEN,
    )


def names(groups) -> list[list[str]]:
    return [[r.name for r in g] for g in groups]


@pytest.mark.parametrize(
    ("total", "bucket"),
    [(1, 0), (31, 0), (32, 1), (63, 1), (64, 2), (200, 3), (256, 3), (999, 3)],
)
def test_bucket_of_uses_half_open_intervals(total, bucket):
    assert bucket_of(total, (32, 64, 128, 256)) == bucket


CFG = PolicyConfig(max_batch=8, max_prefill_tokens=10_000, bucket_bounds=(32, 64, 128, 256))

BUCKET_CASES = [
    pytest.param(
        [Req("a", 10, 10), Req("b", 100, 50), Req("c", 12, 8), Req("d", 90, 60)],
        {},
        [["a", "c"], ["b", "d"]],
        id="groups-by-length-in-bucket-order-of-slack",
    ),
    pytest.param(
        [Req("long", 100, 50, ttft_slo_s=2.0), Req("short", 10, 5, ttft_slo_s=0.5)],
        {},
        [["short"], ["long"]],
        id="most-urgent-bucket-first",
    ),
    pytest.param(
        [Req("a", 20, 5, ttft_slo_s=3.0), Req("b", 20, 5, ttft_slo_s=1.0)],
        {},
        [["b", "a"]],
        id="least-slack-first-within-a-bucket",
    ),
    pytest.param(
        [Req("a", 60, 40), Req("b", 60, 40), Req("c", 60, 40)],
        {"free_tokens": 250},
        [["a", "b"]],
        id="memory-cap-two-of-three-fit",
    ),
    pytest.param(
        [Req("big", 100, 100), Req("small", 10, 10)],
        {"free_tokens": 150},
        [["small"]],
        id="a-misfit-does-not-block-other-buckets",
    ),
    pytest.param(
        [Req(str(i), 10, 10) for i in range(10)],
        {"running": 5},
        [["0", "1", "2"]],
        id="batch-slots-left",
    ),
]


@pytest.mark.parametrize(("waiting", "state", "expected"), BUCKET_CASES)
def test_bucket_admission(waiting, state, expected):
    assert names(admit_bucket(obs(waiting, **state), CFG)) == expected


@pytest.mark.parametrize(
    ("n_waiting", "running", "now", "admitted"),
    [
        (1, 0, 0.0, 1),  # nothing runs: no decode to protect, start at once
        (1, 3, 0.0, 0),  # a lone request waits for company while others decode ...
        (1, 3, 0.2, 0),  # ... up to a quarter of its TTFT objective (1 s here) ...
        (1, 3, 0.25, 1),  # ... and then starts alone
        (4, 3, 0.0, 4),  # a full group (bucket_min_batch = 4) starts at once
    ],
)
def test_bucket_group_waits_to_fill_while_slack_allows(n_waiting, running, now, admitted):
    waiting = [Req(str(i), 10, 10) for i in range(n_waiting)]
    groups = admit_bucket(obs(waiting, running=running, now=now), CFG)
    assert sum(len(g) for g in groups) == admitted


def test_bucket_groups_respect_the_prefill_token_budget():
    cfg = PolicyConfig(max_batch=8, max_prefill_tokens=100, bucket_bounds=(32, 64, 128, 256))
    waiting = [Req(str(i), 30, 10) for i in range(5)]  # padded 30 tokens each
    assert names(admit_bucket(obs(waiting), cfg)) == [["0", "1", "2"]]


FIFO_CASES = [
    pytest.param([Req("a", 10, 10), Req("b", 100, 100)], 10_000, [["a", "b"]], id="all-fit"),
    pytest.param(
        [Req("a", 10, 10), Req("big", 100, 100), Req("c", 10, 10)],
        100,
        [["a"]],
        id="stops-at-first-misfit",
    ),
    pytest.param([Req("big", 100, 100)], 100, [], id="nothing-fits"),
]


@pytest.mark.parametrize(("waiting", "free", "expected"), FIFO_CASES)
def test_fifo_admission(waiting, free, expected):
    assert names(admit_fifo(obs(waiting, free_tokens=free), CFG)) == expected


@pytest.mark.parametrize(
    ("n_waiting", "running", "now", "admitted"),
    [
        (8, 0, 0.0, 8),  # a full batch starts at once
        (3, 0, 0.01, 0),  # a partial batch waits for the queue delay ...
        (3, 0, 0.06, 3),  # ... and starts after it
        (8, 2, 1.0, 0),  # nothing starts while a batch runs (run to completion)
    ],
)
def test_static_batching(n_waiting, running, now, admitted):
    cfg = PolicyConfig(max_batch=8, max_queue_delay_s=0.05)
    waiting = [Req(str(i), 10, 10) for i in range(n_waiting)]
    groups = admit_static(obs(waiting, running=running, now=now), cfg)
    assert sum(len(g) for g in groups) == admitted


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_batch", 0),
        ("max_prefill_tokens", 0),
        ("max_queue_delay_s", -1.0),
        ("bucket_bounds", (64, 32)),
    ],
)
def test_policy_settings_out_of_bounds_are_rejected(field, value):
    with pytest.raises(SchedulingError, match=field):
        PolicyConfig(**{field: value})
