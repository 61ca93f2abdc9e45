"""The local backend beyond the contract (test_contract.py): cgroups, pausing, no-cgroup
machines, the node agent on it (steering, suppress, surviving its death), data collection.

One session cluster (conftest.py: two real replicas of the service, one per cpu) serves it."""

from __future__ import annotations

import os
import signal
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from offload.cluster.agent import Agent, AgentConfig
from offload.cluster.api import ClusterApi
from offload.cluster.cgroups import CgroupUnavailable, detect
from offload.cluster.local import ClusterError, LocalCluster, LocalClusterConfig
from offload.cluster.mitigation import MitigationConfig, steer
from offload.cluster.mitigation.interface import Observation
from offload.cluster.mitigation.qos import QosConfig
from offload.cluster.probe import ProbeConfig


def test_replica_cgroups_carry_their_cpusets(cluster: LocalCluster) -> None:
    if not cluster.support.has("cpuset"):
        pytest.skip(f"cgroup cpuset unavailable: {cluster.support.missing['cpuset']}")
    for r in cluster.replicas.values():
        assert r.cgroup is not None and r.cgroup.cpuset() == list(r.cpus)
        assert r.proc.pid in r.cgroup.pids()


@pytest.mark.parametrize("kind", ["cpu", "io"])
def test_corunners_pause_and_resume_through_the_admin_api(cluster: LocalCluster, kind: str) -> None:
    api = ClusterApi(cluster.router.url, cluster.config.token)
    name = f"t-{kind}"
    c = api.add_corunner({"kind": kind, "name": name, "cpus": [0], "duty": 0.5})
    assert c["state"] == "running" and c["cpus"] == [0]
    assert api.corunner_op(name, "pause")["state"] == "paused"
    assert api.corunner_op(name, "resume")["state"] == "running"
    assert api.corunner_op(name, "stop")["state"] == "stopped"
    with pytest.raises(Exception, match="no co-runner named"):
        api.corunner_op("nobody", "pause")
    with pytest.raises(Exception, match="not available"):
        api.add_corunner({"kind": "cpu", "cpus": [99]})


def test_without_cgroups_the_cluster_says_what_is_unavailable(tmp_path: Path) -> None:
    mounts = tmp_path / "mounts"
    mounts.write_text("proc /proc proc rw 0 0\n")
    c = LocalCluster(LocalClusterConfig(token="x" * 20, work_dir=tmp_path), detect(mounts))
    c._make_groups()
    st = c.status()
    assert st["cgroups"]["version"] == "none" and "cpu" in st["cgroups"]["missing"]
    assert st["be_cgroup"] is None
    c.add_corunner({"kind": "cpu", "name": "bare", "cpus": [0]})
    try:
        with pytest.raises(CgroupUnavailable, match="without cgroups"):
            c.corunners["bare"].throttle(0.5)
        c.corunner_op("bare", "pause")  # signals instead of the freezer
        assert c.corunners["bare"].state == "paused"
    finally:
        c.down()


