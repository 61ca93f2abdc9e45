"""GSCLO window problem: validation, the knapsack reduction and schedule statuses."""

from __future__ import annotations

import numpy as np
import pytest

from planning.gsclo.channel import LinkConfig, PayloadConfig
from planning.gsclo.problem import GscloProblem, ProblemError, evaluate_schedule

RNG = np.random.default_rng(11)
L = RNG.uniform(0.0, 0.4, 12)
GAIN = 10.0 ** -RNG.uniform(9.0, 12.0, 12)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"discrepancy": L[:5]}, "channel_gain"),
        ({"discrepancy": -L}, "discrepancy"),
        ({"discrepancy": np.array([])}, "discrepancy"),
        ({"discrepancy": L.reshape(3, 4)}, "discrepancy"),
        ({"channel_gain": np.where(np.arange(12) == 3, 0.0, GAIN)}, "channel_gain"),
        ({"channel_gain": np.where(np.arange(12) == 3, np.nan, GAIN)}, "channel_gain"),
        ({"fidelity_budget": -0.1}, "fidelity_budget"),
        ({"fidelity_budget": np.inf}, "fidelity_budget"),
        ({"image_bits": 100.0}, "image_bits"),
        ({"image_bits": np.full(5, 1e6)}, "image_bits"),
        ({"pose_bits": 0.0}, "pose_bits"),
    ],
)
def test_bad_input_raises_an_error_naming_the_field(kwargs, match):
    args = {"discrepancy": L, "channel_gain": GAIN, "fidelity_budget": 0.1} | kwargs
    with pytest.raises(ProblemError, match=match):
        GscloProblem(**args)


def test_inputs_are_copied_and_read_only():
    disc = L.copy()
    problem = GscloProblem(disc, GAIN, 0.1)
    disc[0] = 99.0
    assert problem.discrepancy[0] == L[0]
    with pytest.raises(ValueError, match="read-only"):
        problem.discrepancy[0] = 1.0


@pytest.mark.parametrize("circuit_power_w", [0.0, 0.1])
@pytest.mark.parametrize("seed", range(4))
def test_energy_is_pose_energy_plus_extra_upload_energy(circuit_power_w, seed):
    problem = GscloProblem(L, GAIN, 0.1, LinkConfig(circuit_power_w=circuit_power_w))
    upload = np.random.default_rng(seed).random(12) < 0.5
    schedule = evaluate_schedule(problem, upload, method="test")
    reduced = problem.pose_cost.energy_j.sum() + problem.upload_extra_energy_j @ upload
    # Same 12 numbers summed in two orders: 1e-12 relative is a few hundred ulps of margin.
    np.testing.assert_allclose(schedule.total_energy_j, reduced, rtol=1e-12)
    np.testing.assert_allclose(schedule.fidelity, np.mean(L * ~upload), rtol=1e-15)
    assert np.all(problem.upload_extra_energy_j > 0.0)


def test_from_payload_uses_the_payload_sizes():
    payload = PayloadConfig(image_bits_override=2e5, pose_bits=500.0)
    problem = GscloProblem.from_payload(L, GAIN, 0.1, LinkConfig(), payload)
    assert np.all(problem.image_bits == 2e5) and problem.pose_bits == 500.0


def test_deadline_power_is_used_when_the_link_allows_it():
    link = LinkConfig()
    problem = GscloProblem(L, GAIN, 0.1, link)
    feasible = problem.upload_feasible
    assert feasible.any()
    # The deadline is met with equality by the optimal power (P_c = 0): rounding only.
    np.testing.assert_allclose(problem.upload_cost.latency_s[feasible], link.deadline_s, rtol=1e-12)


def test_pose_that_cannot_meet_the_deadline_is_reported_not_raised():
    problem = GscloProblem(L, np.full(12, 1e-19), 0.5, LinkConfig(max_power_w=1e-3))
    schedule = evaluate_schedule(problem, np.zeros(12, dtype=bool), method="test")
    assert schedule.status == "deadline_miss"
    assert schedule.num_deadline_misses == 12
    assert "deadline_s" in schedule.message
    assert np.all(schedule.power_w == 1e-3)


@pytest.mark.parametrize(
    ("budget", "upload", "status"),
    [
        (1.0, np.zeros(12, dtype=bool), "feasible"),  # budget above every L_t
        (0.0, np.zeros(12, dtype=bool), "violates_constraints"),
        (0.0, np.ones(12, dtype=bool), "feasible"),
    ],
)
def test_fidelity_budget_decides_the_status(budget, upload, status):
    problem = GscloProblem(L, np.full(12, 1e-9), budget)  # strong channel: all uploads feasible
    assert evaluate_schedule(problem, upload, method="test").status == status


def test_unreachable_budget_is_reported_as_fidelity_infeasible():
    gain = np.where(np.arange(12) < 6, 1e-9, 1e-14)  # half the uploads cannot meet tau
    problem = GscloProblem(L, gain, 0.0)
    assert not problem.fidelity_reachable
    schedule = evaluate_schedule(problem, problem.upload_feasible.copy(), method="test")
    assert schedule.status == "fidelity_infeasible" and not schedule.fidelity_met


def test_late_upload_that_could_have_been_a_pose_violates_constraints():
    problem = GscloProblem(L, np.full(12, 1e-14), 1.0)  # uploads infeasible, poses feasible
    schedule = evaluate_schedule(problem, np.ones(12, dtype=bool), method="test")
    assert schedule.status == "violates_constraints"
    assert schedule.num_deadline_misses == 12


def test_upload_mask_must_be_boolean_with_one_entry_per_frame():
    problem = GscloProblem(L, GAIN, 0.1)
    with pytest.raises(ProblemError, match="upload"):
        evaluate_schedule(problem, np.ones(12), method="test")
    with pytest.raises(ProblemError, match="upload"):
        evaluate_schedule(problem, np.ones(5, dtype=bool), method="test")
