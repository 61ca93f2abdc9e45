"""bench.lm_clock_grid: the step-cost clock calibrated on a designed grid of backend calls."""

from __future__ import annotations

import numpy as np
import pytest

from bench.lm_clock import FEATURES, ClockError, StepWork, decode_work, prefill_work
from bench.lm_clock_grid import Grid, _huber_nnls, fit_grid, grid_samples
from offload.models.lm.backend import MoEBackend

SMALL = Grid(rows=(1, 3), contexts=(4, 9), prompts=(1, 2), lengths=(3, 8), repeats=2)


@pytest.fixture(scope="module")
def backend(tiny_lm_backend: MoEBackend) -> MoEBackend:
    return tiny_lm_backend


def test_grid_times_every_point_at_every_level_with_its_work(backend):
    samples = grid_samples(backend, [1.0, 0.0], SMALL)
    assert len(samples) == 2 * (2 * 2 + 2 * 2)
    assert backend.model.brownout_tau == 1.0  # restored
    keys = {(tau, w.decode_calls, w.decode_rows, w.prefill_calls, w.prefill_tokens)
            for tau, w, _ in samples}  # fmt: skip
    assert (0.0, 1, 3, 0, 0) in keys and (1.0, 0, 0, 1, 2 * 8) in keys
    miss = 0.5  # top-1 of 2 experts
    for _, w, t in samples:
        assert t > 0
        if w.decode_calls:  # each cache grew by a token a round: its middle length, 1 + 1
            ctx = w.decode_context // w.decode_rows
            assert ctx in (4 + 2, 9 + 2)
            assert w == decode_work([ctx] * w.decode_rows, miss)
        else:
            length = w.prefill_square // w.prefill_tokens
            assert length in (3, 8) and w.prefill_calls == 1
            assert w == prefill_work([length] * (w.prefill_tokens // length), miss)


def test_a_grid_the_model_cannot_run_is_a_clear_error(backend):
    with pytest.raises(ClockError, match=r"lengths must be in \[1, 64\]"):
        grid_samples(backend, [1.0], Grid(rows=(1,), contexts=(62,), prompts=(1,), lengths=(4,),
                                          repeats=2))  # fmt: skip
    with pytest.raises(ClockError, match="repeats=0"):
        grid_samples(backend, [1.0], Grid(repeats=0))


def test_fit_recovers_backend_costs_per_level_and_one_overhead():
    """Known costs: the grid's relative least squares gives each level's backend coefficients,
    the replay steps' time less their backend time gives the level-free overhead."""
    miss = 0.75
    backend = {1.0: np.array([0, 2e-4, 1e-6, 5e-4, 3e-5, 1e-8, 2e-3, 1e-3]),
               0.0: np.array([0, 1e-4, 1e-6, 5e-4, 1e-5, 1e-8, 0.0, 1e-3])}  # fmt: skip
    overhead = np.zeros(len(FEATURES))
    overhead[[FEATURES.index("step"), FEATURES.index("decode_rows")]] = [3e-4, 2e-5]
    grid = []
    for tau, c in backend.items():
        for b in (1, 2, 4, 8, 16, 32):
            for n in (16, 64, 128, 200):
                for w in (decode_work([n] * b, miss), prefill_work([n] * b, miss)):
                    grid.append((tau, w, float(c @ w.vector())))
    rng = np.random.default_rng(0)
    steps = []
    for tau, c in backend.items():
        for _ in range(200):
            w = decode_work([int(rng.integers(5, 200))] * int(rng.integers(1, 33)), miss)
            w.backend_s = float(c @ w.vector())
            steps.append((tau, w, w.backend_s + float(overhead @ w.vector())))
    steps[0] = (steps[0][0], steps[0][1], steps[0][2] + 0.5)  # a 0.5 s spike of the VM
    fit = fit_grid(grid, steps)
    np.testing.assert_allclose(fit.overhead, overhead, rtol=1e-4, atol=1e-9)
    for tau, c in backend.items():
        np.testing.assert_allclose(fit.backend[tau], c, rtol=1e-5, atol=1e-10)
        np.testing.assert_allclose(fit.model.coefficients[tau], c + overhead, rtol=1e-4,
                                   atol=1e-9)  # fmt: skip
    q = fit.quality(grid)
    assert q["1.0"]["max_rel_error"] < 1e-4 and q["0.0"]["points"] == len(grid) // 2
    with pytest.raises(ClockError, match="no grid points"):
        fit_grid([], steps)


def test_huber_fit_ignores_a_spike_that_least_squares_follows():
    x = np.stack([np.ones(50), np.arange(50.0)], axis=1)
    y = 1e-3 + 1e-5 * np.arange(50.0)
    y_spiked = y.copy()
    y_spiked[10] += 0.2
    robust = _huber_nnls(x, y_spiked)
    np.testing.assert_allclose(robust, [1e-3, 1e-5], rtol=1e-3)
    plain = np.linalg.lstsq(x, y_spiked, rcond=None)[0]
    assert abs(plain[0] - 1e-3) > 1e-3  # the spike moves the plain fit's intercept
    assert StepWork().backend_s == 0.0
