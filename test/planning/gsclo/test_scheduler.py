"""The sliding-window control law GscloScheduler.decide(observation, state)."""

from __future__ import annotations

import numpy as np
import pytest

from planning.gsclo.apo import solve_apo
from planning.gsclo.channel import LinkConfig, PayloadConfig
from planning.gsclo.problem import FIDELITY_RTOL, GscloProblem
from planning.gsclo.scheduler import (
    GscloObservation,
    GscloScheduler,
    GscloState,
    SchedulerConfig,
    SchedulerError,
)

RNG = np.random.default_rng(4)
DRIVE_L = RNG.uniform(0.0, 0.35, 80)  # [80]
DRIVE_GAIN = 10.0 ** -RNG.uniform(9.0, 12.0, 80)  # [80], every upload deadline-feasible


def test_first_full_window_plan_is_the_apo_schedule_of_that_window():
    config = SchedulerConfig(fidelity_budget=0.1, window_frames=20)
    obs = GscloObservation(1, DRIVE_L[:20], DRIVE_GAIN[:20])
    decision, state = GscloScheduler(config).decide(obs, GscloState())
    reference = solve_apo(GscloProblem(DRIVE_L[:20], DRIVE_GAIN[:20], 0.1, config.link))
    np.testing.assert_array_equal(decision.plan.upload, reference.upload)
    assert decision.horizon_budget == 0.1
    assert decision.upload == reference.upload[0]
    assert decision.power_w == reference.power_w[0] and decision.energy_j == reference.energy_j[0]
    assert state.past_discrepancy == (DRIVE_L[0],) and state.past_upload == (decision.upload,)


@pytest.mark.parametrize("window_frames", [1, 5, 12])
@pytest.mark.parametrize("method", ["apo", "exact"])
def test_myopic_scheduler_keeps_the_rolling_budget_every_frame(window_frames, method):
    config = SchedulerConfig(fidelity_budget=0.12, window_frames=window_frames, method=method)
    scheduler, state = GscloScheduler(config), GscloState()
    uploads = []
    for k in range(DRIVE_L.shape[0]):
        obs = GscloObservation(k + 1, DRIVE_L[k : k + 1], DRIVE_GAIN[k : k + 1])
        decision, state = scheduler.decide(obs, state)
        uploads.append(decision.upload)
        first = max(0, k + 1 - window_frames)
        x = np.array(uploads[first:])
        rolling = float(np.mean(DRIVE_L[first : k + 1] * ~x))
        assert rolling <= 0.12 * (1 + FIDELITY_RTOL)  # the check's own relative tolerance
        assert len(state.past_upload) <= window_frames - 1
    assert 0 < sum(uploads) < len(uploads)  # it did switch contents


def test_decide_is_pure_and_tracks_the_last_stamp():
    scheduler = GscloScheduler(SchedulerConfig(window_frames=4))
    state = GscloState((0.3, 0.2), (False, True), 10)
    obs = GscloObservation(11, DRIVE_L[:2], DRIVE_GAIN[:2])
    first, next_state = scheduler.decide(obs, state)
    again, _ = scheduler.decide(obs, state)
    assert state == GscloState((0.3, 0.2), (False, True), 10)
    assert first.upload == again.upload and first.power_w == again.power_w
    assert next_state.last_stamp_ns == 11 and len(next_state.past_upload) == 3


def test_overspent_past_forces_every_useful_upload():
    config = SchedulerConfig(fidelity_budget=0.05, window_frames=6)
    state = GscloState((0.9, 0.9, 0.9), (False, False, False), 3)
    obs = GscloObservation(4, np.array([0.1, 0.0, 0.2]), DRIVE_GAIN[:3])
    decision, _ = GscloScheduler(config).decide(obs, state)
    assert decision.horizon_budget == 0.0
    assert decision.plan.upload.tolist() == [True, False, True]


