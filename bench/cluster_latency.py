"""The latency experiment of ``robomr bench cluster``: one co-runner schedule, one Poisson
load, replayed under each mitigation variant on the same local cluster.

Designed for a quiet 2-vCPU VM (docs/cluster.md): the replicas are pinned one per core, and the
schedule's co-runners are pinned to a replica's core ("r0", "r1") or left free ("any"), since
on these machines a co-runner hurts mostly by time-sharing a core (about 2.8x), while a cache
or memory hog on the other core costs about 7% (design.md). Interference is asymmetric in most
phases (one core busier), which is where steering can help and a node-wide cap cannot tell
replicas apart.

Per variant: the BE cap is lifted and the router weights reset, the agent starts with the
variant (it measures CPI in every variant, so the probes cost the same everywhere), the load
starts, then each phase starts its co-runners, runs ``phase_s`` and stops them. Latency is
what the client sees through the router; a request that fails or misses its deadline counts
as a failure (reported), not as a latency. BE throughput is each co-runner's own work units
over its phase.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

SCHEDULE: tuple[tuple[str, tuple[dict[str, Any], ...]], ...] = (
    ("cpu hog on r1", ({"kind": "cpu", "on": "r1"},)),
    ("cpu hog on r0, cache on r1", ({"kind": "cpu", "on": "r0"}, {"kind": "cache", "on": "r1"})),
    (
        "membw anywhere, 60% hog on r1",
        ({"kind": "membw", "on": "any"}, {"kind": "cpu", "on": "r1", "duty": 0.6}),
    ),
    ("io anywhere, cpu hog on r0", ({"kind": "io", "on": "any"}, {"kind": "cpu", "on": "r0"})),
)


@dataclass
class VariantRun:
    """One variant's run: latencies (s) and failures per phase, BE units per (phase, name)."""

    variant: str
    repeat: int
    latencies: dict[str, list[float]] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)
    be_units: dict[tuple[str, str], int] = field(default_factory=dict)
    actions: dict[str, int] = field(default_factory=dict)

    def all_latencies(self) -> np.ndarray:
        return np.array([x for v in self.latencies.values() for x in v])


def corunner_bodies(
    phase: tuple[dict[str, Any], ...], replica_cpus: dict[str, list[int]], seed: int
) -> list[dict[str, Any]]:
    """The phase's co-runners with "on" resolved to cpus (r0/r1: that replica's cpus)."""
    out = []
    for i, c in enumerate(phase):
        cpus = [] if c["on"] == "any" else replica_cpus[c["on"]]
        out.append(
            {
                "name": f"be-{i}-{c['kind']}",
                "kind": c["kind"],
                "cpus": cpus,
                "duty": c.get("duty", 1.0),
                "seed": seed + i,
            }
        )
    return out


def reset(api: Any) -> None:
    """No co-runner, no BE cap, the BE group at the LS group's CPU weight (1024: no CPU QoS),
    every router weight 1 (through an executor, which logs it)."""
    from offload.cluster.cgroups import DEFAULT_CPU_SHARES, detect
    from offload.cluster.executor import Executor
    from offload.cluster.mitigation.interface import SetBeLimit, SetBeWeight, SetWeights
    from offload.cluster.targets import AgentTargets

    st = api.status()
    for c in st["corunners"]:
        if c["state"] in ("running", "paused"):
            api.corunner_op(c["name"], "stop")
    ex = Executor(AgentTargets(api, detect()))
    ex.apply(
        [
            SetBeLimit("bench: reset", None),
            SetBeWeight("bench: reset", DEFAULT_CPU_SHARES),
            SetWeights("bench: reset", {r["name"]: 1.0 for r in st["replicas"]}),
        ]
    )


