"""Mitigation strategies, table-driven: CPU suppress, pause/evict, steering, placement."""

from __future__ import annotations

from dataclasses import replace

import pytest

from offload.cluster.mitigation import (
    MitigationConfig,
    MitigationState,
    Observation,
    ReplicaView,
    decide,
    evict,
    placement,
    qos,
    steer,
    suppress,
)
from offload.cluster.mitigation.interface import (
    CoRunnerView,
    EvictCoRunner,
    MitigationError,
    PauseCoRunner,
    ResumeCoRunner,
    SetBeLimit,
    SetBeWeight,
    SetWeights,
    ThrottleCoRunner,
)

NAN = float("nan")


def obs(
    node: float = 1.0,
    ls: tuple[float, ...] = (0.3, 0.3),
    be: tuple[float, ...] = (0.4,),
    cap: float = 2.0,
    t: float = 0.0,
    infl: tuple[float, ...] = (1.0, 1.0),
    resumed: tuple[float, ...] = (NAN, NAN),
    states: tuple[str, ...] = ("running",),
    be_cpus: tuple[tuple[int, ...], ...] = ((1,),),
) -> Observation:
    replicas = tuple(
        ReplicaView(
            f"r{i}",
            (i,),
            cpu_used=u,
            cpi=10.0 * x,
            reference_cpi=10.0,
            predicted_cpi=10.0 * x,
            predicted_cpi_resumed=10.0 * w,
        )
        for i, (u, x, w) in enumerate(zip(ls, infl, resumed, strict=True))
    )
    corunners = tuple(
        CoRunnerView(f"c{i}", "cpu", cpus, u, s)
        for i, (u, s, cpus) in enumerate(zip(be, states, be_cpus, strict=True))
    )
    return Observation(t, cap, node, replicas, corunners)


# -- CPU suppress -------------------------------------------------------------------------------
# budget = cap x 0.65 - LS - system, system = node - LS - BE, floor = cap x min_frac
@pytest.mark.parametrize(
    ("node", "ls", "be", "current", "expected"),
    [
        (1.0, (0.3, 0.3), (0.4,), None, 2 * 0.65 - 0.6),  # no system use: 0.7
        (1.5, (0.3, 0.3), (0.4,), None, 2 * 0.65 - 0.6 - 0.5),  # 0.5 system: 0.2
        (2.0, (0.6, 0.6), (0.4,), None, 2 * 0.05),  # LS + system over the threshold: the floor
        (1.0, (0.3, 0.3), (0.4,), 0.705, None),  # within the 1% dead band (0.02 cores): skip
        (1.0, (0.3, 0.3), (0.4,), 0.3, 0.3 + 0.2),  # rises at most 10% of the node per step
        (0.6, (0.1, 0.1), (0.4,), 1.5, 2 * 0.65 - 0.2),  # falls at once: 1.1
        (2.0, (0.6, 0.6), (0.4,), 0.1, None),  # already at the floor: nothing to write
        (2.0, (0.6, 0.6), (0.4,), 0.105, 0.1),  # a tiny step *to* the floor is still written
    ],
)
def test_cpu_suppress_follows_koordinators_formula_and_guards(
    node: float, ls: tuple, be: tuple, current: float | None, expected: float | None
) -> None:
    config = suppress.SuppressConfig()
    actions, state = suppress.decide(obs(node, ls, be), suppress.SuppressState(current), config)
    if expected is None:
        assert actions == [] and state.limit_cores == current
    else:
        (a,) = actions
        assert isinstance(a, SetBeLimit) and a.cores == pytest.approx(expected, abs=1e-4)
        assert state.limit_cores == a.cores and "budget" in a.reason


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"threshold_frac": 0.0}, "threshold_frac"),
        ({"min_frac": 0.9}, "min_frac"),
        ({"dead_band_frac": 0.6}, "dead_band_frac"),
        ({"max_increase_frac": 0.0}, "max_increase"),
    ],
)
def test_suppress_settings_are_validated(kwargs: dict, field: str) -> None:
    with pytest.raises(MitigationError, match=field):
        suppress.SuppressConfig(**kwargs)


# -- pause / evict --------------------------------------------------------------------------------
def test_a_sustained_inflation_pauses_the_corunner_sharing_the_replicas_core() -> None:
    config = evict.EvictConfig(sustain_intervals=2)
    o = obs(infl=(1.0, 2.0), be=(0.9, 0.5), states=("running", "running"), be_cpus=((0,), (1,)))
    a1, s = evict.decide(o, evict.EvictState(), config)
    assert a1 == []  # one interval above is not yet sustained
    a2, s = evict.decide(replace(o, t_s=1.0), s, config)
    assert [type(a) for a in a2] == [PauseCoRunner] and a2[0].name == "c1"  # on r1's core
    assert s.paused_at == {"c1": 1.0}


