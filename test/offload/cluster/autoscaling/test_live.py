"""The live harness on a short trace segment: real replica processes forked from the warm
template (three-level cache: redis-server L2, template L1), a router, a policy that scales."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from offload.cluster.autoscaling.interface import Observation
from offload.cluster.autoscaling.traces import Trace

pytestmark = pytest.mark.skipif(
    shutil.which("redis-server") is None, reason="redis-server (Debian) not installed"
)


@dataclass(frozen=True)
class Step:
    """Asks for ``high`` replicas from its first decision on (a scale-up the test can see)."""

    high: int
    name: str = "step"
    period_s: float = 1.0

    def initial_state(self) -> list[Observation]:
        return []

    def decide(self, obs: Observation, state: list) -> tuple[int, list]:
        return self.high, [*state, obs]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory):
    from offload.cluster.artifacts import ArtifactStore, RedisServer
    from offload.cluster.autoscaling.coldstart import WEIGHTS, Template

    root = tmp_path_factory.mktemp("live")
    with RedisServer(maxmemory_mb=64) as rs:
        ArtifactStore.publish(root / "store", {"detector": WEIGHTS})
        t = Template(root / "store", rs.url, root / "node", root / "template.log")
        yield t, root
        t.close()


def test_replay_scales_up_and_answers_every_request(template) -> None:
    from offload.cluster.autoscaling.live import detector_bodies, replay

    t, root = template
    bodies = detector_bodies((300, 600))
    times = np.linspace(0.2, 5.8, 12)  # 2 requests/s for 6 s: far below one replica's capacity
    trace = Trace("tiny", times, np.linspace(0.0, 0.99, 12), 6.0)
    policy = Step(high=2)
    run = replay(trace, policy, bodies, t, root, slo_s=30.0, service=(0.05, 1.0))
    assert run.ok.all() and np.isfinite(run.latency_s).all()
    assert run.decisions and run.decisions[0][1:] == (1, 2)  # 1 replica asked to become 2
    assert len(run.startup_s) >= 2  # the initial replica and the forked one became ready
    # two replicas exist for most of the segment: more than one replica's seconds are counted
    assert trace.duration_s < run.replica_seconds <= 2 * trace.duration_s + 1e-6
    assert run.p99_ms() > 0 and run.slo_violation_rate == 0.0
    # the harness watches its own event loop: a timer's lateness, over the whole segment
    assert run.loop_lag and all(lag >= 0 for _, lag in run.loop_lag)
    assert run.loop_lag[-1][0] > trace.duration_s / 2


def test_calibration_fits_a_positive_service_model(template) -> None:
    from offload.cluster.autoscaling.coldstart import _end, _pid_alive, wait_ready
    from offload.cluster.autoscaling.live import calibrate_service, detector_bodies

    t, root = template
    pid = t.fork(root / "cal.json", root / "cal.log")
    try:
        url = wait_ready(Path(root / "cal.json"), lambda: _pid_alive(pid), 300.0)
        model, samples = calibrate_service(url, detector_bodies((300, 600)), repeats=2)
    finally:
        _end(pid)
    assert len(samples) == 4 and all(s > 0 for _, s in samples)
    mean_s, _ = model.moments()
    assert 0 < mean_s < 60


def test_concurrency_calibration_measures_each_level_on_real_replicas(template) -> None:
    from offload.cluster.autoscaling.coldstart import _end, _pid_alive, wait_ready
    from offload.cluster.autoscaling.live import calibrate_concurrency, detector_bodies

    t, root = template
    pids = [t.fork(root / f"cc{k}.json", root / f"cc{k}.log") for k in range(2)]
    try:
        urls = [
            wait_ready(Path(root / f"cc{k}.json"), lambda p=p: _pid_alive(p), 300.0)
            for k, p in enumerate(pids)
        ]
        curve, latency = calibrate_concurrency(urls, detector_bodies((300, 600)), repeats=1)
    finally:
        for p in pids:
            _end(p)
    # one latency per replica per body per level; speeds from the fit's definition
    assert [len(b) for b in latency[1]] == [1, 1] and [len(b) for b in latency[2]] == [2, 2]
    assert curve.speed[0] == 1.0 and 1.0 <= curve.speed[1] <= 2.0


def test_closing_the_template_ends_the_replicas_it_forked(tmp_path: Path) -> None:
    from offload.cluster.artifacts import ArtifactStore, RedisServer
    from offload.cluster.autoscaling.coldstart import WEIGHTS, Template, _pid_alive, wait_ready

    with RedisServer(maxmemory_mb=64) as rs:
        ArtifactStore.publish(tmp_path / "store", {"detector": WEIGHTS})
        t = Template(tmp_path / "store", rs.url, tmp_path / "node", tmp_path / "template.log")
        try:
            pid = t.fork(tmp_path / "r.json", tmp_path / "r.log")
            wait_ready(tmp_path / "r.json", lambda: _pid_alive(pid), 300.0)
        finally:
            t.close()  # the owner never ended its replica (as after an exception)
        assert not _pid_alive(pid)


def test_router_cpu_per_request_is_measured_on_the_routers_own_path(template) -> None:
    from offload.cluster.autoscaling.coldstart import _end, _pid_alive, wait_ready
    from offload.cluster.autoscaling.live import detector_bodies, router_cpu_per_request_s

    t, root = template
    pid = t.fork(root / "rc.json", root / "rc.log")
    try:
        url = wait_ready(Path(root / "rc.json"), lambda: _pid_alive(pid), 300.0)
        cpu_s = router_cpu_per_request_s(url, detector_bodies((300,))[0], requests=5)
    finally:
        _end(pid)
    # this process's CPU only (the replica's model time is in another process): far below one
    # request's service time, above nothing (httpx + asyncio work per request)
    assert 0 < cpu_s < 0.05


def test_sustained_calibration_measures_throughput_per_concurrency(template) -> None:
    from offload.cluster.autoscaling.coldstart import _end, _pid_alive, wait_ready
    from offload.cluster.autoscaling.live import calibrate_sustained, detector_bodies

    t, root = template
    pids = [t.fork(root / f"s{k}.json", root / f"s{k}.log") for k in range(2)]
    try:
        urls = [wait_ready(Path(root / f"s{k}.json"), lambda p=p: _pid_alive(p), 300.0)
                for k, p in enumerate(pids)]  # fmt: skip
        curve, rate = calibrate_sustained(urls, detector_bodies((300, 600)), seconds_per_k=0.5)
    finally:
        for p in pids:
            _end(p)
    assert set(rate) == {1, 2} and all(r > 0 for r in rate.values())
    assert curve.speed[0] == 1.0 and 1.0 <= curve.speed[1] <= 2.0


def test_service_calibration_refuses_a_negative_gap() -> None:
    from offload.cluster.autoscaling.interface import AutoscalingError
    from offload.cluster.autoscaling.live import calibrate_service

    with pytest.raises(AutoscalingError, match="gap_s"):
        calibrate_service("http://127.0.0.1:9", [b""], gap_s=-0.1)