def test_observation_image_sizes_override_the_payload():
    config = SchedulerConfig(payload=PayloadConfig(), window_frames=3)
    big = GscloObservation(1, np.full(3, 0.5), np.full(3, 1e-10), np.full(3, 4e6))
    small = GscloObservation(1, np.full(3, 0.5), np.full(3, 1e-10))
    scheduler = GscloScheduler(config)
    e_big = scheduler.decide(big, GscloState())[0].energy_j
    e_small = scheduler.decide(small, GscloState())[0].energy_j
    assert e_big > e_small


def test_channel_that_fails_even_the_pose_is_a_reported_miss():
    config = SchedulerConfig(link=LinkConfig(max_power_w=1e-6), window_frames=3)
    obs = GscloObservation(1, np.full(3, 0.1), np.full(3, 1e-16))
    decision, _ = GscloScheduler(config).decide(obs, GscloState())
    assert decision.deadline_miss and decision.plan.status == "deadline_miss"


@pytest.mark.parametrize(
    ("obs", "state", "match"),
    [
        (GscloObservation(5, np.full(3, 0.1), np.full(3, 1e-10)), GscloState((), (), 5), "stamp"),
        (GscloObservation(1, np.full(9, 0.1), np.full(9, 1e-10)), GscloState(), "window_frames"),
        (GscloObservation(1, np.full((2, 2), 0.1), np.full(4, 1e-10)), GscloState(), "shape"),
        (GscloObservation(1, np.full(3, 0.1), np.full(2, 1e-10)), GscloState(), "channel_gain"),
        (GscloObservation(1, np.full(3, -0.1), np.full(3, 1e-10)), GscloState(), "discrepancy"),
    ],
)
def test_malformed_observation_raises_scheduler_error(obs, state, match):
    with pytest.raises(SchedulerError, match=match):
        GscloScheduler(SchedulerConfig(window_frames=8)).decide(obs, state)


@pytest.mark.parametrize(
    ("field", "value"),
    [("fidelity_budget", -0.1), ("window_frames", 0), ("window_frames", 2.5), ("method", "x")],
)
def test_bad_scheduler_setting_raises_an_error_naming_it(field, value):
    with pytest.raises(SchedulerError, match=field):
        SchedulerConfig(**{field: value})


@pytest.mark.parametrize("horizon", [1, 4, 10])
def test_block_budget_holds_in_every_block_and_resets(horizon):
    window = 10
    config = SchedulerConfig(fidelity_budget=0.12, window_frames=window, budget_mode="block")
    scheduler, state = GscloScheduler(config), GscloState()
    uploads = []
    for k in range(DRIVE_L.shape[0]):
        # perfect forecasts: the next frames' true values (the horizon is cut at the block end)
        obs = GscloObservation(k + 1, DRIVE_L[k : k + horizon], DRIVE_GAIN[k : k + horizon])
        decision, state = scheduler.decide(obs, state)
        uploads.append(decision.upload)
        assert len(decision.plan.upload) <= window - k % window
        assert len(state.past_upload) == (k + 1) % window
    x = np.array(uploads).reshape(-1, window)
    per_block = np.mean(DRIVE_L.reshape(-1, window) * ~x, axis=1)
    assert np.all(per_block <= 0.12 * (1 + FIDELITY_RTOL))


def test_whole_block_horizon_with_true_values_is_the_offline_plan():
    config = SchedulerConfig(fidelity_budget=0.1, window_frames=20, budget_mode="block")
    scheduler, state = GscloScheduler(config), GscloState()
    offline = solve_apo(GscloProblem(DRIVE_L[:20], DRIVE_GAIN[:20], 0.1, config.link))
    energy = 0.0
    for k in range(20):
        obs = GscloObservation(k + 1, DRIVE_L[k:20], DRIVE_GAIN[k:20])
        decision, state = scheduler.decide(obs, state)
        energy += decision.energy_j
    # re-planning with known futures can only keep or improve on the first plan's cost
    # (each re-plan includes the rest of the previous plan as a candidate; APO may still
    # pick another, so allow its measured 0.1 % drive gap)
    assert energy <= offline.total_energy_j * 1.01
