"""The live part of ``robomr bench autoscale``: real replicas, and the simulation beside them.

A redis-server (L2) and the warm template (L1) start; one replica is forked and the detector's
service time is calibrated on it (sequential requests of each size, no queueing); then a
segment of the trace, time-scaled so its mean offered load is ``--live-load`` replicas, is
replayed against forked replicas under ``--live-policy`` (``offload.cluster.autoscaling.live``).
The same segment, policy and seeds run in the simulation with the calibrated service model and
the start-up delays measured during the replay; the error is on p99 latency.
"""

from __future__ import annotations

import argparse
import math
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench.report import Table


def live_section(
    args: argparse.Namespace, trace_path: Path, say: Callable[[str], None]
) -> tuple[Any, dict[str, Any]]:
    from offload.cluster.artifacts import ArtifactStore, RedisServer
    from offload.cluster.autoscaling import Bounds, make_policy
    from offload.cluster.autoscaling.calibration import StartupModel
    from offload.cluster.autoscaling.coldstart import (
        WEIGHTS,
        Template,
        _end,
        _pid_alive,
        wait_ready,
    )
    from offload.cluster.autoscaling.live import calibrate_service, detector_bodies, replay
    from offload.cluster.autoscaling.simulate import SimConfig, simulate
    from offload.cluster.autoscaling.traces import Trace, azure_csv

    bodies = detector_bodies((1000, 2000, 4000, 8000))
    bounds = Bounds(1, 4)
    with tempfile.TemporaryDirectory(prefix="robomr-live-") as tmp, RedisServer() as rs:
        root = Path(tmp)
        ArtifactStore.publish(root / "store", {"detector": WEIGHTS})
        template = Template(root / "store", rs.url, root / "node", root / "template.log")
        try:
            say("live: calibrating the detector's service time on one replica")
            pid = template.fork(root / "cal.json", root / "cal.log")
            try:
                url = wait_ready(root / "cal.json", lambda: _pid_alive(pid), 600.0)
                service, samples = calibrate_service(url, bodies)
            finally:
                _end(pid)
            mean_s, cv2 = service.moments()
            full = azure_csv(trace_path)
            # time-scaled so the mean offered load is --live-load replicas: the rate x factor
            rate = full.mean_rate_hz
            factor = args.live_load / (rate * mean_s)
            start = 600.0 * factor  # ten trace-minutes in: past the trace's first minutes
            seg = full.time_scaled(factor).segment(start, args.live_s)
            seg = Trace(f"{full.name} live segment x{factor:.3g}", seg.times_s, seg.size_rank,
                        seg.duration_s)  # fmt: skip
            slo = 3.0 * mean_s
            policy = make_policy(args.live_policy, 0.7, 60.0, bounds)
            say(f"live: replaying {len(seg)} requests over {seg.duration_s:.0f} s "
                f"({seg.mean_rate_hz:.2f}/s, service {mean_s * 1e3:.0f} ms) under "
                f"{args.live_policy}")  # fmt: skip
            real = replay(seg, policy, bodies, template, root, slo, (mean_s, cv2), 1)
        finally:
            template.close()
    startup = StartupModel(tuple(real.startup_s) or (5.0,))
    sims = []
    for seed in range(max(args.seeds, 3)):
        cfg = SimConfig(service, startup, slo, initial_replicas=1, seed=seed)
        sims.append(simulate(seg, make_policy(args.live_policy, 0.7, 60.0, bounds), cfg))
    p99_sim = float(np.median([r.p99_ms() for r in sims]))
    p99_real = real.p99_ms()
    err = abs(p99_sim - p99_real) / p99_real if p99_real > 0 else math.nan
    t = Table(
        f"live replay vs simulation ({args.live_policy}, {len(seg)} requests, "
        f"{seg.duration_s:.0f} s, SLO {slo * 1e3:.0f} ms)",
        ["run", "violations", "p99 ms", "replica-s", "actions"],
    )
    t.add("real replicas", real.slo_violation_rate, p99_real, real.replica_seconds,
          real.scaling_actions)  # fmt: skip
    t.add("simulation (median of seeds)", float(np.median([r.slo_violation_rate for r in sims])),
          p99_sim, float(np.median([r.replica_seconds for r in sims])),
          float(np.median([r.scaling_actions for r in sims])))  # fmt: skip
    return service, {
        "table": t,
        "sim_vs_real_error": err,
        "policy": args.live_policy,
        "requests": len(seg),
        "duration_s": seg.duration_s,
        "slo_ms": slo * 1e3,
        "service_mean_ms": mean_s * 1e3,
        "service_cv2": cv2,
        "service_samples": [[r, s] for r, s in samples],
        "startup_s": real.startup_s,
        "real": {"p99_ms": p99_real, "slo_violation_rate": real.slo_violation_rate,
                 "replica_seconds": real.replica_seconds, "timeline": real.timeline},
        "sim_p99_ms": [r.p99_ms() for r in sims],
    }  # fmt: skip
