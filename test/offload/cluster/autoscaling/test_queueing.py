"""Erlang C and the M/M/c (M/G/c) latency model against known values and a simulation."""

from __future__ import annotations

import heapq
import math
from fractions import Fraction

import numpy as np
import pytest
from scipy import integrate

from offload.cluster.autoscaling.interface import Bounds, Observation, PodView
from offload.cluster.autoscaling.queueing import (
    QueueingConfig,
    QueueingPolicy,
    erlang_c,
    mmc_mean_wait_s,
    replicas_for_slo,
    service_tail,
    sojourn_tail,
)


def erlang_c_exact(c: int, a: Fraction) -> Fraction:
    """The textbook sum formula in exact arithmetic."""
    top = a**c / math.factorial(c) * Fraction(c) / (c - a)
    return top / (sum(a**k / math.factorial(k) for k in range(c)) + top)


@pytest.mark.parametrize(
    ("c", "a", "expected"),
    [
        (2, 1.0, 1 / 3),  # textbook: two servers at 50%
        (3, 2.0, 4 / 9),
        (1, 0.7, 0.7),  # M/M/1: P(wait) = rho
        (12, 10.0, 0.4494),  # call-centre table: 10 Erlangs on 12 agents, 44.9% wait
    ],
)
def test_erlang_c_known_values(c, a, expected):
    assert erlang_c(c, a) == pytest.approx(expected, abs=5e-5)  # table values have 4 digits


@pytest.mark.parametrize(
    ("c", "a"), [(5, Fraction(7, 2)), (20, Fraction(33, 2)), (50, Fraction(45))]
)
def test_erlang_c_matches_the_exact_sum_formula(c, a):
    # the recursion is exact up to float rounding (1e-12 relative)
    assert erlang_c(c, float(a)) == pytest.approx(float(erlang_c_exact(c, a)), rel=1e-12)


def test_mm1_tail_is_exponential():
    lam, mean = 3.0, 0.25  # mu = 4
    for t in (0.1, 0.5, 2.0):
        assert sojourn_tail(1, lam, mean, 1.0, t) == pytest.approx(math.exp(-(4 - 3) * t), rel=1e-9)


def test_mmc_tail_closed_form_including_theta_equal_mu():
    c, lam, mean = 3, 2.0, 1.0  # theta = c mu - lambda = 1 = mu: the (1 + mu t) form
    cw = erlang_c(c, lam * mean)
    for t in (0.5, 1.0, 3.0):
        expected = (1 - cw) * math.exp(-t) + cw * (1 + t) * math.exp(-t)
        assert sojourn_tail(c, lam, mean, 1.0, t) == pytest.approx(expected, rel=1e-6)


def test_mean_wait_from_the_tail_halves_for_deterministic_service():
    # cv2 = 0 at c = 1 is M/D/1, whose Pollaczek-Khinchine mean wait is half of M/M/1's
    lam, mean = 0.6, 1.0
    area = integrate.quad(lambda x: sojourn_tail(1, lam, mean, 0.0, mean + x), 0, 200)[0]
    assert area == pytest.approx(0.5 * mmc_mean_wait_s(1, lam, mean), rel=1e-4)


def fcfs_mmc_sojourn(c, lam, mean, n, seed):
    rng = np.random.default_rng(seed)
    arrivals = np.cumsum(rng.exponential(1 / lam, n))
    service = rng.exponential(mean, n)
    free = [0.0] * c
    out = np.empty(n)
    for i in range(n):
        start = max(arrivals[i], heapq.heappop(free))
        heapq.heappush(free, start + service[i])
        out[i] = start + service[i] - arrivals[i]
    return out[n // 10 :]  # drop the warm-up


def test_mmc_tail_matches_a_simulated_fcfs_queue():
    c, lam, mean = 4, 2.4, 1.0
    t = fcfs_mmc_sojourn(c, lam, mean, 60_000, 3)
    for x in (1.0, 3.0, 6.0):
        # over 8 seeds the simulated share stays within 0.006 of the formula (54k correlated
        # samples at 60% load); 0.012 leaves twice that
        assert np.mean(t > x) == pytest.approx(sojourn_tail(c, lam, mean, 1.0, x), abs=0.012)


def test_replicas_for_slo_is_the_smallest_that_meets_the_target():
    args = {
        "mean_s": 0.1,
        "cv2": 0.3,
        "slo_s": 0.4,
        "target_violation": 0.01,
        "max_utilization": 0.95,
    }
    c = replicas_for_slo(50.0, limit=100, **args)
    target = 0.01 + service_tail(0.1, 0.3, 0.4)
    assert sojourn_tail(c, 50.0, 0.1, 0.3, 0.4) <= target < sojourn_tail(c - 1, 50.0, 0.1, 0.3, 0.4)
    assert replicas_for_slo(0.0, limit=100, **args) == 0
    assert replicas_for_slo(1e4, limit=20, **args) == 20


def test_an_slo_below_the_service_tail_still_gets_a_finite_size():
    # exponential service: P(S > 4 x mean) = e^-4 = 1.8% > the 1% target on its own
    c = replicas_for_slo(40.0, 0.5, 1.0, 2.0, 0.01, 0.85, 100)
    assert 24 <= c < 40


def test_utilisation_cap_binds_when_the_slo_is_loose():
    c = replicas_for_slo(10.0, 1.0, 1.0, 100.0, 0.01, 0.5, 100)
    assert c == 20  # 10 Erlangs at <= 50%


def test_policy_holds_scale_down_for_the_delay():
    policy = QueueingPolicy(QueueingConfig(bounds=Bounds(1, 50), scale_down_delay_s=20.0))
    state, out = policy.initial_state(), []
    for k in range(12):
        arrivals = 100 if k < 4 else 10
        o = Observation(
            t_s=5.0 * (k + 1),
            replicas=5,
            pods=(PodView("p"),),
            interval_s=5.0,
            arrivals=arrivals,
            service_time_s=0.2,
            slo_s=1.0,
        )
        n, state = policy.decide(o, state)
        out.append(n)
    high = out[3]
    assert high > out[-1]
    assert out[4:7] == [high] * 3  # within 20 s of the last high answer


@pytest.mark.parametrize("cv2", [0.05, 0.3, 1.0, 2.5])
@pytest.mark.parametrize(("c", "lam", "mean"), [(1, 0.7, 1.0), (4, 3.0, 1.0), (40, 2.0, 1.0)])
def test_mgc_tail_equals_its_defining_convolution(cv2, c, lam, mean):
    """The closed forms against direct quadrature of P(S > t) + C int f_S(s) P(W > t - s) ds
    with scipy's Gamma density (agreement to quadrature precision, 1e-7)."""
    from scipy import stats

    k, scale = 1 / cv2, mean * cv2
    theta = (c / mean - lam) * 2 / (1 + cv2)
    wait = erlang_c(c, lam * mean)
    for t in (0.5 * mean, 2 * mean, 6 * mean):
        conv = integrate.quad(
            lambda s, t=t: stats.gamma.pdf(s, k, scale=scale) * math.exp(-theta * (t - s)),
            0,
            t,
            points=[min(t, (k - 1) * scale)] if k > 1 else None,
            limit=500,
        )[0]
        expected = stats.gamma.sf(t, k, scale=scale) + wait * conv
        assert sojourn_tail(c, lam, mean, cv2, t) == pytest.approx(expected, abs=1e-7)
