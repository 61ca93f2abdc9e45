"""Closed-form optimal power of planning.gsclo.power against its definition and a 1-D search."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize_scalar

from planning.gsclo.channel import LinkConfig
from planning.gsclo.power import (
    PowerError,
    deadline_power_w,
    efficient_power_w,
    frame_cost,
    rate_bps,
)

IMAGE_BITS = 640 * 480 * 1.5
POSE_BITS = 288.0


def _energy_j(power_w: float, bits: float, g: float, link: LinkConfig) -> float:
    return (power_w + link.circuit_power_w) * bits / float(rate_bps(power_w, g, link.bandwidth_hz))


@pytest.mark.parametrize("bits", [POSE_BITS, IMAGE_BITS, 4 * IMAGE_BITS])
@pytest.mark.parametrize("g", [1e-1, 1e2, 1e6])
@pytest.mark.parametrize(("bandwidth_hz", "deadline_s"), [(1e6, 0.05), (10e6, 0.1), (20e6, 1.0)])
def test_deadline_power_meets_the_deadline_with_equality(bits, g, bandwidth_hz, deadline_s):
    p = deadline_power_w(np.array([bits]), np.array([g]), bandwidth_hz, deadline_s)
    latency = bits / rate_bps(p, g, bandwidth_hz)
    # expm1 and log1p are each accurate to ~1 ulp; 1e-12 leaves three orders of margin.
    np.testing.assert_allclose(latency, deadline_s, rtol=1e-12)


@pytest.mark.parametrize(
    "circuit_power_w",
    [0.0, 0.05, 1.0],  # paper's case; interior energy-efficient power; clipped at P_max
)
@pytest.mark.parametrize("g", [3.0, 1e3, 1e5])
@pytest.mark.parametrize("bits", [POSE_BITS, IMAGE_BITS])
def test_closed_form_power_matches_a_numerical_minimisation(circuit_power_w, g, bits):
    link = LinkConfig(circuit_power_w=circuit_power_w)
    cost = frame_cost(np.array([bits]), np.array([g]), link)
    p_dl = float(deadline_power_w(np.array([bits]), np.array([g]), 10e6, 0.1)[0])
    assert p_dl <= link.max_power_w  # every case here can meet its deadline
    res = minimize_scalar(
        _energy_j,
        bounds=(p_dl, link.max_power_w),
        args=(bits, g, link),
        method="bounded",
        options={"xatol": 1e-14},
    )
    closed = float(cost.energy_j[0])
    # Never worse than the search (1e-12: rounding of the energy formula) ...
    assert closed <= res.fun * (1 + 1e-12)
    # ... and the search gets within 1e-6 of it: bounded Brent stops about sqrt(eps) ~ 1e-8
    # (relative) inside a bound, and at a boundary optimum the energy grows linearly from it.
    assert res.fun <= closed * (1 + 1e-6)
    grid = np.linspace(p_dl, link.max_power_w, 20001)
    assert np.all(_energy_grid(grid, bits, g, link) >= closed * (1 - 1e-12))


def _energy_grid(power_w: np.ndarray, bits: float, g: float, link: LinkConfig) -> np.ndarray:
    return (power_w + link.circuit_power_w) * bits / rate_bps(power_w, g, link.bandwidth_hz)


@pytest.mark.parametrize("g", [1e-2, 1.0, 1e4])
def test_energy_increases_with_power_without_circuit_power(g):
    link = LinkConfig()
    grid = np.geomspace(1e-9, 10.0, 2000)
    assert np.all(np.diff(_energy_grid(grid, IMAGE_BITS, g, link)) > 0.0)


@pytest.mark.parametrize("circuit_power_w", [0.01, 0.3, 5.0])
@pytest.mark.parametrize("g", [0.5, 50.0, 5e4])
def test_efficient_power_is_a_stationary_point(circuit_power_w, g):
    p = float(efficient_power_w(np.array([g]), circuit_power_w)[0])

    def ratio(q: float) -> float:
        return (q + circuit_power_w) / np.log1p(q * g)

    h = 1e-6 * p
    slope = (ratio(p + h) - ratio(p - h)) / (2 * h)
    # Central difference error ~h^2 f''' plus rounding ~eps f / h: 1e-6 of f/p covers both.
    assert abs(slope) <= 1e-6 * ratio(p) / p
    assert ratio(p) < ratio(0.9 * p) and ratio(p) < ratio(1.1 * p)


def test_without_circuit_power_the_efficient_power_is_zero():
    assert np.all(efficient_power_w(np.array([0.1, 10.0, 1e6]), 0.0) == 0.0)


def test_frame_that_cannot_meet_the_deadline_is_sent_late_at_max_power():
    link = LinkConfig(max_power_w=0.01)
    cost = frame_cost(np.array([IMAGE_BITS, POSE_BITS]), np.array([1e-3, 1e6]), link)
    assert cost.meets_deadline.tolist() == [False, True]
    assert cost.power_w[0] == link.max_power_w
    assert cost.latency_s[0] > link.deadline_s
    np.testing.assert_allclose(cost.energy_j[0], link.max_power_w * cost.latency_s[0], rtol=1e-15)


@pytest.mark.parametrize(
    ("bits", "gain", "match"),
    [
        ([1.0, 2.0], [1.0], "equal 1-D"),
        ([0.0], [1.0], "bits"),
        ([1.0], [-1.0], "gain_to_noise_per_w"),
        ([np.nan], [1.0], "bits"),
        ([1.0], [np.inf], "gain_to_noise_per_w"),
    ],
)
def test_bad_bits_or_gains_raise_power_error(bits, gain, match):
    with pytest.raises(PowerError, match=match):
        frame_cost(np.array(bits), np.array(gain), LinkConfig())