@pytest.mark.parametrize(
    ("t", "resumed", "expect"),
    [
        (5.0, 1.0, None),  # cool-down (10 s) not over
        (12.0, 1.5, None),  # over, but resuming is predicted to hurt (1.5 >= 1.3)
        (12.0, 1.1, ResumeCoRunner),  # over and predicted harmless
        (12.0, NAN, ResumeCoRunner),  # no what-if: the current inflation (1.0) decides
    ],
)
def test_a_paused_corunner_resumes_after_the_cooldown_when_predicted_harmless(
    t: float, resumed: float, expect: type | None
) -> None:
    state = evict.EvictState(paused_at={"c0": 0.0}, pauses={"c0": (0.0,)})
    o = obs(t=t, states=("paused",), infl=(1.0, 1.0), resumed=(resumed, resumed))
    actions, _ = evict.decide(o, state, evict.EvictConfig())
    assert [type(a) for a in actions] == ([expect] if expect else [])


def test_a_corunner_paused_too_often_is_evicted() -> None:
    config = evict.EvictConfig(sustain_intervals=1, evict_after_pauses=2, window_s=100.0)
    state = evict.EvictState(pauses={"c0": (10.0, 40.0)})
    actions, _ = evict.decide(obs(t=50.0, infl=(2.0, 1.0), be_cpus=((0,),)), state, config)
    assert [type(a) for a in actions] == [EvictCoRunner]
    # pauses older than the window do not count
    actions, _ = evict.decide(obs(t=500.0, infl=(2.0, 1.0), be_cpus=((0,),)), state, config)
    assert [type(a) for a in actions] == [PauseCoRunner]


# -- steering ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("infl", "expected"),
    [
        ((1.0, 1.0), {"r0": 1.0, "r1": 1.0}),
        ((1.0, 2.0), {"r0": 1.0, "r1": 0.5}),  # 1 / 2: proportional to predicted speed
        ((1.0, 30.0), {"r0": 1.0, "r1": 0.05}),  # clipped at min_weight
        ((NAN, 2.0), {"r0": 1.0, "r1": 0.5}),  # unknown counts as 1
    ],
)
def test_steering_weights_follow_predicted_interference(infl: tuple, expected: dict) -> None:
    config = steer.SteerConfig(smoothing=1.0)
    assert steer.target_weights(obs(infl=infl), config) == pytest.approx(expected)
    sharp = steer.target_weights(obs(infl=infl), replace(config, sharpness=2.0))
    assert sharp["r1"] == pytest.approx(max(0.05, expected["r1"] ** 2))


def test_steering_counts_interference_not_the_replicas_own_load() -> None:
    """r1 is busier (its own work inflates its probe 2x at its load) but has no co-runner:
    its interference is 1, so it keeps its full weight; the router counts its queue."""
    views = (
        ReplicaView("r0", (0,), cpi=10.0, reference_cpi=10.0, rate_per_s=1.0),
        ReplicaView("r1", (1,), cpi=20.0, reference_cpi=10.0, rate_per_s=9.0, solo_inflation=2.0),
    )
    o = Observation(0.0, 2.0, 1.0, views, ())
    assert steer.target_weights(o, steer.SteerConfig()) == {"r0": 1.0, "r1": 1.0}


def test_steering_smooths_and_skips_changes_inside_the_dead_band() -> None:
    config = steer.SteerConfig(smoothing=0.5, dead_band=0.05)
    a, s = steer.decide(obs(infl=(1.0, 4.0)), steer.SteerState(), config)
    assert isinstance(a[0], SetWeights) and a[0].weights["r1"] == pytest.approx(0.25)
    a, s = steer.decide(obs(infl=(1.0, 1.0)), s, config)  # halfway back: 0.625
    assert a[0].weights["r1"] == pytest.approx(0.625)
    a, s = steer.decide(
        obs(infl=(1.0, 1.05)),
        replace(s, weights={"r0": 1.0, "r1": 0.9}),
        replace(config, dead_band=0.5),
    )
    assert a == []


