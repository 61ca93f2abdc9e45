"""The cluster simulation against queueing theory, its accounting, and its calibration."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from offload.cluster.autoscaling.calibration import (
    ConcurrencyCurve,
    ServiceModel,
    StartupModel,
)
from offload.cluster.autoscaling.interface import AutoscalingError, Observation
from offload.cluster.autoscaling.simulate import OK, SimConfig, simulate
from offload.cluster.autoscaling.traces import Trace, azure_csv, synthetic


@dataclass(frozen=True)
class Fixed:
    """Holds a count, or switches to ``then`` at ``at_s``."""

    n: int
    then: int = 0
    at_s: float = float("inf")
    name: str = "fixed"
    period_s: float = 5.0

    def initial_state(self):
        return None

    def decide(self, obs: Observation, state):
        return (self.then if obs.t_s >= self.at_s else self.n), state


def poisson(rate, duration, seed=0):
    rng = np.random.default_rng(seed)
    t = np.cumsum(rng.exponential(1 / rate, int(rate * duration * 1.2) + 50))
    t = t[t < duration]
    return Trace("poisson", t, rng.random(len(t)), duration)


def test_one_replica_matches_the_md1_mean_wait():
    # M/D/1 at rho = 0.6: Pollaczek-Khinchine mean sojourn = S + rho S / (2 (1 - rho))
    s, lam = 0.1, 6.0
    cfg = SimConfig(
        ServiceModel.constant(s), StartupModel.constant(1.0), slo_s=10.0, initial_replicas=1
    )
    run = simulate(poisson(lam, 4000.0), Fixed(1), cfg)
    expected = s + 0.6 * s / (2 * 0.4)
    assert run.latency_s.mean() == pytest.approx(expected, rel=0.03)  # 24k requests: ~1% s.e.


def test_replica_seconds_and_scale_up_lag():
    cfg = SimConfig(
        ServiceModel.constant(0.05), StartupModel.constant(7.0), slo_s=1.0, initial_replicas=2
    )
    run = simulate(poisson(5.0, 100.0), Fixed(2, then=4, at_s=30.0), cfg)
    # 2 replicas for 100 s, 2 more from t = 30 s (starting ones cost too)
    assert run.replica_seconds == pytest.approx(2 * 100 + 2 * 70, rel=1e-9)
    ready = {t: r for t, _, _, r, _ in run.timeline}
    assert ready[35.0] == 2 and ready[40.0] == 4  # 7 s start-up: ready at 37 s
    assert run.scaling_actions == 1


def test_removed_replicas_drain_before_ending():
    cfg = SimConfig(
        ServiceModel.constant(2.0),
        StartupModel.constant(1.0),
        slo_s=100.0,
        initial_replicas=4,
        deadline_s=1000.0,
    )
    burst = Trace("burst", np.linspace(0.0, 1.0, 40), np.full(40, 0.5), 60.0)
    run = simulate(burst, Fixed(4, then=1, at_s=5.0), cfg)
    assert np.all(run.status == OK)  # nothing lost by scaling down
    assert run.replica_seconds > 60 + 3 * 5  # the drained replicas lived past t = 5 s


def test_no_ready_replica_holds_requests_until_one_starts():
    cfg = SimConfig(
        ServiceModel.constant(0.01), StartupModel.constant(3.0), slo_s=1.0, initial_replicas=1
    )
    t = np.array([1.0, 12.0, 12.5])
    run = simulate(Trace("t", t, np.full(3, 0.5), 30.0), Fixed(0, then=1, at_s=10.0), cfg)
    # at 5 s the only replica goes; at 10 s a new one starts and serves from 13 s
    assert run.status[0] == OK
    assert run.latency_s[1] == pytest.approx(1.0 + 0.01) and run.latency_s[2] > 0.5


def test_interference_inflates_service_times():
    base = SimConfig(
        ServiceModel.constant(0.1), StartupModel.constant(1.0), slo_s=10.0, initial_replicas=4
    )
    slowed = SimConfig(**{**base.__dict__, "interference": ((0.0, 1e9, 2.0),)})
    trace = poisson(2.0, 200.0)
    a, b = simulate(trace, Fixed(4), base), simulate(trace, Fixed(4), slowed)
    assert np.median(b.latency_s) == pytest.approx(2 * np.median(a.latency_s), rel=1e-9)


def test_shared_cores_slow_concurrent_requests_by_processor_sharing():
    # two 1-s requests at t = 0 on two replicas: each on its own core, or both on one core
    trace = Trace("pair", np.zeros(2), np.full(2, 0.5), 10.0)
    own = SimConfig(ServiceModel.constant(1.0), StartupModel.constant(1.0), 100.0, None, 2)
    one_core = SimConfig(**{**own.__dict__, "node_speed": ConcurrencyCurve.cores(1).speed})
    assert simulate(trace, Fixed(2), own).latency_s.tolist() == pytest.approx([1.0, 1.0])
    assert simulate(trace, Fixed(2), one_core).latency_s.tolist() == pytest.approx([2.0, 2.0])
    # staggered: B arrives at 0.5 s; A has 0.5 s left, shares until 1.5 s, B ends alone at 2 s
    stag = Trace("stag", np.array([0.0, 0.5]), np.full(2, 0.5), 10.0)
    assert simulate(stag, Fixed(2), one_core).latency_s.tolist() == pytest.approx([1.5, 1.5])


def test_many_replicas_on_one_core_match_the_mg1_ps_mean_sojourn():
    # enough replicas that no request queues at one: the node is M/D/1 processor sharing,
    # mean sojourn S / (1 - rho) (insensitive to the service distribution), here 0.25 s
    s, lam = 0.1, 6.0
    cfg = SimConfig(
        ServiceModel.constant(s), StartupModel.constant(1.0), slo_s=100.0, initial_replicas=40,
        node_speed=ConcurrencyCurve.cores(1).speed,
    )  # fmt: skip
    run = simulate(poisson(lam, 4000.0), Fixed(40), cfg)
    assert run.latency_s.mean() == pytest.approx(s / (1 - 0.6), rel=0.05)  # 24k requests


def test_shared_cores_report_cpu_shares_not_whole_cores():
    seen = []

    @dataclass(frozen=True)
    class Watch(Fixed):
        def decide(self, obs, state):
            seen.append(obs)
            return super().decide(obs, state)

    # 4 replicas kept busy on a 2-core node: together they use 2 cores, not 4
    trace = Trace("busy", np.linspace(0.0, 18.0, 400), np.full(400, 0.5), 20.0)
    cfg = SimConfig(
        ServiceModel.constant(0.5), StartupModel.constant(1.0), slo_s=1e3, initial_replicas=4,
        deadline_s=1e4, node_speed=ConcurrencyCurve.cores(2).speed,
    )  # fmt: skip
    simulate(trace, Watch(4), cfg)
    cpu = sum(p.cpu_millicores for p in seen[1].pods) / 1000.0
    assert cpu == pytest.approx(2.0, rel=1e-6)


def test_concurrency_curve_from_latencies():
    # body latencies alone 1 s and 2 s; with 2 at once 1 s and 2 s (a free core each);
    # with 4 at once 2 s and 4 s (two cores shared by four): speeds 1, 2, 2 (k = 3 as k = 2)
    lat = {1: [[1.0], [2.0]], 2: [[1.0], [2.0]], 3: [[1.5], [3.0]], 4: [[2.0], [4.0]]}
    assert ConcurrencyCurve.from_latencies(lat).speed == pytest.approx((1.0, 2.0, 2.0, 2.0))
    # faster than alone is noise: capped at k; a dip below the previous speed is noise too
    noisy = {1: [[1.0]], 2: [[0.8]], 3: [[3.3]]}
    assert ConcurrencyCurve.from_latencies(noisy).speed == pytest.approx((1.0, 2.0, 2.0))
    assert ConcurrencyCurve.cores(2.5, up_to=4).speed == (1.0, 2.0, 2.5, 2.5)
    with pytest.raises(AutoscalingError):
        ConcurrencyCurve.from_latencies({2: [[1.0]]})
    with pytest.raises(AutoscalingError):
        SimConfig(ServiceModel.constant(1.0), StartupModel.constant(1.0), 1.0, node_speed=(0.0,))


def test_sustained_curve_from_throughputs():
    # 20 req/s alone; two clients 36 (1.8x); three 37 (two cores); four 35 (noise: kept at 1.85)
    curve = ConcurrencyCurve.from_throughput({1: 20.0, 2: 36.0, 3: 37.0, 4: 35.0})
    assert curve.speed == pytest.approx((1.0, 1.8, 1.85, 1.85))
    assert ConcurrencyCurve.from_throughput({1: 10.0, 2: 25.0}).speed == pytest.approx((1.0, 2.0))
    for bad in ({2: 5.0}, {1: 5.0, 3: 9.0}, {1: 0.0}):
        with pytest.raises(AutoscalingError):
            ConcurrencyCurve.from_throughput(bad)


def test_other_work_on_the_node_caps_the_curve_but_leaves_a_lone_request_its_core():
    curve = ConcurrencyCurve((1.0, 1.9, 2.0, 2.0))
    assert curve.minus_load(0.3).speed == pytest.approx((1.0, 1.7, 1.7, 1.7))
    assert curve.minus_load(0.0).speed == curve.speed
    assert curve.minus_load(1.5).speed == pytest.approx((1.0, 1.0, 1.0, 1.0))
    with pytest.raises(AutoscalingError):
        curve.minus_load(-0.1)


def test_service_model_recovers_its_medians_and_spread():
    truth = ServiceModel((0.0, 0.5, 1.0), (0.1, 0.2, 0.4), log_std=0.3)
    rng = np.random.default_rng(0)
    rank = rng.random(20_000)
    fitted = ServiceModel.from_samples(rank, truth.sample(rank, rng), bins=8)
    grid = np.linspace(0.05, 0.95, 10)
    # bin medians of 2500 samples each: a few % from the piecewise-linear truth
    assert fitted.median_s(grid) == pytest.approx(truth.median_s(grid), rel=0.08)
    assert fitted.log_std == pytest.approx(0.3, rel=0.08)
    mean, cv2 = truth.moments()
    assert mean > 0 and 0 < cv2 < 1


@pytest.mark.parametrize("bad", [[], [1.0, -1.0]])
def test_service_model_refuses_bad_samples(bad):
    with pytest.raises(AutoscalingError):
        ServiceModel.from_samples(np.zeros(len(bad)), np.asarray(bad))


def test_azure_trace_reads_arrivals_and_size_ranks(tmp_path):
    csv = tmp_path / "t.csv"
    csv.write_text(
        "TIMESTAMP,ContextTokens,GeneratedTokens\n"
        "2023-11-16 18:15:46.5,300,10\n2023-11-16 18:15:47.0,100,10\n2023-11-16 18:15:49.5,200,5\n"
    )
    tr = azure_csv(csv)
    assert tr.times_s.tolist() == pytest.approx([0.0, 0.5, 3.0])
    assert tr.size_rank.tolist() == pytest.approx([2 / 3, 0.0, 1 / 3])
    seg = tr.segment(0.4, 1.0).time_scaled(2.0)
    assert seg.times_s.tolist() == pytest.approx([0.05]) and seg.duration_s == pytest.approx(0.5)


def test_bad_trace_file_is_one_clear_error(tmp_path):
    csv = tmp_path / "t.csv"
    csv.write_text(
        "TIMESTAMP,ContextTokens,GeneratedTokens\nyesterday,1,2\n2023-11-16 18:15:47,1,1\n"
    )
    with pytest.raises(AutoscalingError, match=":2: malformed"):
        azure_csv(csv)


@pytest.mark.parametrize("kind", ["diurnal", "bursty", "step"])
def test_synthetic_traces_have_the_asked_mean_rate(kind):
    tr = synthetic(kind, mean_rate_hz=6.0, duration_s=3600.0, seed=1)
    # Poisson counts of ~21600: 1% s.e.; bursts are placed at random, so allow 10%
    assert tr.mean_rate_hz == pytest.approx(6.0, rel=0.1)
    assert np.all(np.diff(tr.times_s) >= 0)
