"""The HPA port against the Kubernetes controller's own cases and its documented behaviour.

Replica-calculator cases are those of kubernetes/kubernetes
pkg/controller/podautoscaler/replica_calculator_test.go (same pods, usage levels, targets and
expected counts; a pod here has one container, so requests and usage are per pod); their
harness's times are reproduced: pods "cool" (started long ago) unless "hot" (within the CPU
initialisation period), readiness transitions at the epoch, metric samples stamped at the
epoch with a one-minute window. Behaviour cases follow the HPA documentation
(kubernetes.io/docs/tasks/run-application/horizontal-pod-autoscale/#scaling-policies).
"""

from __future__ import annotations

import pytest

from offload.cluster.autoscaling.hpa import (
    HpaConfig,
    HpaPolicy,
    ScalingPolicy,
    ScalingRules,
    metric_replicas,
)
from offload.cluster.autoscaling.interface import Bounds, Observation, PodView

NOW = 1000.0
EPOCH = -1e9  # the test harness's zero time: long before NOW
HOT = NOW - 60.0  # started one minute ago: within the 2-minute initialisation period
# the controller's test settings (defaultTestingCPUInitializationPeriod, ...DelayOfInitial...)
TEST_CFG = {"cpu_initialization_period_s": 120.0, "initial_readiness_delay_s": 10.0}


def pods(levels, ready=None, start=None, phase=None, deleting=None, n=None, metric="cpu"):
    """Pods as the k8s test harness builds them; ``levels`` covers the first len(levels)."""
    n = n or len(levels)
    out = []
    for i in range(n):
        level = levels[i] if i < len(levels) else None
        out.append(
            PodView(
                f"pod-{i}",
                phase=phase[i] if phase else "Running",
                ready=ready[i] if ready else True,
                start_s=start[i] if start else EPOCH,
                ready_transition_s=EPOCH,
                deleting=deleting[i] if deleting else False,
                cpu_millicores=level if metric == "cpu" else None,
                metric_timestamp_s=EPOCH if level is not None else None,
                metric_window_s=60.0,
                in_flight=(level or 0) / 1000 if metric == "pods" else 0.0,
            )
        )
    return tuple(out)


T, F = True, False
CPU_CASES = [
    # (name, current, pods, target %, expected) from replica_calculator_test.go
    ("ScaleUp", 3, pods([300, 500, 700]), 30, 5),
    ("ScaleUpUnreadyLessScale", 3, pods([300, 500, 700], ready=[F, T, T]), 30, 4),
    ("ScaleUpHotCpuLessScale", 3, pods([300, 500, 700], start=[HOT, EPOCH, EPOCH]), 30, 4),
    ("ScaleUpUnreadyNoScale", 3, pods([400, 500, 700], ready=[T, F, F]), 30, 3),
    (
        "ScaleHotCpuNoScale",
        3,
        pods([400, 500, 700], ready=[T, F, F], start=[EPOCH, HOT, HOT]),
        30,
        3,
    ),
    (
        "ScaleUpIgnoresFailedPods",
        2,
        pods([500, 700], ready=[T, T, F, F], phase=["Running", "Running", "Failed", "Failed"], n=4),
        30,
        4,
    ),
    (
        "ScaleUpIgnoresDeletionPods",
        2,
        pods([500, 700], ready=[T, T, F, F], deleting=[F, F, T, T], n=4),
        30,
        4,
    ),
    ("ScaleDown", 5, pods([100, 300, 500, 250, 250]), 50, 3),
    (
        "ScaleDownExcludeUnreadyPods",
        5,
        pods([100, 300, 500, 250, 250], ready=[T, T, T, F, F]),
        50,
        2,
    ),
    (
        "ScaleDownExcludeUnscheduledPods",
        5,
        pods([100], ready=[T, F, F, F, F], phase=["Running"] + ["Pending"] * 4, n=5),
        50,
        1,
    ),
    # tolerance 0.1: 10% off target is no change, 11% is
    ("WithinTolerance", 3, pods([330, 330, 330]), 30, 3),
    ("JustOutsideTolerance", 3, pods([340, 340, 340]), 30, 4),
    # missing metrics: 100% of the request on a scale-down, 0% on a scale-up, no reversal
    ("MissingScaleDown", 4, pods([100, 100, 100], n=4), 50, 3),
    ("MissingScaleUp", 4, pods([900, 900, 900], n=4), 50, 6),
    ("MissingWouldReverse", 4, pods([600, 600, 600], n=4), 50, 4),
]


@pytest.mark.parametrize(("name", "current", "pod_list", "target", "expected"), CPU_CASES)
def test_replica_calculator_cpu_matches_kubernetes(name, current, pod_list, target, expected):
    cfg = HpaConfig(target_utilization_pct=target, **TEST_CFG)
    assert metric_replicas(current, pod_list, cfg, NOW) == expected, name


PODS_CASES = [
    ("ScaleUpCM", 3, pods([20000, 10000, 30000], metric="pods"), 15.0, 4),
    (
        "ScaleUpCMUnreadyHotCpuNoLessScale",  # readiness only matters for CPU
        3,
        pods([50000, 10000, 30000], ready=[T, T, F], start=[EPOCH, EPOCH, HOT], metric="pods"),
        15.0,
        6,
    ),
    ("ScaleDownCM", 5, pods([12000] * 5, metric="pods"), 20.0, 3),
]


