"""The node agent (koordlet's role, with C-Koordinator's prediction): measure, predict, mitigate.

Every ``interval_s`` the agent
1. reads the cluster's state (replicas, co-runners, the BE cap: ``GET /cluster/status``);
2. measures each replica's CPI: ``probe_bursts`` bursts of the TSC probe spread over the
   interval (one at a random point of each equal slot: :func:`burst_offsets`), run by a probe
   process inside the replica's cgroup (:mod:`offload.cluster.probe`; perf counters where the
   machine has a PMU are :mod:`offload.cluster.pmu`); the interval's CPI is the bursts'
   trimmed mean (``probe_aggregate``, :func:`offload.cluster.probe.aggregate_cpi`),
   inflation = CPI / reference. The reference is the node's: the least calibration CPI of
   any probe (lowered later only by a burst under 0.9x it), since every cpu of a node runs the
   same kernel on the same hardware; a replica that starts next to a co-runner thus gets the
   uncontended reference of another cpu, not its own contended one;
3. samples node and workload metrics (:mod:`offload.cluster.metrics`) and builds each replica's
   feature row (:mod:`offload.cluster.features`);
4. predicts each replica's CPI for the next interval (and what-ifs: paused co-runners resumed; a
   new replica on each cpu, for placement), if it has a model;
5. runs the mitigation variant's strategies and hands their actions to the executor, the only
   code that turns knobs (:mod:`offload.cluster.executor`);
6. reports what it saw and did (``POST /cluster/report``: status page and Prometheus metrics).

The agent holds no state the cluster needs: killed, the replicas keep serving with the knobs as
they were; restarted, it re-reads everything and carries on.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from offload.cluster import features as F
from offload.cluster.api import ClusterApi
from offload.cluster.cgroups import Cgroup, CgroupSupport, detect
from offload.cluster.executor import Change, Executor
from offload.cluster.metrics import MetricsSampler, NodeMetrics
from offload.cluster.mitigation import (
    CoRunnerView,
    MitigationConfig,
    MitigationState,
    Observation,
    ReplicaView,
    decide,
)
from offload.cluster.predictor import CpiPredictor
from offload.cluster.probe import AGGREGATES, ProbeConfig, ProbeError, ProbeWorker, aggregate_cpi
from offload.cluster.targets import AgentTargets

log = logging.getLogger(__name__)
NAN = float("nan")
REFERENCE_RESET = 0.9


@dataclass(frozen=True)
class AgentConfig:
    """Attributes:
    interval_s: control interval (s), 0.2..60.
    probe_bursts: probe bursts per replica per interval, 1..50.
    probe_aggregate: how an interval's CPI is made of its bursts' (median, trimmed, mean).
    probe_seed: seed of the bursts' random offsets (None: fresh each run).
    probe: probe settings.
    mitigation: the variant and its strategies' settings.
    log_path: JSON-lines file of every change the executor makes (None: not written).
    """

    interval_s: float = 1.0
    probe_bursts: int = 10
    probe_aggregate: str = "trimmed"
    probe_seed: int | None = None
    probe: ProbeConfig = field(default_factory=ProbeConfig)
    mitigation: MitigationConfig = field(default_factory=MitigationConfig)
    log_path: Path | None = None

    def __post_init__(self) -> None:
        if not 0.2 <= self.interval_s <= 60 or not 1 <= self.probe_bursts <= 50:
            raise ValueError("interval_s must be in [0.2, 60] and probe_bursts in [1, 50]")
        if self.probe_aggregate not in AGGREGATES:
            raise ValueError(f"probe_aggregate must be one of {', '.join(AGGREGATES)}")


def burst_offsets(rng: np.random.Generator, bursts: int, interval_s: float) -> np.ndarray:
    """When each probe burst starts (s from the interval's start): one at a random point of
    each of ``bursts`` equal slots (stratified sampling), in the first 90% of its slot so that
    a burst (about 3 ms quiet) ends inside it. At fixed points the bursts of a 1 s interval were
    100 ms apart, the co-runners' duty period, so all of them met the same phase of a
    duty-cycled co-runner and the interval's CPI said "on" or "off" instead of its share."""
    gap = interval_s / bursts
    return (np.arange(bursts) + rng.uniform(0.0, 0.9, bursts)) * gap


@dataclass
class _Probe:
    worker: ProbeWorker
    cpis: list[float] = field(default_factory=list)


class Agent:
    """See the module docstring.

    Args:
        api: the cluster's admin API.
        config: settings.
        predictor: the CPI model, or None (the strategies then use measured CPI).
        on_row: called with each replica's record per interval (data collection).
        support: the cgroups to act on (default: this machine's; the DaemonSet passes the
            host's mount).
    """

    def __init__(
        self,
        api: ClusterApi,
        config: AgentConfig,
        predictor: CpiPredictor | None = None,
        on_row: Callable[[dict[str, Any]], None] | None = None,
        support: CgroupSupport | None = None,
    ) -> None:
        self.api, self.config, self.predictor, self.on_row = api, config, predictor, on_row
        self.support: CgroupSupport = support or detect()
        self.sampler = MetricsSampler()
        self.targets = AgentTargets(api, self.support)
        self.executor = Executor(self.targets, config.log_path)
        self.state = MitigationState()
        self.probes: dict[str, _Probe] = {}
        self.reference_cpi = math.inf  # the node's (see the module docstring)
        self._burst_rng = np.random.default_rng(config.probe_seed)
        self.last_inflation: dict[str, float] = {}
        self.last_be_cpu: dict[str, float] = {}
        self.step_count = 0
        self.report: dict[str, Any] = {}
        self.window: tuple[float, float] = (NAN, NAN)  # the last measured interval (monotonic)
        self.bursts: dict[str, list[float]] = {}  # its bursts' CPIs per replica

    # -- loop ---------------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        """Steps until ``stop`` is set; a failing step is logged and the loop goes on."""
        while not stop.is_set():
            try:
                self.step()
            except Exception as err:  # the agent must outlive one bad interval
                log.exception("agent step failed: %s", err)
                stop.wait(self.config.interval_s)

    def close(self) -> None:
        for p in self.probes.values():
            p.worker.close()
        self.probes.clear()

    def step(self) -> dict[str, Any]:
        """One interval (see the module docstring); returns the report."""
        status = self.api.status()
        replicas = [r for r in status["replicas"] if r.get("alive", True)]
        self._sync_probes(replicas)
        self._sample(status)  # opens the interval's counters
        cpi = self._measure()
        # router rates and latencies over the interval just ended
        status = self.api.status(self.config.interval_s)
        snap = self._sample(status, cpi)
        limit = status.get("be_limit_cores")
        bes = [b for _, b in snap.corunners]
        shares = status.get("be_shares")
        rows = {
            r.name: F.row(r, snap.node, bes, snap.replicas, limit, shares) for r in snap.replicas
        }
        predicted, resumed, placement = self._predict(rows, snap)
        obs = self._observation(snap, predicted, resumed)
        actions, self.state = decide(obs, self.state, self.config.mitigation)
        changes = self.executor.apply(actions)
        self.step_count += 1
        self._emit_rows(snap, rows, predicted)
        self.report = self._report(snap, predicted, placement, changes)
        with contextlib.suppress(Exception):  # the report is informative; losing one is fine
            self.api.report(self.report)
        return self.report

    # -- measurement --------------------------------------------------------------------------
    def _cgroup(self, rel: str | None) -> Cgroup | None:
        return Cgroup(self.support, rel) if rel and self.support.version != "none" else None

    def _sync_probes(self, replicas: list[dict[str, Any]]) -> None:
        names = {r["name"] for r in replicas}
        for gone in set(self.probes) - names:
            self.probes.pop(gone).worker.close()
            self.sampler.forget(gone)
        for r in replicas:
            if r["name"] in self.probes:
                continue
            g = self._cgroup(r.get("probe_cgroup") or r.get("cgroup"))
            try:
                if g is not None and r.get("probe_cgroup"):
                    g.create()  # cgroup v2: processes join leaves only
                w = ProbeWorker(g.procs_files() if g else [], self.config.probe)
                if g is None and r.get("cpus"):
                    with contextlib.suppress(OSError):
                        os.sched_setaffinity(w.proc.pid, r["cpus"])
                self.reference_cpi = min(self.reference_cpi, w.calibrate())
                self.probes[r["name"]] = _Probe(w)
            except ProbeError as err:
                log.warning("no CPI probe for %s: %s", r["name"], err)

    def _measure(self) -> dict[str, tuple[float, float]]:
        """(CPI, reference) per replica over one interval of spread-out bursts."""
        for p in self.probes.values():
            p.cpis = []
        offsets = burst_offsets(self._burst_rng, self.config.probe_bursts, self.config.interval_s)
        start = time.monotonic()
        for b in range(self.config.probe_bursts):
            time.sleep(max(0.0, start + offsets[b] - time.monotonic()))
            for name, p in list(self.probes.items()):
                try:
                    s = p.worker.measure()
                except ProbeError as err:
                    log.warning("probe of %s failed: %s", name, err)
                    self.probes.pop(name).worker.close()
                    continue
                p.cpis.append(s.cpi)
                # a frozen reference keeps labels comparable across runs; it falls only to a
                # burst clearly below it (the calibration itself met contention), not to each
                # new extreme of many short bursts
                if s.cpi < REFERENCE_RESET * self.reference_cpi:
                    self.reference_cpi = s.cpi
        time.sleep(max(0.0, start + self.config.interval_s - time.monotonic()))
        self.window = (start, time.monotonic())
        self.bursts = {n: list(p.cpis) for n, p in self.probes.items() if p.cpis}
        ref, how = self.reference_cpi, self.config.probe_aggregate
        return {n: (aggregate_cpi(c, how), ref) for n, c in self.bursts.items()}

    def _sample(
        self, status: dict[str, Any], cpi: dict[str, tuple[float, float]] | None = None
    ) -> Snapshot:
        """Node and workload metrics since the previous call, as feature inputs."""
        node = self.sampler.node()
        reps = []
        for r in status["replicas"]:
            m = self.sampler.workload(r["name"], self._cgroup(r.get("cgroup")), [r["pid"]])
            reps.append(
                F.ReplicaState(
                    r["name"],
                    tuple(r.get("cpus", ())),
                    m,
                    r.get("rate_per_s", 0.0),
                    F.finite_or_nan(r.get("latency_p50_ms", NAN)),
                    float(r.get("outstanding", 0)),
                    self.last_inflation.get(r["name"], NAN),
                )
            )
        bes = []
        for c in status["corunners"]:
            m = self.sampler.workload(
                "be:" + c["name"], self._cgroup(c.get("cgroup")), [c["pid"]] if c.get("pid") else []
            )
            running = c["state"] == "running"
            if running and cpi is not None:
                self.last_be_cpu[c["name"]] = m.cpu_used
            used = m.cpu_used if running else self.last_be_cpu.get(c["name"], c["duty"])
            bes.append((c, F.CoRunnerState(c["kind"], tuple(c["cpus"]), c["duty"], running, used)))
        for name, (c, ref) in (cpi or {}).items():
            self.last_inflation[name] = c / ref  # the next interval's history feature
        return Snapshot(status, node, reps, bes, cpi or {})

    # -- prediction ---------------------------------------------------------------------------
    def _predict(
        self, rows: dict[str, dict[str, float]], snap: Snapshot
    ) -> tuple[dict[str, float], dict[str, float], dict[str, float]]:
        """Predicted inflation per replica; the same with paused co-runners resumed; and per
        cpu, for a new replica there (placement)."""
        if self.predictor is None or not rows:
            return {}, {}, {}
        model, limit = self.predictor, snap.status.get("be_limit_cores")
        shares = snap.status.get("be_shares")
        names = list(rows)
        predicted = dict(
            zip(
                names,
                model.predict(np.array([F.vector(rows[n]) for n in names])).tolist(),
                strict=True,
            )
        )
        resumed: dict[str, float] = {}
        if any(c["state"] == "paused" for c, _ in snap.corunners):
            awake = [
                replace(b, running=b.running or c["state"] == "paused") for c, b in snap.corunners
            ]
            X = np.array(
                [
                    F.vector(F.row(r, snap.node, awake, snap.replicas, limit, shares))
                    for r in snap.replicas
                ]
            )
            resumed = dict(
                zip([r.name for r in snap.replicas], model.predict(X).tolist(), strict=True)
            )
        bes = [b for _, b in snap.corunners]
        cpus = snap.status.get("cpus") or list(range(snap.node.cores))
        typical = snap.replicas[0]
        X = np.array(
            [
                F.vector(
                    F.row(
                        replace(typical, name="(new)", cpus=(cpu,), last_inflation=NAN),
                        snap.node,
                        bes,
                        snap.replicas,
                        limit,
                        shares,
                    )
                )
                for cpu in cpus
            ]
        )
        placement = {str(c): float(p) for c, p in zip(cpus, model.predict(X), strict=True)}
        return predicted, resumed, placement

    def _observation(
        self, snap: Snapshot, predicted: dict[str, float], resumed: dict[str, float]
    ) -> Observation:
        views = []
        for r, st in zip(snap.status["replicas"], snap.replicas, strict=True):
            c, ref = snap.cpi.get(r["name"], (NAN, NAN))
            used = st.metrics.cpu_used if st.metrics else 0.0
            views.append(
                ReplicaView(
                    r["name"],
                    st.cpus,
                    cpu_used=used,
                    solo_inflation=self.predictor.solo_inflation(used) if self.predictor else 1.0,
                    cpi=c,
                    reference_cpi=ref,
                    predicted_cpi=predicted.get(r["name"], NAN) * ref,
                    predicted_cpi_resumed=resumed.get(r["name"], NAN) * ref,
                    rate_per_s=st.rate_per_s,
                    latency_p90_ms=F.finite_or_nan(r.get("latency_p90_ms", NAN)),
                    latency_p99_ms=F.finite_or_nan(r.get("latency_p99_ms", NAN)),
                )
            )
        bes = tuple(
            CoRunnerView(
                c["name"],
                c["kind"],
                tuple(c["cpus"]),
                b.cpu_used if b.running else 0.0,
                c["state"],
                c.get("limit_cores"),
                float(c.get("duty") or 1.0),
            )
            for c, b in snap.corunners
        )
        return Observation(
            time.monotonic(),
            float(snap.node.cores),
            snap.node.cpu_used,
            tuple(views),
            bes,
            snap.status.get("be_limit_cores"),
            snap.status.get("be_shares"),
        )

    # -- output -------------------------------------------------------------------------------
    def _emit_rows(
        self, snap: Snapshot, rows: dict[str, dict[str, float]], predicted: dict[str, float]
    ) -> None:
        if self.on_row is None:
            return
        for r in snap.status["replicas"]:
            if r["name"] not in rows or r["name"] not in snap.cpi:
                continue
            c, ref = snap.cpi[r["name"]]
            self.on_row(
                {
                    "step": self.step_count,
                    "replica": r["name"],
                    "features": rows[r["name"]],
                    "cpi": c,
                    "reference_cpi": ref,
                    "inflation": c / ref,
                    "latency_mean_ms": F.finite_or_nan(r.get("latency_mean_ms", NAN)),
                    "predicted_inflation": predicted.get(r["name"], NAN),
                    # the bursts and the interval they span: labels of another aggregate, and
                    # which intervals a change of co-location fell into (collect drops those)
                    "burst_cpis": self.bursts.get(r["name"], []),
                    "t0_s": self.window[0],
                    "t1_s": self.window[1],
                }
            )

    def _report(
        self,
        snap: Snapshot,
        predicted: dict[str, float],
        placement: dict[str, float],
        changes: list[Change],
    ) -> dict[str, Any]:
        cpi = snap.cpi
        return {
            "step": self.step_count,
            "variant": self.config.mitigation.variant,
            "cpi": {n: c for n, (c, _) in cpi.items()},
            "reference_cpi": {n: ref for n, (_, ref) in cpi.items()},
            "inflation": {n: c / ref for n, (c, ref) in cpi.items()},
            "predicted_cpi": {n: p * cpi[n][1] for n, p in predicted.items() if n in cpi},
            "predicted_inflation": predicted,
            "placement_inflation": placement,
            "node_cpu_used": snap.node.cpu_used,
            "be_limit_cores": snap.status.get("be_limit_cores"),
            "action_counts": dict(self.executor.counts),
            "changes": [asdict(c) for c in changes],
            "model": self.predictor.provenance.get("model_sha256") if self.predictor else None,
        }


@dataclass
class Snapshot:
    """One interval's inputs: status, node metrics, replica and co-runner states, CPI."""

    status: dict[str, Any]
    node: NodeMetrics
    replicas: list[F.ReplicaState]
    corunners: list[tuple[dict[str, Any], F.CoRunnerState]]
    cpi: dict[str, tuple[float, float]]


def main(argv: list[str] | None = None) -> int:
    """``python -m offload.cluster.agent``: the agent of a local cluster (``--router``), or of
    a Kubernetes node (``--kubernetes``, in the DaemonSet)."""
    import argparse
    import signal
    import sys

    from offload.cluster.api import ClusterApiError
    from offload.cluster.mitigation import VARIANTS
    from offload.cluster.predictor import DEFAULT_MODEL, PredictorError

    p = argparse.ArgumentParser(prog="python -m offload.cluster.agent", description=__doc__)
    p.add_argument("--router", help="the local cluster's URL")
    p.add_argument("--token-file", help="file with the cluster's bearer token")
    p.add_argument("--kubernetes", action="store_true", help="run as the DaemonSet's agent")
    p.add_argument("--namespace", default="robomr")
    p.add_argument("--node", default="", help="this node's name (Kubernetes)")
    p.add_argument("--cgroup-root", default="/sys/fs/cgroup", help="host cgroup mount")
    p.add_argument("--metrics-port", type=int, default=0, help="serve /healthz and /metrics")
    p.add_argument("--variant", default="full", choices=VARIANTS)
    p.add_argument("--interval", type=float, default=1.0, help="control interval (s)")
    p.add_argument("--model", default=str(DEFAULT_MODEL), help="CPI model, or 'none'")
    p.add_argument("--log", type=Path, help="JSON-lines log of every change")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(levelname)s] [%(name)s] %(message)s")
    predictor = None
    if args.model != "none":
        try:
            predictor = CpiPredictor.load(Path(args.model))
            held = predictor.provenance.get("held_out_scores", {}).get("gbt", {})
            if held.get("within10", 1.0) < 0.5:  # e.g. trained on a node busy with other work
                log.warning(
                    "CPI model %s is within 10%% on only %.0f%% of its held-out rows; "
                    "retrain it on this node (robomr cluster collect --train)",
                    args.model,
                    100 * held["within10"],
                )
        except PredictorError as err:
            log.warning("running without a CPI model: %s", err)
    config = AgentConfig(
        interval_s=args.interval, log_path=args.log, mitigation=MitigationConfig(args.variant)
    )
    if args.kubernetes:
        from offload.cluster.kube_agent import run_node_agent

        return run_node_agent(args, config, predictor)
    if not args.router or not args.token_file:
        p.error("--router and --token-file are needed (or --kubernetes)")
    token = Path(args.token_file).read_text().strip()
    agent = Agent(ClusterApi(args.router, token), config, predictor)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        agent.run(stop)
    except ClusterApiError as err:
        print(f"agent: error: {err}", file=sys.stderr)
        return 1
    finally:
        agent.close()
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
