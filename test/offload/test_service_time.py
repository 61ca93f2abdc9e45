"""Online service-time models: the fit recovers a linear cost law and follows a change."""

from __future__ import annotations

import numpy as np
import pytest

from offload.serving.service_time import ServiceTimeError, ServiceTimeModel, ServiceTimePrior


def _feed(model, a, b, c, n=60, seed=0, noise=0.0):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        items = int(rng.integers(1, 6))
        units = float(rng.uniform(1e4, 1e5)) * items
        model.observe(units, items, a + b * units + c * items + rng.normal(0, noise))


def test_fit_recovers_the_coefficients_of_noise_free_batches() -> None:
    model = ServiceTimeModel(unit_scale=5e4, forgetting=1.0)
    _feed(model, 0.01, 2e-6, 0.05)
    coef = model.coefficients()
    # noise-free data: least squares is exact up to the initial-covariance regularisation
    assert coef["overhead_s"] == pytest.approx(0.01, abs=1e-4)
    assert coef["per_unit_s"] == pytest.approx(2e-6, rel=1e-3)
    assert coef["per_item_s"] == pytest.approx(0.05, abs=1e-4)
    assert model.predict(2e5, 2) == pytest.approx(0.01 + 0.4 + 0.1, rel=1e-3)


def test_prior_scaled_by_observations_answers_until_enough_samples() -> None:
    model = ServiceTimeModel(ServiceTimePrior(per_item_s=0.2), min_samples=8)
    assert model.predict(1000, 3) == pytest.approx(0.6)
    model.observe(1000, 1, 0.01)  # 20x faster than the prior said
    assert model.predict(1000, 3) == pytest.approx(0.03)
    _feed(model, 0.0, 0.0, 0.01, n=7, seed=1)  # now 8 samples: the fit answers
    assert model.predict(1000, 3) == pytest.approx(0.03, rel=0.05)


def test_forgetting_follows_a_machine_that_slows_down() -> None:
    model = ServiceTimeModel(unit_scale=5e4, forgetting=0.95)
    _feed(model, 0.0, 1e-6, 0.02, n=80)
    _feed(model, 0.0, 3e-6, 0.06, n=80, seed=1)  # e.g. a co-runner took the core
    # 3x slower after the change: within 5% once the old samples are forgotten (0.95^80 ~ 2%)
    assert model.predict(5e4, 1) == pytest.approx(0.15 + 0.06, rel=0.05)


def test_prediction_never_goes_below_the_floor() -> None:
    model = ServiceTimeModel(ServiceTimePrior(per_item_s=0.0), floor_s=1e-3)
    assert model.predict(10, 1) == 1e-3
    assert model.predict(10, 0) == 0.0


@pytest.mark.parametrize(
    ("units", "items", "seconds"), [(-1.0, 1, 0.1), (10.0, 0, 0.1), (10.0, 1, float("nan"))]
)
def test_bad_observations_are_refused(units, items, seconds) -> None:
    with pytest.raises(ServiceTimeError):
        ServiceTimeModel().observe(units, items, seconds)