@pytest.mark.parametrize(("name", "current", "pod_list", "target", "expected"), PODS_CASES)
def test_replica_calculator_pods_metric_matches_kubernetes(
    name, current, pod_list, target, expected
):
    cfg = HpaConfig(metric="pods", target_value=target, **TEST_CFG)
    assert metric_replicas(current, pod_list, cfg, NOW) == expected, name


def obs_at(t, replicas, cpu_per_pod, n_pods=None):
    """``replicas`` ready pods each using ``cpu_per_pod`` millicores (started long ago)."""
    n = replicas if n_pods is None else n_pods
    p = tuple(
        PodView(f"pod-{i}", cpu_millicores=cpu_per_pod, metric_timestamp_s=t, start_s=EPOCH)
        for i in range(n)
    )
    return Observation(t_s=t, replicas=replicas, pods=p, interval_s=15.0)


def run_syncs(policy, start_replicas, want, times):
    """Applies each decision like the controller; ``want(t)`` is the metric-desired count,
    produced by a per-pod usage of want/replicas x target."""
    state, replicas, seen = policy.initial_state(), start_replicas, []
    target = policy.config.target_utilization_pct * 10  # millicores at 100% of the target
    for t in times:
        cpu = want(t) * target / replicas
        replicas, state = policy.decide(obs_at(t, replicas, cpu), state)
        seen.append(replicas)
    return seen


def test_scale_down_policies_follow_the_documented_example():
    # docs: Pods 4 / 60 s and Percent 10 / 60 s, the larger change wins; 80 -> 10 replicas
    down = ScalingRules(0, (ScalingPolicy("Pods", 4, 60), ScalingPolicy("Percent", 10, 60)))
    up = ScalingRules(0, (ScalingPolicy("Percent", 100, 15),))
    policy = HpaPolicy(
        HpaConfig(bounds=Bounds(1, 100), target_utilization_pct=50, behavior=(up, down))
    )
    seen = run_syncs(policy, 80, lambda t: 10, [60.0 * k for k in range(1, 15)])
    assert seen == [72, 64, 57, 51, 45, 40, 36, 32, 28, 24, 20, 16, 12, 10]


def test_scale_down_rate_limit_counts_changes_within_the_period():
    down = ScalingRules(0, (ScalingPolicy("Percent", 10, 60),))
    up = ScalingRules(0, (ScalingPolicy("Percent", 100, 15),))
    policy = HpaPolicy(
        HpaConfig(bounds=Bounds(1, 100), target_utilization_pct=50, behavior=(up, down))
    )
    # syncs every 15 s: one 10% step per 60 s, none in between
    seen = run_syncs(policy, 80, lambda t: 10, [15.0 * k for k in range(1, 10)])
    assert seen == [72, 72, 72, 72, 64, 64, 64, 64, 57]


def test_default_scale_up_allows_four_pods_or_double_per_15_s():
    policy = HpaPolicy(HpaConfig(bounds=Bounds(1, 100), target_utilization_pct=50))
    seen = run_syncs(policy, 1, lambda t: 20, [15.0, 30.0, 45.0, 60.0])
    assert seen == [5, 10, 20, 20]


def test_scale_down_stabilization_keeps_the_highest_recommendation_for_300_s():
    policy = HpaPolicy(HpaConfig(bounds=Bounds(1, 100), target_utilization_pct=50))
    times = [15.0 * k for k in range(1, 30)]
    seen = run_syncs(policy, 10, lambda t: 10 if t < 60 else 2, times)
    # the last recommendation of 10 is at t = 45 s: it counts while younger than 300 s
    for t, n in zip(times, seen, strict=True):
        assert n == (10 if t < 345.0 else 2), (t, n)


def test_legacy_path_without_behavior_limits_scale_up_to_double_or_four():
    policy = HpaPolicy(HpaConfig(bounds=Bounds(1, 100), target_utilization_pct=50, behavior=None))
    assert run_syncs(policy, 3, lambda t: 20, [15.0]) == [6]
    assert run_syncs(policy, 1, lambda t: 20, [15.0]) == [4]


@pytest.mark.parametrize(
    ("current", "bounds", "expected"),
    [(12, Bounds(2, 10), 10), (1, Bounds(2, 10), 2), (0, Bounds(1, 10), 0)],
    ids=["above-max", "below-min", "zero-disables"],
)
def test_out_of_range_counts_are_brought_to_the_bounds(current, bounds, expected):
    policy = HpaPolicy(HpaConfig(bounds=bounds))
    n, _state = policy.decide(
        obs_at(15.0, current, 500.0, n_pods=max(current, 1)), policy.initial_state()
    )
    assert n == expected


def test_no_metrics_leaves_the_scale_unchanged():
    policy = HpaPolicy(HpaConfig())
    p = (PodView("pod-0", cpu_millicores=None),)
    obs = Observation(t_s=15.0, replicas=3, pods=p, interval_s=15.0)
    n, state = policy.decide(obs, policy.initial_state())
    assert n == 3 and state.reason.startswith("FailedGetMetric")


def test_capacity_factor_lowers_the_target():
    policy = HpaPolicy(HpaConfig(bounds=Bounds(1, 100), target_utilization_pct=50))
    base = obs_at(15.0, 4, 500.0)  # exactly on target: no change
    assert policy.decide(base, policy.initial_state())[0] == 4
    slowed = Observation(**{**base.__dict__, "capacity_factor": 0.5})
    assert policy.decide(slowed, policy.initial_state())[0] == 8
