"""bench.lm_clock: the step-cost clock records what each step computed, fits it, and makes a
replay reproducible (the same outcomes run after run)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from bench.lm_clock import (
    ClockError,
    ClockSet,
    RecordingBackend,
    StepCostModel,
    StepWork,
    step_costs,
)
from bench.lm_replay import Slo, TraceRequest, replay
from offload.models.lm.backend import MoEBackend, Selection
from offload.models.lm.engine import Engine, EngineConfig


class _Inner:
    """Stands in for a backend: answers calls, holds attributes to delegate."""

    max_seq_len = 64

    def prefill(self, prompts):
        return "prefilled", len(prompts)

    def decode(self, tokens, state):
        return "decoded"


def test_recording_backend_adds_up_one_steps_work_and_delegates():
    rec = RecordingBackend(_Inner())
    assert rec.prefill([[1, 2, 3], [4]]) == ("prefilled", 2)
    cache = SimpleNamespace(lengths=torch.tensor([5, 7, 9]))
    assert rec.decode(torch.tensor([1, 2, 3]), cache) == "decoded"
    rec.decode(torch.tensor([1, 2]), Selection(cache, torch.tensor([0, 2])))  # rows 5 and 9
    assert rec.max_seq_len == 64
    work = rec.take()
    # the context term is padded: rows x the longest cached length of each decode call
    assert work == StepWork(decode_rows=5, decode_context=3 * 9 + 2 * 9, prefill_calls=1,
                            prefill_tokens=2 * 3, prefill_square=2 * 9,
                            decode_calls=2)  # fmt: skip
    assert work.backend_s >= 0.0  # CPU time of the delegated calls (not compared)
    # the stand-in has no model config: no MoE dispatch to count
    assert rec.take() == StepWork()  # the next step starts empty


def _samples(coef: dict[float, np.ndarray], n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    out = []
    for tau, c in coef.items():
        for _ in range(n):
            w = StepWork(*(int(v) for v in rng.integers(0, 40, 5)), float(rng.random()),
                         int(rng.integers(0, 2)))  # fmt: skip
            out.append((tau, w, float(c @ w.vector())))
    return out


def test_fit_recovers_known_costs_and_interpolates_between_levels():
    coef = {1.0: np.array([1e-3, 2e-4, 1e-6, 5e-4, 3e-5, 1e-8, 2e-3, 4e-4]),
            0.0: np.array([1e-3, 1e-4, 1e-6, 5e-4, 1e-5, 1e-8, 0.0, 3e-4])}  # fmt: skip
    samples = _samples(coef, 60)
    model = StepCostModel.fit(samples)
    for tau, c in coef.items():
        np.testing.assert_allclose(model.coefficients[tau], c, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(model.level_coefficients(0.25), 0.75 * coef[0.0] + 0.25 * coef[1.0])
    q = model.quality(samples)
    assert q["1.0"]["r2"] == pytest.approx(1.0) and q["0.0"]["median_rel_error"] < 1e-6
    assert q["1.0"]["predicted_over_measured"] == pytest.approx(1.0)
    with pytest.raises(ClockError, match="outside the calibrated levels"):
        StepCostModel({0.5: coef[1.0], 1.0: coef[1.0]}).cost(0.25, StepWork())
    with pytest.raises(ClockError, match="no calibration steps"):
        StepCostModel.fit([])


def test_expert_spread_counts_the_experts_a_call_runs(backend):
    """Top-1 of 2 experts: a call of T tokens leaves an expert idle with probability 0.5^T."""
    rec = RecordingBackend(backend)
    _, cache = rec.prefill([[5, 6, 7], [8]])  # 4 tokens
    rec.decode(torch.tensor([1, 2]), cache)  # 2 tokens
    assert rec.take().expert_spread == pytest.approx((1 - 0.5**4) + (1 - 0.5**2))


def test_the_slack_laws_cost_table_comes_from_the_clock():
    """decode(B) = c0 + c_dec + c_rows B + c_ctx 24 B; prefill(P) = c0 + c_call + c_tok P (no
    L^2, no dispatch term here, so both are exactly linear)."""
    c = np.array([1e-3, 2e-4, 1e-6, 5e-4, 3e-5, 0.0, 0.0, 4e-4])
    (costs,) = step_costs(StepCostModel({1.0: c}), expert_miss=0.75)
    assert costs.tau == 1.0
    assert costs.decode_base_s == pytest.approx(1.4e-3)
    assert costs.decode_per_seq_s == pytest.approx(2e-4 + 24e-6)
    assert costs.prefill_base_s == pytest.approx(1.5e-3)
    assert costs.prefill_per_token_s == pytest.approx(3e-5)


def test_rescaled_matches_each_level_to_what_was_measured():
    coef = {1.0: np.array([1e-3, 2e-4, 0, 0, 0, 0, 0, 0]),
            0.0: np.array([2e-3, 1e-4, 0, 0, 0, 0, 0, 0])}  # fmt: skip
    model = StepCostModel(coef)
    measured = [(tau, StepWork(decode_rows=b), 1.1 * model.cost(tau, StepWork(decode_rows=b)))
                for tau in coef for b in range(1, 9)]  # fmt: skip
    fixed = model.rescaled(model.quality(measured))
    assert fixed.quality(measured)["1.0"]["predicted_over_measured"] == pytest.approx(1.0)
    assert fixed.quality(measured)["0.0"]["predicted_over_measured"] == pytest.approx(1.0)
    assert fixed.rescaled({}).coefficients[1.0] == pytest.approx(fixed.coefficients[1.0])


def test_costs_are_never_negative():
    """Non-negative least squares: noisy steps cannot make a feature free of cost below 0."""
    rng = np.random.default_rng(1)
    samples = [(1.0, StepWork(decode_rows=int(b)), 1e-3 + 1e-5 * rng.normal()) for b in range(30)]
    assert (StepCostModel.fit(samples).coefficients[1.0] >= 0).all()


@pytest.fixture(scope="module")
def backend(tiny_lm_backend: MoEBackend) -> MoEBackend:
    return tiny_lm_backend


def test_a_replay_on_the_fitted_clock_is_reproducible(backend):
    trace = [TraceRequest(0.002 * i, 4 + i % 9, 3 + i % 5) for i in range(24)]
    prompts = np.arange(1, 200) % 250 + 1
    slo = Slo(0.05, 0.01)
    clocks = ClockSet(RecordingBackend(backend))
    with pytest.raises(ClockError, match="fit the step-cost model"):
        clocks.modelled(1.0, 0.0)

    def run(clock):
        engine = Engine(clocks.backend, EngineConfig(10**9))
        return replay(engine, trace, prompts, slo, clock=clock)

    measured = run(clocks.measured)
    assert len(clocks.calibration) > 5
    assert measured.busy_s == pytest.approx(sum(t for _, _, t in clocks.calibration))
    model = clocks.fit()
    first, second = run(clocks.modelled), run(clocks.modelled)
    assert [o.ttft_s for o in first.outcomes] == [o.ttft_s for o in second.outcomes]
    assert [o.tpot_s for o in first.outcomes] == [o.tpot_s for o in second.outcomes]
    assert first.duration_s == second.duration_s > 0
    # the modelled clock is the model's cost of each step's recorded work
    steps = clocks.checked[-len(clocks.checked) // 2 :]
    assert second.busy_s == pytest.approx(sum(model.cost(t, w) for t, w, _ in steps))


def test_the_modelled_slo_counts_the_moe_dispatch_of_a_lone_request():
    """5x the modelled isolated TTFT and decode step, each with its expert-dispatch term."""
    from bench.lm_brownout import _modelled_slo

    only_dispatch = StepCostModel({1.0: np.array([0, 0, 0, 0, 0, 0, 1e-2, 0])})
    reqs = [TraceRequest(0.0, 40, 5)] * 10
    slo = _modelled_slo(only_dispatch, reqs, 5.0, miss=0.75)
    assert slo.tpot_s == pytest.approx(5 * 1e-2 * (1 - 0.75))
    assert slo.ttft_s == pytest.approx(5 * 1e-2 * (1 - 0.75**40))


def test_control_work_is_charged_as_measured_on_top_of_the_model():
    """A law's or the guard's CPU time is not in the fitted costs (calibration runs neither):
    the step is charged the model's cost plus that time."""
    rec = RecordingBackend(_Inner())
    rec.charge(0.002)
    rec.charge(0.001)
    work = rec.take()
    assert work.control_s == pytest.approx(0.003)
    model = StepCostModel({1.0: np.array([1e-3, 0, 0, 0, 0, 0, 0, 0])})
    assert model.cost(1.0, work) == pytest.approx(1e-3 + 0.003)
    assert rec.take().control_s == 0.0


