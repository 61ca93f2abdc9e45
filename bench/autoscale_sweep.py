"""The simulated part of ``robomr bench autoscale``: every policy, every knob, every trace.

Each policy runs on each trace with each setting of the two shared knobs (target utilisation
and scale-down window, ``offload.cluster.autoscaling.make_policy``) and each seed, in the
calibrated cluster simulation (``offload.cluster.autoscaling.simulate``). The model-based
policies are also swept over their own knob, the tail target of their M/G/c model
(``violation_targets``); the learned policy has no utilisation knob; it is swept over the window
only. Service times are the calibrated model
scaled so that the trace's mean offered load is ``load_replicas`` replicas; the SLO is
``slo_factor`` x the mean service time; start-up delays are the measured ones.

Selection, per trace (``select``):
- HPA's reference setting: the cheapest (fewest replica-seconds, mean over seeds) whose mean
  SLO-violation rate is at most ``slo_target``, as an operator would tune it; if none meets
  it, the setting with the fewest violations.
- Every other policy: among its settings with no more replica-seconds than HPA's reference,
  the one with the fewest violations (none that cheap: not comparable, its cheapest shown).
- The best policy: the comparable one with the fewest violations. The claim of the issue holds
  on a trace when it has fewer violations than HPA's reference.

Choosing the best of many settings on the same seeds flatters the winner, so ``confirm`` runs
every chosen setting again on fresh seeds (trace draws and service times never used in the
selection); the claim is judged on those runs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from offload.cluster.autoscaling import MODEL_BASED, make_policy
from offload.cluster.autoscaling.calibration import ServiceModel, StartupModel
from offload.cluster.autoscaling.interface import Bounds
from offload.cluster.autoscaling.simulate import SimConfig, SimRun, simulate
from offload.cluster.autoscaling.traces import Trace

METRICS = ("slo_violation_rate", "p99_ms", "replica_seconds", "scaling_actions", "forecast_error")


@dataclass(frozen=True)
class SweepSettings:
    """What every simulated run shares."""

    service: ServiceModel  # calibrated, unscaled
    startup: StartupModel  # measured start-up delays (with the cache unless ablated)
    load_replicas: float = 6.0
    slo_factor: float = 3.0
    bounds: Bounds = field(default_factory=lambda: Bounds(1, 24))
    utilizations: tuple[float, ...] = (0.5, 0.6, 0.7, 0.8, 0.9)
    windows_s: tuple[float, ...] = (60.0, 300.0)
    violation_targets: tuple[float, ...] = (0.01,)  # model-based policies' tail targets
    seeds: int = 3
    rl_weights: str | None = None

    def sim_config(self, trace: Trace, seed: int) -> SimConfig:
        mean_s, _ = self.service.moments()
        factor = self.load_replicas / (trace.mean_rate_hz * mean_s)
        return SimConfig(
            self.service.scaled(factor),
            self.startup,
            slo_s=self.slo_factor * mean_s * factor,
            initial_replicas=max(1, math.ceil(self.load_replicas)),
            seed=seed,
        )


@dataclass
class Point:
    """One (policy, utilisation, window, tail target) on one trace: the metrics per seed."""

    policy: str
    utilization: float | None
    window_s: float
    values: dict[str, list[float]] = field(default_factory=dict)
    violation_target: float | None = None  # model-based policies only

    @property
    def knobs(self) -> Knobs:
        return self.utilization, self.window_s, self.violation_target

    @property
    def setting(self) -> str:
        """``util/window`` (``-`` for no utilisation knob), ``/tail`` for model-based ones."""
        u = "-" if self.utilization is None else f"{self.utilization:g}"
        tail = "" if self.violation_target is None else f"/{self.violation_target:g}"
        return f"{u}/{self.window_s:g}{tail}"

    def mean(self, metric: str) -> float:
        v = [x for x in self.values.get(metric, []) if not math.isnan(x)]
        return float(np.mean(v)) if v else math.nan

    def ci95(self, metric: str, resamples: int = 2000) -> tuple[float, float]:
        """Bootstrap 95% interval of the mean over seeds."""
        v = np.asarray([x for x in self.values.get(metric, []) if not math.isnan(x)])
        if len(v) < 2:
            m = float(v.mean()) if len(v) else math.nan
            return m, m
        rng = np.random.default_rng(0)
        means = rng.choice(v, (resamples, len(v))).mean(axis=1)
        return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def run_metrics(run: SimRun) -> dict[str, float]:
    forecast = math.nan
    if run.states and hasattr(run.states[-1], "run_error"):
        forecast = run.states[-1].run_error
    return {
        "slo_violation_rate": run.slo_violation_rate,
        "p99_ms": run.p99_ms(),
        "replica_seconds": run.replica_seconds,
        "scaling_actions": float(run.scaling_actions),
        "forecast_error": forecast,
    }


Knobs = tuple[float | None, float, float | None]  # utilisation, window (s), tail target


def grid(policy: str, s: SweepSettings) -> list[Knobs]:
    utils: Sequence[float | None] = (None,) if policy.startswith("rl") else s.utilizations
    base = policy.removesuffix("+cpi")
    tails: Sequence[float | None] = s.violation_targets if base in MODEL_BASED else (None,)
    return [(u, w, v) for u in utils for w in s.windows_s for v in tails]


def build(policy: str, knobs: Knobs, s: SweepSettings) -> Any:
    u, w, v = knobs
    return make_policy(policy, u if u is not None else 0.7, w, s.bounds, s.rl_weights,
                       v if v is not None else 0.01)  # fmt: skip


def _one(policy: str, knobs: Knobs, seed: int, trace: Trace, s: SweepSettings,
         keep: bool) -> tuple[dict[str, float], SimRun | None]:  # fmt: skip
    run = simulate(trace, build(policy, knobs, s), s.sim_config(trace, seed),
                   keep_states=policy.startswith("predictive"))  # fmt: skip
    metrics = run_metrics(run)
    if not keep:
        return metrics, None
    run.states = []  # forecaster states (torch modules) stay in the worker
    return metrics, run


_JOBS: list[tuple[Any, ...]] = []  # what forked workers read (fork copies it; nothing pickled)


def _job(index: int) -> tuple[dict[str, float], SimRun | None]:
    policy, knobs, seed, traces, s, keep = _JOBS[index]
    return _one(policy, knobs, seed, traces(seed), s, keep)


def sweep_trace(
    traces: Callable[[int], Trace],
    policies: Sequence[str],
    s: SweepSettings,
    progress: Callable[[str], None] | None = None,
    keep: Callable[[str, Knobs], bool] | None = None,
    jobs: int = 1,
    seeds: Sequence[int] | None = None,
    settings: Sequence[tuple[str, Knobs]] | None = None,
) -> tuple[list[Point], dict[tuple[str, Knobs], SimRun]]:
    """Every policy and setting on ``traces(seed)`` for each seed, in ``jobs`` forked worker
    processes (1: in this one; the runs are independent and seeded, so the result is the
    same). Returns the points and the first seed's runs that ``keep(policy, knobs)`` asks for
    (for the timeline figure). ``seeds`` (default ``range(s.seeds)``) and ``settings``
    (default: every policy's ``grid``) narrow it, e.g. to confirm chosen settings on fresh
    seeds."""
    seeds = list(range(s.seeds)) if seeds is None else list(seeds)
    if settings is None:
        settings = [(policy, knobs) for policy in policies for knobs in grid(policy, s)]
    work = [
        (policy, knobs, seed, traces, s,
         seed == seeds[0] and keep is not None and keep(policy, knobs))
        for policy, knobs in settings
        for seed in seeds
    ]  # fmt: skip
    policies = list(dict.fromkeys(policy for policy, _ in settings))
    done_per_policy = dict.fromkeys(policies, 0)
    total_per_policy = {p: sum(1 for q, _ in settings if q == p) * len(seeds) for p in policies}
    results: list[tuple[dict[str, float], SimRun | None]] = []

    def note(policy: str) -> None:
        done_per_policy[policy] += 1
        if progress and done_per_policy[policy] == total_per_policy[policy]:
            n = total_per_policy[policy] // len(seeds)
            progress(f"  {policy}: {n} settings x {len(seeds)} seeds done")

    if jobs <= 1:
        for policy, knobs, seed, tr, st, kp in work:
            results.append(_one(policy, knobs, seed, tr(seed), st, kp))
            note(policy)
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        _JOBS[:] = work
        try:
            ctx = multiprocessing.get_context("fork")
            with ProcessPoolExecutor(jobs, mp_context=ctx) as pool:
                for item, result in zip(work, pool.map(_job, range(len(work))), strict=True):
                    results.append(result)
                    note(item[0])
        finally:
            _JOBS.clear()
    points: dict[tuple[str, Knobs], Point] = {}
    kept = {}
    for (policy, knobs, _seed, *_), (metrics, run) in zip(work, results, strict=True):
        u, w, v = knobs
        point = points.setdefault((policy, knobs), Point(policy, u, w, violation_target=v))
        for k, value in metrics.items():
            point.values.setdefault(k, []).append(value)
        if run is not None:
            kept[(policy, knobs)] = run
    return list(points.values()), kept


@dataclass
class Selection:
    """The comparison on one trace (see the module docstring)."""

    hpa: Point
    chosen: dict[str, Point]
    comparable: dict[str, bool]
    best: str | None

    @property
    def claim_holds(self) -> bool:
        if self.best is None:
            return False
        best = self.chosen[self.best]
        return best.mean("slo_violation_rate") < self.hpa.mean("slo_violation_rate")


def select(points: Sequence[Point], slo_target: float) -> Selection:
    """HPA's reference setting, each policy's setting at no more cost, the best policy."""
    hpa_points = [p for p in points if p.policy == "hpa"]
    if not hpa_points:
        raise ValueError("the comparison needs HPA in the sweep")
    meeting = [p for p in hpa_points if p.mean("slo_violation_rate") <= slo_target]
    if meeting:
        ref = min(meeting, key=lambda p: p.mean("replica_seconds"))
    else:
        ref = min(hpa_points, key=lambda p: p.mean("slo_violation_rate"))
    budget = ref.mean("replica_seconds")
    chosen, comparable = {"hpa": ref}, {"hpa": True}
    for name in dict.fromkeys(p.policy for p in points if p.policy != "hpa"):
        mine = [p for p in points if p.policy == name]
        within = [p for p in mine if p.mean("replica_seconds") <= budget]
        if within:
            chosen[name] = min(within, key=lambda p: (p.mean("slo_violation_rate"),
                                                      p.mean("replica_seconds")))  # fmt: skip
            comparable[name] = True
        else:
            chosen[name] = min(mine, key=lambda p: p.mean("replica_seconds"))
            comparable[name] = False
    candidates = [n for n in chosen if n != "hpa" and comparable[n]]
    best = min(candidates, key=lambda n: chosen[n].mean("slo_violation_rate"), default=None)
    return Selection(ref, chosen, comparable, best)


def frontier_dominance(points: Sequence[Point], policy: str) -> float:
    """Share of HPA's settings that ``policy`` beats: some setting of it has no more
    replica-seconds and strictly fewer violations."""
    hpa = [p for p in points if p.policy == "hpa"]
    mine = [p for p in points if p.policy == policy]
    beaten = sum(
        any(
            m.mean("replica_seconds") <= h.mean("replica_seconds")
            and m.mean("slo_violation_rate") < h.mean("slo_violation_rate")
            for m in mine
        )
        for h in hpa
    )
    return beaten / len(hpa) if hpa else math.nan


def policy_entry(point: Point, hpa: Point, comparable: bool) -> dict[str, Any]:
    """The JSON entry of a chosen setting, with ratios against HPA's reference."""
    entry: dict[str, Any] = {m: point.mean(m) for m in METRICS}
    entry["scaling_actions"] = point.mean("scaling_actions")
    entry["slo_violation_rate_ci95"] = point.ci95("slo_violation_rate")
    entry["replica_seconds_ci95"] = point.ci95("replica_seconds")
    entry["target_utilization"] = point.utilization
    entry["scale_down_window_s"] = point.window_s
    entry["target_violation"] = point.violation_target
    entry["within_hpa_cost"] = comparable
    hv, hc = hpa.mean("slo_violation_rate"), hpa.mean("replica_seconds")
    entry["violations_vs_hpa"] = point.mean("slo_violation_rate") / hv if hv > 0 else math.nan
    entry["replica_seconds_vs_hpa"] = point.mean("replica_seconds") / hc if hc > 0 else math.nan
    return entry


CONFIRM_SEED_OFFSET = 1000  # fresh seeds: never used by the sweep that chose the settings


def confirm(
    traces: Callable[[int], Trace], sel: Selection, s: SweepSettings, jobs: int = 1
) -> dict[str, Point]:
    """Every chosen setting (HPA's reference included) again on ``s.seeds`` fresh seeds."""
    settings = [(policy, point.knobs) for policy, point in sel.chosen.items()]
    seeds = range(CONFIRM_SEED_OFFSET, CONFIRM_SEED_OFFSET + s.seeds)
    points, _ = sweep_trace(traces, [], s, jobs=jobs, seeds=seeds, settings=settings)
    return {point.policy: point for point in points}


def confirmed_claim(sel: Selection, fresh: dict[str, Point]) -> bool:
    """The claim on the fresh seeds: the best policy has fewer violations than HPA's reference
    at no more replica-seconds."""
    if sel.best is None:
        return False
    best, hpa = fresh[sel.best], fresh["hpa"]
    return best.mean("slo_violation_rate") < hpa.mean("slo_violation_rate") and best.mean(
        "replica_seconds"
    ) <= hpa.mean("replica_seconds")