# -- placement -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("cands", "cpus"),
    [
        ((((0,), 1.8, 0, 0.0), ((1,), 1.1, 1, 0.9)), (1,)),  # least predicted inflation wins
        ((((0,), 1.0, 0, 0.5), ((1,), 1.6, 0, 0.0)), (0,)),
        ((((0,), 1.02, 1, 0.0), ((1,), 1.0, 0, 0.0)), (1,)),  # a tie: fewer LS replicas
        ((((0,), NAN, 0, 0.9), ((1,), NAN, 0, 0.1)), (1,)),  # no prediction: least BE CPU
        ((((0,), NAN, 0, 0.0), ((1,), 1.5, 0, 0.0)), (1,)),  # a prediction beats none
    ],
)
def test_placement_picks_the_least_interfered_cpus(cands: tuple, cpus: tuple) -> None:
    cs = tuple(placement.Candidate(c, i, n, b) for c, i, n, b in cands)
    (a,), _ = placement.decide(cs, placement.PlacementState())
    assert a.cpus == cpus


def test_placement_without_candidates_is_an_error() -> None:
    with pytest.raises(MitigationError, match="candidate"):
        placement.decide((), placement.PlacementState())


# -- variants ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("variant", "kinds"),
    [
        ("off", set()),
        ("suppress", {SetBeLimit}),
        ("steer", {SetWeights}),
        ("qos", {SetBeWeight}),
        ("koordinator", {SetBeWeight, SetBeLimit}),
        # caps the hog next to r1
        ("full", {SetBeWeight, SetWeights, SetBeLimit, ThrottleCoRunner}),
        ("full-pause", {SetBeWeight, SetWeights, SetBeLimit}),  # pauses after 2 intervals
    ],
)
def test_each_variant_runs_only_its_strategies(variant: str, kinds: set) -> None:
    actions, _ = decide(obs(infl=(1.0, 3.0)), MitigationState(), MitigationConfig(variant))
    assert {type(a) for a in actions} == kinds


def test_an_unknown_variant_is_refused() -> None:
    with pytest.raises(MitigationError, match="variant"):
        MitigationConfig("koordinator-plus")


def test_cpu_qos_asks_for_the_least_weight_until_the_group_has_it() -> None:
    config = qos.QosConfig()
    o = obs(infl=(1.0, 1.0))
    (a,), s = qos.decide(replace(o, be_shares=1024), qos.QosState(), config)
    assert isinstance(a, SetBeWeight) and a.shares == 2
    assert qos.decide(replace(o, be_shares=2), s, config)[0] == []  # applied: nothing to do
    assert qos.decide(o, s, config)[0] == []  # unknown weight, already asked for
    assert len(qos.decide(replace(o, be_shares=1024), s, config)[0]) == 1  # reset: ask again
    with pytest.raises(MitigationError, match="be_shares"):
        qos.QosConfig(be_shares=1)


# -- what full adds: prediction-aware suppress and traffic-weighted pausing -----------------------
def _served(infl: tuple[float, float], rates: tuple[float, float]) -> Observation:
    o = obs(infl=infl)
    reps = tuple(replace(r, rate_per_s=w) for r, w in zip(o.replicas, rates, strict=True))
    return replace(o, replicas=reps)


@pytest.mark.parametrize(
    ("infl", "rates", "threshold"),
    [
        ((1.0, 3.0), (10.0, 0.0), 0.80),  # requests meet 1.0 (< 1.25): threshold raised
        ((1.0, 3.0), (5.0, 5.0), 0.65),  # they meet 2.0: Koordinator's threshold
        ((NAN, NAN), (5.0, 5.0), 0.65),  # nothing known: no raise
    ],
)
def test_suppress_relaxes_only_while_requests_are_predicted_unharmed(
    infl: tuple, rates: tuple, threshold: float
) -> None:
    config = suppress.SuppressConfig(relax_frac=0.15)
    assert suppress.threshold(_served(infl, rates), config) == pytest.approx(threshold)
    # the suppress variant (no relax) is Koordinator's rule whatever the prediction
    assert suppress.threshold(_served(infl, rates), suppress.SuppressConfig()) == 0.65


@pytest.mark.parametrize(
    ("rates", "paused"),
    [
        ((10.0, 0.0), False),  # steering emptied the slow replica: no pause, BE work goes on
        ((2.0, 8.0), True),  # requests still meet the slow replica: pause its neighbour
    ],
)
def test_traffic_weighted_pausing_leaves_steered_around_interference_alone(
    rates: tuple, paused: bool
) -> None:
    config = evict.EvictConfig(sustain_intervals=1, traffic_weighted=True)
    actions, _ = evict.decide(_served((1.0, 3.0), rates), evict.EvictState(), config)
    assert [type(a) for a in actions] == ([PauseCoRunner] if paused else [])
    if paused:
        assert actions[0].name == "c0"  # the co-runner on r1's cpu (obs(): be_cpus ((1,),))