class _RecordingAgent(Agent):
    """The agent, keeping each interval's observation (what its decisions were made from)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.observations: list[Observation] = []

    def _observation(self, *args: Any, **kwargs: Any) -> Observation:
        obs = super()._observation(*args, **kwargs)
        self.observations.append(obs)
        return obs


def test_the_agent_steers_and_suppresses_around_a_hog(cluster: LocalCluster) -> None:
    """A CPU hog pinned to replica-1's cpu: the agent measures replica-1 inflated (design.md:
    about 2.8x when a core is time-shared) and caps the best-effort group (CPU suppress, the
    full variant); after every interval the router holds the steering rule's weights for what
    the agent observed. CPU QoS is left off here (the BE group at the LS weight): with it the
    hog barely slows replica-1 (next test).

    Replicas are not compared with each other: once the hog is capped the two are close, and
    other work tips either way (CI runs measured replica-0 above replica-1, inflation 1.78 vs
    1.64 on the mean, and weighted replica-1 above replica-0, 0.881 vs 0.869); the steering
    rule itself is tested in test/offload/cluster/test_mitigation.py."""
    api = ClusterApi(cluster.router.url, cluster.config.token)
    hog_cpu = cluster.replicas["replica-1"].cpus
    api.add_corunner({"kind": "cpu", "name": "hog", "cpus": list(hog_cpu)})
    config = AgentConfig(
        interval_s=0.5,
        probe_bursts=3,
        probe=ProbeConfig(calibration_bursts=5),
        mitigation=replace(MitigationConfig("full"), qos=QosConfig(be_shares=1024)),
    )
    agent = _RecordingAgent(api, config)
    try:
        reports, weights = [], []
        for _ in range(6):
            reports.append(agent.step())
            weights.append({r["name"]: r["weight"] for r in api.status()["replicas"]})
        # the hog time-shares replica-1's core and is uncapped until the first interval ends:
        # the agent measures it there (about 2-3x; other work on the machine only adds).
        # Replica against replica is not asserted: replica-0's core also runs the test, the
        # router and the agent, and a CI run measured it above the capped hog's on the mean.
        assert reports[0]["inflation"]["replica-1"] > 1.5
        # the router holds, after each interval, the steering rule replayed on the observations
        state = steer.SteerState()
        for obs, held in zip(agent.observations, weights, strict=True):
            _, state = steer.decide(obs, state, config.mitigation.steer)
            assert held == pytest.approx({n: state.sent.get(n, 1.0) for n in held})
        be = cluster.groups["be"]
        if be is not None and cluster.support.has("cpu"):
            assert be.cpu_limit() is not None  # the executor wrote the BE cap
        assert reports[-1]["action_counts"].get("SetBeLimit", 0) >= 1
    finally:
        agent.close()
        api.corunner_op("hog", "stop")
        api.set_weights({"replica-0": 1.0, "replica-1": 1.0})
        agent.executor.apply([])
        if cluster.groups["be"] is not None and cluster.support.has("cpu"):
            cluster.groups["be"].set_cpu_limit(None)


def test_cpu_qos_puts_the_best_effort_group_at_the_least_weight(cluster: LocalCluster) -> None:
    be = cluster.groups["be"]
    if be is None or not cluster.support.has("weight"):
        pytest.skip(f"no cpu weight controller here:\n{cluster.support.summary()}")
    api = ClusterApi(cluster.router.url, cluster.config.token)
    agent = Agent(
        api,
        AgentConfig(
            interval_s=0.5,
            probe_bursts=2,
            probe=ProbeConfig(calibration_bursts=3),
            mitigation=MitigationConfig("qos"),
        ),
    )
    try:
        assert api.status()["be_shares"] == 1024
        report = agent.step()
        assert be.cpu_weight() == 2 and api.status()["be_shares"] == 2
        assert report["action_counts"] == {"SetBeWeight": 1}
        agent.step()  # applied: not asked again
        assert agent.executor.counts == {"SetBeWeight": 1}
    finally:
        agent.close()
        be.set_cpu_weight(1024)


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGSEGV], ids=["killed", "crashed"])
def test_an_agent_that_is_killed_or_crashes_leaves_replicas_serving(
    cluster: LocalCluster, detect_once, how: signal.Signals
) -> None:
    cluster.start_agent(["--variant", "full", "--interval", "0.5", "--model", "none"])
    end = time.monotonic() + 120
    while cluster.status()["agent"].get("step", 0) < 1 and time.monotonic() < end:
        time.sleep(0.2)  # until it has acted at least once
    assert cluster.status()["agent"].get("step", 0) >= 1, "the agent never reported"
    agent_pid = cluster.agent_proc.pid  # type: ignore[union-attr]
    os.kill(agent_pid, how)
    cluster.agent_proc.wait()  # type: ignore[union-attr]
    assert not cluster.status()["agent"]["alive"]
    for _ in range(3):  # replicas and router serve on without it
        assert detect_once(cluster.router.url, cluster.config.token) >= 0
    assert all(r["alive"] for r in cluster.status()["replicas"])
    assert cluster.supervise_agent(backoff_s=0.0)  # and it is started again, as a DaemonSet
    assert cluster.agent_proc is not None and cluster.agent_proc.pid != agent_pid
    cluster.stop_agent()


def test_a_replica_that_cannot_start_is_reported_with_its_log(tmp_path: Path) -> None:
    config = LocalClusterConfig(
        token="y" * 20,
        work_dir=tmp_path,
        start_timeout_s=60,
        replica_args=("--models", "no-such-model"),
    )
    with LocalCluster(config) as c, pytest.raises(ClusterError, match="replica-0"):
        c.up(1)


def test_a_small_collection_trains_evaluates_and_reloads_a_predictor(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    """A tiny collection (2 runs of 2 phases) goes through the whole pipeline: rows (with their
    bursts; those a mix change fell into flagged) -> samples of consecutive intervals ->
    held-out evaluation -> saved and reloaded model."""
    from offload.cluster.collect import CollectConfig, collect, held_out, split, to_arrays
    from offload.cluster.predictor import CpiPredictor, evaluate

    config = CollectConfig(
        runs=2,
        run_s=4.0,  # 2 s phases: a sample needs two intervals of one mix that no change split
        phase_s=2.0,
        interval_s=0.3,
        probe_bursts=2,
        max_corunners=2,
        calibrate_s=0.5,
    )
    rows, meta = collect(cluster.router.url, cluster.config.token, config)
    assert rows and {"features", "cpi", "inflation", "run", "burst_cpis", "mixed"} <= set(rows[0])
    assert all(len(r["burst_cpis"]) == 2 for r in rows)
    data = to_arrays(rows, meta["quiet_latency_ms"])
    assert data["X"].shape[1] == len(rows[0]["features"]) and len(data["y"]) > 0
    # too few rows to learn from on a busy machine: pad the training side with its own rows
    train, test = split(data, held_out(2))
    if len(train["y"]) < 20:
        reps = int(np.ceil(20 / max(1, len(train["y"]))))
        train = {k: np.concatenate([v] * reps) for k, v in train.items()}
    scores, model = evaluate(train, test, rounds=20)
    assert set(scores) >= {"gbt", "linear", "last_value"}
    assert all(0 <= s["within10"] <= 1 for s in scores.values() if s["n"])
    path = tmp_path / "m.txt"
    model.save(path, {"command": "test"})
    again = CpiPredictor.load(path)
    assert np.allclose(again.predict(test["X"]), model.predict(test["X"]))
    # the collection's co-runners are gone again
    assert all(c["state"] != "running" for c in cluster.status()["corunners"])
