"""The KPA decider: stable and panic windows, panic entry and exit, rate bounds, scale to zero
(the behaviour of Knative's pkg/autoscaler/scaling/autoscaler.go and its tests)."""

from __future__ import annotations

import pytest

from offload.cluster.autoscaling.interface import Bounds, Observation, PodView
from offload.cluster.autoscaling.kpa import KpaConfig, KpaPolicy, window_mean


def obs(t, ready, concurrency, replicas=None):
    p = tuple(PodView(f"pod-{i}") for i in range(ready))
    return Observation(
        t_s=t, replicas=replicas or max(ready, 1), pods=p, interval_s=2.0, concurrency=concurrency
    )


def drive(policy, series, ready_of=None):
    """Ticks every 2 s; ``series`` is the concurrency per tick; ready pods follow the answer
    (instant start) unless ``ready_of`` fixes them. Returns the answers."""
    state, n, out = policy.initial_state(), 1, []
    for k, c in enumerate(series):
        ready = ready_of(k) if ready_of else n
        n, state = policy.decide(obs(2.0 * (k + 1), ready, c, n), state)
        out.append((n, state.panicking))
    return out


def test_window_mean_weights_by_overlap():
    samples = ((2.0, 2.0, 1.0), (4.0, 2.0, 3.0))
    assert window_mean(samples, 4.0, 4.0) == pytest.approx(2.0)
    assert window_mean(samples, 4.0, 1.0) == pytest.approx(3.0)


def test_stable_load_scales_to_concurrency_over_target():
    # target 0.5 per pod (container concurrency 1 x 50%): 5 in flight -> 10 pods
    policy = KpaPolicy(KpaConfig(bounds=Bounds(1, 50), target_utilization=0.5))
    out = drive(policy, [5.0] * 40)
    assert out[-1] == (10, False)


def test_panic_enters_on_a_burst_and_never_scales_down_inside():
    policy = KpaPolicy(KpaConfig(bounds=Bounds(1, 50), target_utilization=1.0))
    series = [2.0] * 35 + [12.0] * 3 + [2.0] * 10
    out = drive(policy, series, ready_of=lambda k: 2)
    before = out[34]
    assert before == (2, False)
    # the 6-s panic window sees 12 in flight -> 12 pods >= 2 x 2 ready: panic
    assert out[35][1] and out[37][0] == 12
    # the burst is over, the panic window mean falls, but the count does not
    assert all(n == 12 and p for n, p in out[38:48])


def test_panic_exits_after_a_stable_window_without_the_threshold():
    policy = KpaPolicy(KpaConfig(bounds=Bounds(1, 50), target_utilization=1.0))
    series = [2.0] * 35 + [12.0] * 3 + [2.0] * 40
    out = drive(policy, series, ready_of=lambda k: 2)
    last_over = 37  # last tick whose panic window still crosses 2 x ready
    exits = [k for k in range(38, len(out)) if not out[k][1]]
    assert exits, "panic never ended"
    # panic lasts until 60 s (30 ticks) after the last over-threshold tick
    assert exits[0] - last_over in (30, 31, 32, 33)
    assert out[-1][0] < 12


def test_scale_down_is_bounded_by_the_max_scale_down_rate():
    policy = KpaPolicy(KpaConfig(bounds=Bounds(1, 50), target_utilization=1.0, stable_window_s=6.0))
    out = drive(policy, [0.5] * 5, ready_of=lambda k: 10)
    assert out[-1][0] == 5  # floor(10 / 2)


@pytest.mark.parametrize(("ticks", "expected"), [(10, 1), (20, 0)], ids=["in-grace", "after-grace"])
def test_scale_to_zero_waits_for_the_grace_period(ticks, expected):
    policy = KpaPolicy(KpaConfig(bounds=Bounds(0, 10), stable_window_s=6.0))
    out = drive(policy, [0.0] * ticks)
    assert out[-1][0] == expected


def test_scale_down_delay_keeps_the_highest_count_of_the_window():
    cfg = KpaConfig(
        bounds=Bounds(1, 50), target_utilization=1.0, stable_window_s=6.0, scale_down_delay_s=20.0
    )
    out = drive(KpaPolicy(cfg), [8.0] * 5 + [1.0] * 15, ready_of=lambda k: 8)
    counts = [n for n, _ in out]
    assert counts[5] == 8 and counts[-1] < 8
    assert all(n == 8 for n in counts[5:12])


def test_capacity_factor_raises_the_count():
    policy = KpaPolicy(KpaConfig(bounds=Bounds(1, 50), target_utilization=1.0))
    base = obs(2.0, 4, 4.0)
    half = Observation(**{**base.__dict__, "capacity_factor": 0.5})
    assert policy.decide(base, policy.initial_state())[0] == 4
    assert policy.decide(half, policy.initial_state())[0] == 8
