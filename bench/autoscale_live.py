"""The live part of ``robomr bench autoscale``: real replicas, and the simulation beside them.

A redis-server (L2) and the warm template (L1) start; as many replicas as the replay may use
are forked; the detector's service time is calibrated on one of them (sequential requests of
each size, no queueing) and the node's concurrency curve on all of them (k = 1, 2, ... copies
of each request at once, one per replica: how much a second, third... busy replica really
adds when they share the node's cores); then a segment of the trace, time-scaled so its mean
offered load is ``--live-load`` replicas, is replayed against forked replicas under
``--live-policy`` (``offload.cluster.autoscaling.live``). The same segment, policy and seeds
run in the simulation with the calibrated service model (requests spaced as a replica sees
them at the replay's load: an idle replica answers slower than a busy one), the measured
concurrency curve (processor sharing) less the router's share of the cores (its CPU per request,
measured before the replay, times the segment's request rate: the router runs on the same
node) and the start-up delays measured during the replay; the error is on p99 latency.
Ablation rows: the curve measured under sustained load (k closed-loop clients for a few seconds
each), the curve without the router's share, a core per replica (no sharing, the sweep's
cluster model), and sharing with starting replicas competing for the cores too.
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

# Pause between calibration requests: back to back a replica answers faster (23 vs 29-31 ms for
# 1000 points, measured) than with the idle gaps it has in the replay (at 1 replica of load on
# up to 4 replicas, tens of ms between its requests): its thread and caches are warm.
SERVICE_GAP_S = 0.1


def live_section(
    args: argparse.Namespace, trace_path: Path, say: Callable[[str], None]
) -> tuple[Any, dict[str, Any]]:
    from offload.client import quiet_httpx
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
    from offload.cluster.autoscaling.live import (
        calibrate_concurrency,
        calibrate_service,
        calibrate_sustained,
        detector_bodies,
        replay,
        router_cpu_per_request_s,
    )
    from offload.cluster.autoscaling.simulate import SimConfig, simulate
    from offload.cluster.autoscaling.traces import Trace, azure_csv

    quiet_httpx()  # one log line per readiness poll would bury the progress
    bodies = detector_bodies((1000, 2000, 4000, 8000))
    bounds = Bounds(1, 4)
    with tempfile.TemporaryDirectory(prefix="robomr-live-") as tmp, RedisServer() as rs:
        root = Path(tmp)
        ArtifactStore.publish(root / "store", {"detector": WEIGHTS})
        template = Template(root / "store", rs.url, root / "node", root / "template.log")
        try:
            say(f"live: calibrating the service time on one replica and the concurrency curve "
                f"on {bounds.max_replicas}")  # fmt: skip
            pids = [template.fork(root / f"cal{k}.json", root / f"cal{k}.log")
                    for k in range(bounds.max_replicas)]  # fmt: skip
            try:
                urls = [wait_ready(root / f"cal{k}.json", lambda p=p: _pid_alive(p), 600.0)
                        for k, p in enumerate(pids)]  # fmt: skip
                service, samples = calibrate_service(urls[0], bodies, gap_s=SERVICE_GAP_S)
                curve, conc = calibrate_concurrency(urls, bodies)
                router_cpu_s = router_cpu_per_request_s(urls[0], bodies[0])
                sustained, sustained_rate = calibrate_sustained(urls, bodies)
            finally:
                for p in pids:
                    _end(p)
            say(f"live: node speed with 1..{len(urls)} requests at once: "
                f"{', '.join(f'{v:.2f}' for v in curve.speed)} (sustained: "
                f"{', '.join(f'{v:.2f}' for v in sustained.speed)}); router "
                f"{router_cpu_s * 1e3:.1f} ms CPU per request")  # fmt: skip
            mean_s, cv2 = service.moments()
            full = azure_csv(trace_path)
            # time-scaled so the mean offered load is --live-load replicas: the rate x factor
            rate = full.mean_rate_hz
            factor = args.live_load / (rate * mean_s)
            start = 600.0 / factor  # ten trace-minutes in, on the scaled clock
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
    p99_real = real.p99_ms()
    t = Table(
        f"live replay vs simulation ({args.live_policy}, {len(seg)} requests, "
        f"{seg.duration_s:.0f} s, SLO {slo * 1e3:.0f} ms)",
        ["run", "violations", "p50 ms", "p99 ms", "p99 error", "replica-s", "actions"],
    )
    ok = real.latency_s[real.ok]
    p50_real = float(np.median(ok) * 1e3) if len(ok) else math.nan
    t.add("real replicas", real.slo_violation_rate, p50_real, p99_real, 0.0,
          real.replica_seconds, real.scaling_actions)  # fmt: skip
    # the router runs on the same node: at the segment's rate it takes this share of the cores
    router_cores = seg.mean_rate_hz * router_cpu_s
    node = curve.minus_load(router_cores)
    variants = {  # the first is the model of record; the others are its ablations
        "simulation, shared cores (measured curve, router's CPU)": (node.speed, False),
        "ablation: sustained-load curve": (sustained.speed, False),
        "ablation: without the router's CPU": (curve.speed, False),
        "ablation: + starting replicas share the cores": (node.speed, True),
        "ablation: a core per replica (no sharing)": (None, False),
    }
    lags = np.array([lag for _, lag in real.loop_lag]) if real.loop_lag else np.zeros(1)
    say(f"live: the router's event loop ran late by {1e3 * np.median(lags):.1f} ms median, "
        f"{1e3 * lags.max():.0f} ms at most (50 ms timer)")  # fmt: skip
    errors, sim_p99 = {}, {}
    for label, (speed, contends) in variants.items():
        sims = []
        for seed in range(max(args.seeds, 5)):
            cfg = SimConfig(service, startup, slo, initial_replicas=1, node_speed=speed,
                            startup_contends=contends, seed=seed)  # fmt: skip
            sims.append(simulate(seg, make_policy(args.live_policy, 0.7, 60.0, bounds), cfg))
        p99 = float(np.median([r.p99_ms() for r in sims]))
        p50 = float(np.median([np.median(r.latency_s[r.status == 0]) * 1e3 for r in sims]))
        errors[label] = abs(p99 - p99_real) / p99_real if p99_real > 0 else math.nan
        sim_p99[label] = [r.p99_ms() for r in sims]
        t.add(label + f" (median of {len(sims)} seeds)",
              float(np.median([r.slo_violation_rate for r in sims])), p50, p99, errors[label],
              float(np.median([r.replica_seconds for r in sims])),
              float(np.median([r.scaling_actions for r in sims])))  # fmt: skip
    err = next(iter(errors.values()))
    return service, {
        "table": t,
        "sim_vs_real_error": err,
        "sim_vs_real_error_ablations": errors,
        "node_speed": list(curve.speed),
        "node_speed_sustained": list(sustained.speed),
        "sustained_rate_hz": {str(k): v for k, v in sustained_rate.items()},
        "router_cpu_per_request_ms": 1e3 * router_cpu_s,
        "router_cores": router_cores,
        "concurrency_latency_s": {str(k): v for k, v in conc.items()},
        "policy": args.live_policy,
        "requests": len(seg),
        "duration_s": seg.duration_s,
        "slo_ms": slo * 1e3,
        "service_mean_ms": mean_s * 1e3,
        "service_cv2": cv2,
        "service_samples": [[r, s] for r, s in samples],
        "startup_s": real.startup_s,
        "real": {"p99_ms": p99_real, "slo_violation_rate": real.slo_violation_rate,
                 "replica_seconds": real.replica_seconds, "timeline": real.timeline,
                 "arrival_s": seg.times_s.tolist(),
                 "latency_ms": [x * 1e3 if np.isfinite(x) else None for x in real.latency_s],
                 "loop_lag_s": real.loop_lag},
        "sim_p99_ms": sim_p99,
    }  # fmt: skip
