"""MAD control law: table-driven decisions, budgets, hysteresis and input validation."""

from __future__ import annotations

import pytest

from planning.croa.mad import (
    MadAction,
    MadConfig,
    MadController,
    MadError,
    MadObservation,
    MadState,
)

SEC = 1_000_000_000


@pytest.mark.parametrize(
    ("score", "occlusion", "action", "reason"),
    [
        (None, None, MadAction.PLAN, "missing"),
        (0.3, 0.1, MadAction.PLAN, "low confidence"),
        (0.9, 0.6, MadAction.PLAN, "occluded"),
        (0.9, None, MadAction.PLAN, "unknown"),
        (0.9, 0.1, MadAction.DONE_DETECTED, "confident"),
        (0.5, 0.3, MadAction.DONE_DETECTED, "confident"),  # both thresholds are inclusive
    ],
)
def test_first_decision_follows_the_thresholds(
    score: float | None, occlusion: float | None, action: MadAction, reason: str
) -> None:
    decision, state = MadController().decide(MadObservation(0, (0.0, 0.0), score, occlusion))
    assert decision.action is action and reason in decision.reason
    assert state.cycles == (1 if action is MadAction.PLAN else 0)


def test_confirm_cycles_needs_consecutive_confident_detections() -> None:
    mad = MadController(MadConfig(confirm_cycles=2))
    confident, occluded = (0.9, 0.1), (0.9, 0.8)
    state = None
    actions = []
    for k, (score, occ) in enumerate([confident, occluded, confident, confident]):
        decision, state = mad.decide(MadObservation(k * SEC, (0.0, 0.0), score, occ), state)
        actions.append(decision.action)
    assert actions == [MadAction.PLAN, MadAction.PLAN, MadAction.PLAN, MadAction.DONE_DETECTED]


@pytest.mark.parametrize(
    ("config", "step_s", "step_m", "cycles_before_stop", "budget"),
    [
        (MadConfig(max_cycles=3), 1.0, 0.0, 3, "cycles"),
        (MadConfig(max_time_s=2.5), 1.0, 0.0, 3, "time_s"),
        (MadConfig(max_distance_m=5.0), 1.0, 2.0, 3, "distance_m"),
    ],
)
def test_budgets_end_the_loop(
    config: MadConfig, step_s: float, step_m: float, cycles_before_stop: int, budget: str
) -> None:
    mad, state = MadController(config), None
    for k in range(10):
        obs = MadObservation(int(k * step_s * SEC), (k * step_m, 0.0), None)
        decision, state = mad.decide(obs, state)
        if decision.action is not MadAction.PLAN:
            break
    assert decision.action is MadAction.DONE_BUDGET and budget in decision.reason
    assert k == cycles_before_stop


def test_distance_accumulates_between_cycles() -> None:
    mad, state = MadController(), MadState()
    for xy in [(0.0, 0.0), (3.0, 4.0), (3.0, 0.0)]:
        _, state = mad.decide(MadObservation(0, xy, None), state)
    assert state.distance_m == pytest.approx(9.0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"stamp_ns": 1.5}, "stamp_ns"),
        ({"robot_xy_m": (float("nan"), 0.0)}, "robot_xy_m"),
        ({"target_score": 1.5}, "target_score"),
        ({"target_occlusion": -0.1}, "target_occlusion"),
    ],
)
def test_malformed_observations_raise(kwargs: dict, match: str) -> None:
    base = {"stamp_ns": 0, "robot_xy_m": (0.0, 0.0), "target_score": 0.5}
    with pytest.raises(MadError, match=match):
        MadObservation(**{**base, **kwargs})


@pytest.mark.parametrize(
    "kwargs", [{"min_confidence": 1.5}, {"confirm_cycles": 0}, {"max_time_s": 0.0}]
)
def test_bad_settings_raise(kwargs: dict) -> None:
    with pytest.raises(MadError, match=next(iter(kwargs))):
        MadConfig(**kwargs)
