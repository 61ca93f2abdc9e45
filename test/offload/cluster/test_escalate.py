"""The escalating strategy of ``full``: cap -> pause -> resume/uncap, table-driven over
sequences of measured inflation (the co-runner's state fed back from the actions, as the
executor and the cluster would)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from offload.cluster.mitigation import MitigationConfig, MitigationState, decide
from offload.cluster.mitigation.escalate import EscalateConfig, EscalateState
from offload.cluster.mitigation.escalate import decide as escalate
from offload.cluster.mitigation.interface import (
    CoRunnerView,
    EvictCoRunner,
    MitigationError,
    Observation,
    PauseCoRunner,
    ReplicaView,
    ResumeCoRunner,
    ThrottleCoRunner,
)

NAN = float("nan")
CONFIG = EscalateConfig(
    target_inflation=1.3,
    resume_below=1.15,
    floor_cores=0.1,
    pause_after=3,
    raise_after=2,
    raise_factor=2.0,
    uncap_at_cores=1.0,
    cooldown_s=3.0,
)


def _obs(t: float, infl: float, c: CoRunnerView, resumed: float = NAN) -> Observation:
    """r0 (cpu 0) is idle and clean; r1 (cpu 1) serves everything at ``infl``; the co-runner
    ``c`` is pinned to cpu 1."""
    reps = (
        ReplicaView("r0", (0,), cpi=10.0, reference_cpi=10.0, rate_per_s=0.0),
        ReplicaView(
            "r1",
            (1,),
            cpi=10.0 * infl,
            reference_cpi=10.0,
            rate_per_s=5.0,
            predicted_cpi_resumed=10.0 * resumed,
        ),
    )
    return Observation(t, 2.0, 1.5, reps, (c,))


def _run(levels: list[float], config: EscalateConfig = CONFIG) -> list[str]:
    """Feeds ``levels`` (r1's inflation per interval, 1 s apart) and returns what happened per
    interval: "-" nothing, "cap X" / "uncap", "pause", "resume", "evict"."""
    c = CoRunnerView("hog", "cpu", (1,), cpu_used=1.0)
    state, out = EscalateState(), []
    for t, x in enumerate(levels):
        # a paused co-runner's what-if: the level it caused before its pause
        actions, state = escalate(_obs(float(t), x, c, resumed=x), state, config)
        words = []
        for a in actions:
            if isinstance(a, ThrottleCoRunner):
                c = replace(c, limit_cores=a.cores)
                words.append("uncap" if a.cores is None else f"cap {a.cores:g}")
            elif isinstance(a, PauseCoRunner):
                c = replace(c, state="paused", cpu_used=0.0)
                words.append("pause")
            elif isinstance(a, ResumeCoRunner):
                c = replace(c, state="running", cpu_used=c.limit_cores or 1.0)
                words.append("resume")
            elif isinstance(a, EvictCoRunner):
                c = replace(c, state="evicted", cpu_used=0.0)
                words.append("evict")
        out.append(" + ".join(words) or "-")
        if c.state == "running" and c.limit_cores is not None:
            c = replace(c, cpu_used=c.limit_cores)  # a capped hog uses its whole cap
    return out


@pytest.mark.parametrize(
    ("levels", "expected"),
    [
        # capping works: 2.0 -> cap at 1.0 x 0.3 / 1.0 = 0.3; in the dead band (1.2) nothing
        # moves; under 1.15 for 2 intervals the cap doubles, until it is lifted; never a pause
        (
            [2.0, 1.2, 1.1, 1.1, 1.1, 1.1, 1.1, 1.1],
            ["cap 0.3", "-", "-", "cap 0.6", "-", "uncap", "-", "-"],
        ),
        # capping fails: 0.3, then the floor (0.3 x 0.3 / 0.9 = 0.1), then 3 intervals over the
        # objective at the floor before the pause; no resume before the 3 s cool-down, then
        # back at the floor cap once the what-if is harmless
        (
            [2.0, 1.9, 1.8, 1.8, 1.8, 1.0, 1.0, 1.0, 1.0],
            ["cap 0.3", "cap 0.1", "-", "-", "pause", "-", "-", "cap 0.1 + resume", "-"],
        ),
        # a paused co-runner stays paused while its return is predicted harmful (what-if 1.2
        # is over resume_below 1.15 even though the level itself is fine)
        (
            [2.0, 1.9, 1.8, 1.8, 1.8, 1.2, 1.2, 1.2, 1.2],
            ["cap 0.3", "cap 0.1", "-", "-", "pause", "-", "-", "-", "-"],
        ),
        # the objective met again at the floor: the count of failed intervals starts over
        (
            [2.0, 1.9, 1.8, 1.8, 1.2, 1.8, 1.8, 1.8],
            ["cap 0.3", "cap 0.1", "-", "-", "-", "-", "-", "pause"],
        ),
    ],
)
def test_escalation_caps_first_pauses_only_when_capping_fails_then_resumes_with_hysteresis(
    levels: list[float], expected: list[str]
) -> None:
    assert _run(levels) == expected


def test_a_corunner_paused_too_often_is_evicted() -> None:
    config = replace(CONFIG, evict_after_pauses=1, cooldown_s=0.0, pause_after=1)
    # pause (at the floor after two caps), back at once, over again: evicted, not paused
    levels = [2.0, 1.9, 1.8, 1.0, 1.8, 1.8, 1.8]
    assert _run(levels, config) == [
        "cap 0.3",
        "cap 0.1",
        "pause",
        "cap 0.1 + resume",
        "evict",
        "-",
        "-",
    ]


@pytest.mark.parametrize(
    ("used", "limit", "duty", "infl", "cap"),
    [
        (0.2, None, 0.2, 1.5, 0.12),  # a duty-cycled co-runner: 0.2 used x 0.3 / 0.5
        (0.0, None, 1.0, 2.0, 0.3),  # just started (no use measured yet): its nominal 1 core
        (0.1, 0.8, 1.0, 1.5, 0.48),  # capped: proportional to its cap, 0.8 x 0.3 / 0.5
        (1.0, None, 1.0, 1.2, 0.5),  # r1 within the target: one step down (1.0 / raise_factor 2)
        (0.3, None, 1.0, 9.0, 0.1),  # never under the floor
    ],
)
def test_the_cap_is_proportional_to_the_excess_inflation(
    used: float, limit: float | None, duty: float, infl: float, cap: float
) -> None:
    c = CoRunnerView("hog", "cpu", (1,), cpu_used=used, limit_cores=limit, duty=duty)
    config = replace(CONFIG, target_inflation=1.3, p99_objective_ms=300.0)
    o = _obs(0.0, infl, c)
    o = replace(o, replicas=(o.replicas[0], replace(o.replicas[1], latency_p99_ms=400.0)))
    actions, _ = escalate(o, EscalateState(), config)
    assert len(actions) == 1 and actions[0].name == "hog"
    assert actions[0].cores == pytest.approx(cap)


def test_steered_around_interference_costs_no_best_effort_work() -> None:
    """r1 slow but serving nothing: the requests meet r0's 1.0, under the objective."""
    c = CoRunnerView("hog", "cpu", (1,), cpu_used=1.0)
    o = _obs(0.0, 3.0, c)
    o = replace(o, replicas=(replace(o.replicas[0], rate_per_s=5.0), o.replicas[1]))
    o = replace(o, replicas=(o.replicas[0], replace(o.replicas[1], rate_per_s=0.0)))
    assert escalate(o, EscalateState(), CONFIG)[0] == []


def test_a_p99_objective_triggers_capping_where_the_inflation_looks_fine() -> None:
    c = CoRunnerView("hog", "cpu", (1,), cpu_used=1.0)
    o = _obs(0.0, 1.2, c)
    slow = replace(o.replicas[1], latency_p99_ms=400.0)
    o = replace(o, replicas=(o.replicas[0], slow))
    assert escalate(o, EscalateState(), CONFIG)[0] == []
    config = replace(CONFIG, p99_objective_ms=300.0)
    assert [type(a) for a in escalate(o, EscalateState(), config)[0]] == [ThrottleCoRunner]


def test_full_escalates_and_full_pause_pauses_at_once() -> None:
    c = CoRunnerView("hog", "cpu", (1,), cpu_used=1.0)
    o = _obs(0.0, 2.0, c)
    full, _ = decide(o, MitigationState(), MitigationConfig("full"))
    assert [a.name for a in full if isinstance(a, ThrottleCoRunner)] == ["hog"]
    assert not any(isinstance(a, PauseCoRunner) for a in full)
    cfg = MitigationConfig("full-pause")
    _, st = decide(o, MitigationState(), cfg)
    again, _ = decide(replace(o, t_s=1.0), st, cfg)  # evict's 2 intervals sustained
    assert [type(a) for a in again if isinstance(a, PauseCoRunner)] == [PauseCoRunner]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"target_inflation": 1.0}, "target_inflation"),
        ({"resume_below": 1.7}, "resume_below"),
        ({"floor_cores": 0.0}, "floor_cores"),
        ({"floor_cores": 2.0}, "floor_cores"),
        ({"pause_after": 0}, "pause_after"),
        ({"raise_factor": 1.0}, "raise_factor"),
        ({"p99_objective_ms": 0.0}, "p99_objective_ms"),
    ],
)
def test_escalation_settings_are_validated(kwargs: dict, field: str) -> None:
    with pytest.raises(MitigationError, match=field):
        EscalateConfig(**kwargs)


