"""The CPI predictor's features: one row per latency-sensitive replica per interval.

C-Koordinator predicts CPI from multi-dimensional metrics (CPU use, PSI, run queue, context
switches, memory, co-runner usage); here the row is built from what the agent measured over the
last interval plus the co-location *as it will be* during the next one (which co-runners run,
where, how hard, the BE cap), so that the same function answers what-if questions: "this
replica if the paused co-runners came back", "a new replica on cpu 1".

- own: cpu_used, rate_per_s, latency_p50_ms, outstanding, runq_wait, ctx_per_s, rss_mib,
  psi_cpu;
- node: node_cpu_used, node_psi_cpu, node_psi_io, node_psi_mem, node_runq, node_ctx_per_s,
  node_mem;
- co-location, per co-runner kind K: same_K_duty (running co-runners that may use its cpus, by
  nominal duty), same_K_cpu (their CPU there), other_K_cpu (their CPU elsewhere);
- co-location: same_ls_cpu (other replicas on its cpus), be_limit_frac (cap / capacity, 1 when
  uncapped), be_weight_frac (the BE group's CPU weight / 1024: 1 without CPU QoS, 2/1024
  with it; NaN when unknown);
- history: last_inflation (measured CPI / reference over the last interval).

Missing values are NaN (LightGBM handles them natively; the linear baseline imputes).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from offload.cluster.cgroups import DEFAULT_CPU_SHARES
from offload.cluster.corunner import KINDS
from offload.cluster.metrics import NodeMetrics, WorkloadMetrics
from offload.cluster.mitigation.interface import overlap

OWN = (
    "cpu_used",
    "rate_per_s",
    "latency_p50_ms",
    "outstanding",
    "runq_wait",
    "ctx_per_s",
    "rss_mib",
    "psi_cpu",
)
NODE = (
    "node_cpu_used",
    "node_psi_cpu",
    "node_psi_io",
    "node_psi_mem",
    "node_runq",
    "node_ctx_per_s",
    "node_mem",
)
COLOC = tuple(
    f"{where}_{k}_{what}"
    for k in KINDS
    for where, what in (("same", "duty"), ("same", "cpu"), ("other", "cpu"))
)
FEATURES = (
    *OWN,
    *NODE,
    *COLOC,
    "same_ls_cpu",
    "be_limit_frac",
    "be_weight_frac",
    "last_inflation",
)
NAN = float("nan")


@dataclass(frozen=True)
class CoRunnerState:
    """A co-runner as the features see it: kind, cpus (empty: any), nominal duty, whether it
    will run next interval, and the CPU it used (cores; its last running value for what-ifs)."""

    kind: str
    cpus: tuple[int, ...]
    duty: float
    running: bool
    cpu_used: float


@dataclass(frozen=True)
class ReplicaState:
    """A replica's own measurements over the last interval."""

    name: str
    cpus: tuple[int, ...]
    metrics: WorkloadMetrics | None
    rate_per_s: float = 0.0
    latency_p50_ms: float = NAN
    outstanding: float = 0.0
    last_inflation: float = NAN


def row(
    rep: ReplicaState,
    node: NodeMetrics,
    corunners: Iterable[CoRunnerState],
    others: Iterable[ReplicaState],
    be_limit_cores: float | None,
    be_shares: int | None = None,
) -> dict[str, float]:
    """The feature row of ``rep`` (see the module docstring)."""
    n = node.cores
    m = rep.metrics
    out: dict[str, float] = {
        "cpu_used": m.cpu_used if m else NAN,
        "rate_per_s": rep.rate_per_s,
        "latency_p50_ms": rep.latency_p50_ms,
        "outstanding": rep.outstanding,
        "runq_wait": m.runq_wait if m else NAN,
        "ctx_per_s": m.ctx_per_s if m else NAN,
        "rss_mib": m.rss_mib if m else NAN,
        "psi_cpu": m.psi_cpu if m else NAN,
        "node_cpu_used": node.cpu_used,
        "node_psi_cpu": node.psi_cpu,
        "node_psi_io": node.psi_io,
        "node_psi_mem": node.psi_mem,
        "node_runq": float(node.runq),
        "node_ctx_per_s": node.ctx_per_s,
        "node_mem": node.mem_used_frac,
    }
    for k in KINDS:
        out[f"same_{k}_duty"] = out[f"same_{k}_cpu"] = out[f"other_{k}_cpu"] = 0.0
    for c in corunners:
        share = overlap(rep.cpus, c.cpus, n)
        # the part of its CPU time spent on the replica's cpus, if spread evenly on its own
        mine = overlap(c.cpus, rep.cpus, n)
        if c.running:
            out[f"same_{c.kind}_duty"] += c.duty * share
            out[f"same_{c.kind}_cpu"] += c.cpu_used * mine
            out[f"other_{c.kind}_cpu"] += c.cpu_used * (1 - mine)
    out["same_ls_cpu"] = sum(
        (o.metrics.cpu_used if o.metrics else 0.0) * overlap(o.cpus, rep.cpus, n)
        for o in others
        if o.name != rep.name
    )
    out["be_limit_frac"] = 1.0 if be_limit_cores is None else min(1.0, be_limit_cores / n)
    out["be_weight_frac"] = NAN if be_shares is None else be_shares / DEFAULT_CPU_SHARES
    out["last_inflation"] = rep.last_inflation
    return out


def vector(features: Mapping[str, float]) -> list[float]:
    """The row in :data:`FEATURES` order (absent names are NaN)."""
    return [float(features.get(f, NAN)) for f in FEATURES]


def finite_or_nan(x: float) -> float:
    return x if isinstance(x, float | int) and math.isfinite(x) else NAN