def test_bench_engines_on_the_model_clock_charge_the_law_and_the_guard(backend):
    """bench.lm_brownout._engine: on a recording backend the law's CPU time (and the
    observation's) reaches the step's work; on the plain backend nothing is wrapped."""
    import time as _time

    from bench.lm_brownout import _engine
    from offload.models.lm.engine import LMRequest

    def busy_law(obs):
        end = _time.thread_time() + 0.003
        while _time.thread_time() < end:
            pass
        return 1.0

    rec = RecordingBackend(backend)
    engine = _engine(rec, 10**9, "fifo", busy_law)
    engine.submit(LMRequest("a", [5, 6, 7], 2, 0.0, ignore_eos=True))
    engine.step(0.0)
    assert rec.take().control_s >= 0.003
    plain = _engine(backend, 10**9, "fifo", busy_law)
    assert plain.level_law is busy_law
    # the guard: the same decisions, charged
    from offload.models.lm.prefill_guard import PrefillGuard, PrefillGuardConfig
    from offload.models.lm.slack import StepCosts

    guard = PrefillGuard(PrefillGuardConfig((StepCosts(1.0, 0.01, 0.0, 0.02, 0.001),)))
    guarded = _engine(rec, 10**9, "fifo", guard=guard)
    assert guarded.prefill_guard is not guard and guarded.prefill_guard.cfg is guard.cfg
    rec.take()
    guarded.submit(LMRequest("b", [5, 6, 7], 2, 0.0, ignore_eos=True))
    guarded.step(0.0)  # the guard sees the group (nothing runs, so nothing to protect)
    assert rec.take().control_s > 0.0
    assert _engine(backend, 10**9, "fifo", guard=guard).prefill_guard is guard


def test_an_unknown_clock_calibration_is_refused_before_any_work(backend):
    from bench.lm_brownout import _calibrate

    clocks = ClockSet(RecordingBackend(backend))
    with pytest.raises(ValueError, match="clock calibration 'bogus': expected grid or replays"):
        _calibrate(clocks, 10**9, [], np.arange(1, 50), Slo(1.0, 1.0), [1.0], method="bogus")
    assert clocks.calibration == []