def test_escalation_acts_on_interference_not_on_the_replicas_own_load() -> None:
    """A busy replica inflates its own probe (solo inflation 1.8 at its load): measured 2.0
    is only 1.11x of that, under the objective, so nothing is capped; the same 2.0 on a replica
    whose solo inflation is 1 is interference and gets the hog capped; the what-if of a paused
    co-runner is judged the same way."""
    hog = CoRunnerView("hog", "cpu", (1,), cpu_used=1.0)

    def obs(solo: float) -> Observation:
        r1 = ReplicaView(
            "r1", (1,), cpi=20.0, reference_cpi=10.0, rate_per_s=5.0, solo_inflation=solo
        )
        return Observation(0.0, 2.0, 1.5, (r1,), (hog,))

    assert obs(1.8).replicas[0].interference() == pytest.approx(2.0 / 1.8)
    assert obs(1.8).served_interference() == pytest.approx(2.0 / 1.8)
    assert escalate(obs(1.8), EscalateState(), CONFIG)[0] == []
    (cap,) = escalate(obs(1.0), EscalateState(), CONFIG)[0]
    assert isinstance(cap, ThrottleCoRunner) and cap.cores == pytest.approx(0.3)
    # paused, cool-down over: resumed only if the what-if over the solo level is harmless
    paused = replace(hog, state="paused", cpu_used=0.0)
    state = EscalateState(paused_at={"hog": -10.0})
    for solo, resumed in ((1.8, True), (1.0, False)):
        r1 = ReplicaView(
            "r1",
            (1,),
            cpi=10.0,
            reference_cpi=10.0,
            rate_per_s=5.0,
            predicted_cpi_resumed=20.0,
            solo_inflation=solo,
        )
        actions, _ = escalate(Observation(0.0, 2.0, 1.5, (r1,), (paused,)), state, CONFIG)
        assert any(isinstance(a, ResumeCoRunner) for a in actions) is resumed