def run_variant(
    url: str,
    token: str,
    variant: str,
    predictor: Any,
    *,
    rate_per_s: float,
    phase_s: float,
    interval_s: float,
    probe_bursts: int,
    deadline_s: float,
    seed: int,
    repeat: int,
    schedule: tuple = SCHEDULE,
    progress: Any = print,
    full_relax_frac: float | None = None,
) -> VariantRun:
    """One pass of the schedule under ``variant`` (:func:`variant_config`)."""
    from offload.cluster.agent import Agent, AgentConfig
    from offload.cluster.api import ClusterApi
    from offload.cluster.load import PoissonLoad, street_scan

    api = ClusterApi(url, token)
    reset(api)
    st = api.status()
    replica_cpus = {"r0": st["replicas"][0]["cpus"], "r1": st["replicas"][-1]["cpus"]}
    mitigation, measured = variant_config(variant, full_relax_frac)
    model = None if measured else predictor
    agent = Agent(
        api,
        AgentConfig(interval_s=interval_s, probe_bursts=probe_bursts, mitigation=mitigation),
        model,
    )
    stop = threading.Event()
    thread = threading.Thread(target=agent.run, args=(stop,), daemon=True)
    thread.start()
    out = VariantRun(variant, repeat)
    while agent.step_count < 1 and thread.is_alive():  # probes calibrated, one interval done
        time.sleep(0.1)
    load = PoissonLoad(
        url, token, street_scan(seed=seed), deadline_s=deadline_s, seed=seed * 7919 + repeat
    ).start()  # same arrivals for every variant
    load.set_rate(rate_per_s)
    windows = {}
    try:
        for p, (title, phase) in enumerate(schedule):
            bodies = corunner_bodies(phase, replica_cpus, seed * 100 + p)
            for b in bodies:
                api.add_corunner(b)
            start_units = {c["name"]: c["units"] for c in api.status()["corunners"]}
            t0 = time.monotonic()
            time.sleep(phase_s)
            windows[title] = (t0, time.monotonic())
            for c in api.status()["corunners"]:  # evicted ones too: their units until then
                if c["name"] in start_units:
                    out.be_units[(title, c["name"])] = c["units"] - start_units[c["name"]]
            for b in bodies:
                api.corunner_op(b["name"], "stop")
            progress(f"  {variant} #{repeat + 1} phase {p + 1}/{len(schedule)} ({title})")
    finally:
        load.stop()  # waits for the requests in flight: every phase's answers are in
        stop.set()
        thread.join(timeout=30.0)
        out.actions = dict(agent.executor.counts)
        agent.close()
        reset(api)
    for title, (t0, t1) in windows.items():
        samples = load.between(t0, t1)
        out.latencies[title] = [s.latency_s for s in samples if s.outcome == "ok"]
        out.failures[title] = sum(s.outcome != "ok" for s in samples)
    return out


def variant_config(variant: str, full_relax_frac: float | None = None) -> tuple[Any, bool]:
    """The mitigation settings of a benchmark variant and whether it runs on measured CPI:
    a variant of :data:`offload.cluster.mitigation.VARIANTS`, ``full-measured`` (full on
    measured CPI), or ``NAME:X`` (NAME with the full variants' threshold raise X, for a sweep
    in one run); ``full_relax_frac`` is the raise of the variants without one.

    Raises:
        MitigationError: an unknown variant or a raise out of range.
    """
    from offload.cluster.mitigation import MitigationConfig, MitigationError

    name, _, relax = variant.partition(":")
    measured = name == "full-measured"
    config = MitigationConfig("full" if measured else name)
    try:
        raise_ = float(relax) if relax else full_relax_frac
        if raise_ is not None:
            config = replace(config, full_relax_frac=raise_)  # MitigationConfig checks the range
    except ValueError as err:  # MitigationError is one
        raise MitigationError(f"variant {variant!r}: {err}") from err
    return config, measured


def _p(x: list[float] | np.ndarray, q: float) -> float:
    return float(np.percentile(x, q) * 1e3) if len(x) else float("nan")


def percentiles_ms(x: np.ndarray) -> dict[str, float]:
    return {"p50": _p(x, 50), "p90": _p(x, 90), "p99": _p(x, 99)}


def bootstrap_ratio_ci(
    a: np.ndarray, b: np.ndarray, q: float = 99, n: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """95% bootstrap interval of percentile_q(a) / percentile_q(b) (requests resampled)."""
    if len(a) < 10 or len(b) < 10:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    r = [
        np.percentile(rng.choice(a, len(a)), q) / np.percentile(rng.choice(b, len(b)), q)
        for _ in range(n)
    ]
    return float(np.percentile(r, 2.5)), float(np.percentile(r, 97.5))


def be_kept(runs: list[VariantRun], variant: str, phase: str | None = None) -> float:
    """Mean over (repeat, phase, co-runner) of units under ``variant`` / units under off (one
    schedule phase's co-runners with ``phase``)."""
    off = {(r.repeat, k): u for r in runs if r.variant == "off" for k, u in r.be_units.items()}
    ratios = [
        u / off[(r.repeat, k)]
        for r in runs
        if r.variant == variant
        for k, u in r.be_units.items()
        if off.get((r.repeat, k), 0) > 0 and (phase is None or k[0] == phase)
    ]
    return float(np.mean(ratios)) if ratios else float("nan")
