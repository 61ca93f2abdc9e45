"""Brownout figures of ``robomr bench lm``: where a step's time goes per level, and bursts.

1. **Profile.** Each brownout level's decode step (B sequences) and prefill, in CPU time, split
   into attention, MoE feed-forward and the rest (embedding, norms, head, cache bookkeeping),
   and the step-cost fits the slack law predicts with (``offload.models.lm.stepcost``). The
   speed-up a level can give is bounded by the MoE share: attention does not change.
2. **Capacity per level**: every request of the trace queued at once, FIFO continuous batching
   at a fixed level; requests per CPU second, relative to tau = 1. A burst above the capacity
   at tau = 0 queues up whatever the law does.
3. **Bursts**: on/off Poisson arrivals (0.5x capacity, bursts of ``--burst-factors`` x capacity
   for 3 s every 6 s) with request sizes from the trace, ``--burst-seeds`` arrival seeds, bucket
   batching with brownout off, with BrownoutServe's periodic P90 law (the reference, every 0.5
   s, rounded to whole experts) and with the per-step slack law (ours, ``slack``). SLO
   violations, their reduction against off (1 - mean(on) / mean(off) over seeds, paired
   bootstrap 95% CI with seeds resampled), and the share of output tokens served at each level
   (the token-weighted perplexity cost is computed from it once the per-level perplexities are
   measured, ``token_weighted_cost``). Every burst engine, brownout on or off, admits through
   the decode-protecting prefill guard (``offload.models.lm.prefill_guard``, on the same step
   costs as the slack law; ``--prefill-guard off``: without it, the engine of session 12);
   up to the headline height the bursts also run without it (the ablation: does the guard
   or the brownout do the work, and is the baseline off any worse for it), and the guard's
   margin is swept at the headline.

Clock (``--replay-clock``): the replays advance by each engine step's CPU time (``cpu``, the
default), or by a step-cost model fitted on measured steps (``model``, ``bench.lm_clock``):
calibrated with the levels taking turns on replays of their own (arrival seeds from 10000),
then the capacities, the SLO (5x the modelled isolated TTFT and decode step), the slack law's
cost table and every burst replay use the model: a replay no longer depends on how fast its own
steps ran, only the calibration can change between runs. The fit, an out-of-sample check
(predicted / measured CPU time over the replays run on the clock: the capacities and the
bursts) and the bursts again on the clock
corrected by that check are reported.
"""

from __future__ import annotations

import argparse
import itertools
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from bench.lm_clock import (
    FEATURES,
    Clock,
    ClockSet,
    RecordingBackend,
    StepCostModel,
    decode_work,
    prefill_work,
    step_costs,
)
from bench.lm_clock_grid import OVERHEAD_FEATURES, Grid, fit_grid, grid_samples
from bench.lm_replay import Outcome, ReplayResult, Slo, bursty, replay, scale_trace
from bench.report import BenchReport, Table
from bench.serving_brownout import reduction_ci
from offload.models.lm.backend import MoEBackend
from offload.models.lm.engine import Engine, EngineConfig
from offload.models.lm.generate import argmax_rows
from offload.models.lm.model import MoELM
from offload.models.lm.prefill_guard import PrefillGuard, PrefillGuardConfig
from offload.models.lm.scheduling import PolicyConfig
from offload.models.lm.slack import SlackLawConfig, StepCosts, step_law
from offload.models.lm.stepcost import measure_step_costs
from offload.serving.brownout import BrownoutConfig
from offload.serving.models.lm import expert_level_law

Backend = MoEBackend | RecordingBackend  # the engines' backend: plain, or recording its work
BURST_PERIOD_S = 6.0  # on/off cycle of the burst pattern (virtual seconds)
BURST_S = 3.0  # burst length within each cycle
CALIBRATION_ROUNDS = 6  # turns each level takes in the model clock's calibration
CONTROL_PERIOD_S = 0.5  # the paper law's period (the paper: 5 s; our requests are ~10x shorter)
# off; the paper's periodic law; the per-step slack law; tau = 0 throughout (the most any law
# using this united expert can cut: every step at its cheapest, whatever the perplexity)
LAWS = ("off", "paper", "slack", "fixed0")


@contextmanager
def _timed_parts(model: MoELM) -> Iterator[dict[str, float]]:
    """CPU time spent in attention and in the MoE feed-forward while the block runs."""
    acc = {"attn": 0.0, "moe": 0.0}

    def wrap(obj: Any, name: str, part: str) -> None:
        inner = getattr(obj, name)

        def timed(*a: Any, **k: Any) -> Any:
            start = time.thread_time()
            try:
                return inner(*a, **k)
            finally:
                acc[part] += time.thread_time() - start

        setattr(obj, name, timed)

    hooked = [(b.attn, "forward", "attn") for b in model.blocks]
    hooked += [(b.attn, "decode", "attn") for b in model.blocks]
    hooked += [(b.moe, "forward", "moe") for b in model.blocks]
    for obj, name, part in hooked:
        wrap(obj, name, part)
    try:
        yield acc
    finally:
        for obj, name, _ in hooked:  # drop the instance attributes: the class methods return
            delattr(obj, name)


@torch.no_grad()
def _parts(model: MoELM, work: str, batch: int, steps: int) -> tuple[float, float, float]:
    """(step, attention, MoE) CPU seconds per decode step or per prefill call (4 x 16)."""
    g = torch.Generator().manual_seed(batch)
    plen = 24 if work == "decode" else 16
    tokens = torch.randint(1, model.cfg.vocab_size, (batch, plen), generator=g)
    lengths = torch.full((batch,), plen)
    logits, cache = model.prefill(tokens, lengths)
    nxt = argmax_rows(model.decode(argmax_rows(logits), cache))  # warm-up
    reps = steps if work == "decode" else max(2, steps // 4)
    with _timed_parts(model) as acc:
        start = time.thread_time()
        for _ in range(reps):
            if work == "decode":
                nxt = argmax_rows(model.decode(nxt, cache))
            else:
                model.prefill(tokens, lengths)
        total = time.thread_time() - start
    return total / reps, acc["attn"] / reps, acc["moe"] / reps


def profile(
    model: MoELM, levels: list[float], batches: list[int], steps: int, report: BenchReport
) -> dict[str, Any]:
    """Per level and batch: decode step ms (attention / MoE / rest) and speed-up vs tau = 1."""
    table = Table(
        "where a step's time goes, per brownout level (CPU ms; decode after 24 prompt tokens, "
        "prefill of 4 prompts x 16 tokens)",
        ["tau", "work", "batch", "step ms", "attention ms", "MoE ms", "rest ms",
         "speed-up vs tau 1"],
    )  # fmt: skip
    out: dict[str, Any] = {}
    base: dict[tuple[str, int], float] = {}
    try:
        for tau in levels:
            model.set_brownout(tau)
            for work, b in [("decode", b) for b in batches] + [("prefill", 4)]:
                total, attn, moe = _parts(model, work, b, steps)
                base.setdefault((work, b), total)
                speed = base[(work, b)] / total
                table.add(tau, work, b, total * 1e3, attn * 1e3, moe * 1e3,
                          max(total - attn - moe, 0.0) * 1e3, speed)  # fmt: skip
                out.setdefault(str(tau), {})[f"{work}_{b}"] = {
                    "step_ms": total * 1e3,
                    "attention_ms": attn * 1e3,
                    "moe_ms": moe * 1e3,
                    "speedup": speed,
                }
    finally:
        model.set_brownout(1.0)
    report.tables.append(table)
    return out


def _engine(
    backend: Backend, budget: int, policy: Any, law: Any = None, guard: PrefillGuard | None = None
) -> Engine:
    """An engine for the replays; on a recording backend (the model clock) the CPU time of the
    law (with the observation it reads) and of the guard (with the running sequences' views it
    reads) is measured and charged to the step (``RecordingBackend.charge``): the fitted costs
    hold only what the calibration ran, which had neither."""
    cfg = EngineConfig(budget, policy, PolicyConfig())
    if not isinstance(backend, RecordingBackend):
        return Engine(backend, cfg, level_law=law, prefill_guard=guard)
    charged = _ChargedGuard(guard, backend) if guard is not None else None
    engine = Engine(backend, cfg, level_law=law and _charged(law, backend),
                    prefill_guard=charged)  # type: ignore[arg-type]  # fmt: skip
    if law is not None:
        engine.observe = _charged(engine.observe, backend)  # type: ignore[method-assign]
    if guard is not None:
        engine._protected = _charged(engine._protected, backend)  # type: ignore[method-assign]
    return engine


def _charged(fn: Callable[..., Any], backend: RecordingBackend) -> Callable[..., Any]:
    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.thread_time()
        try:
            return fn(*args, **kwargs)
        finally:
            backend.charge(time.thread_time() - start)

    return timed


class _ChargedGuard:
    """A prefill guard whose decisions are charged to the step (``_engine``)."""

    def __init__(self, guard: PrefillGuard, backend: RecordingBackend) -> None:
        self.cfg = guard.cfg
        self.defers = _charged(guard.defers, backend)
        self.prefill_s = _charged(guard.prefill_s, backend)


def _guard(
    args: argparse.Namespace, costs: tuple[StepCosts, ...], margin: float | None = None
) -> PrefillGuard | None:
    """The burst engines' prefill guard at the command's settings (None: ``--prefill-guard
    off``), on the slack law's step costs."""
    if args.prefill_guard == "off":
        return None
    steps = args.guard_margin if margin is None else margin
    return PrefillGuard(PrefillGuardConfig(costs, margin_steps=steps))


def _arrivals(
    args: argparse.Namespace, reqs: list[Any], capacity: float, factor: float, seed: int
) -> list[Any]:
    """The burst pattern of the figures: 0.5x ``capacity``, bursts of ``factor`` x for
    ``BURST_S`` every ``BURST_PERIOD_S``, over ``--burst-seconds``."""
    return bursty(reqs, 0.5 * capacity, factor * capacity, BURST_PERIOD_S, BURST_S,
                  args.burst_seconds, seed)  # fmt: skip


def _paper_law(slo: Slo, n_experts: int) -> Callable[[float, list[Outcome]], float | None]:
    """The serving issue's BrownoutServe law (``offload.serving.brownout.decide``, as the HTTP
    service runs it with ``--brownout-law paper``) on each finished request's latency / SLO,
    its level rounded to whole experts."""
    level = expert_level_law(BrownoutConfig(slo_s=1.0, period_s=CONTROL_PERIOD_S), n_experts)

    def law(now: float, done: list[Outcome]) -> float | None:
        return level([o.normalized(slo) for o in done])

    return law


def capacity_per_level(
    backend: Backend, budget: int, trace: list[Any], prompts: np.ndarray, slo: Slo,
    levels: list[float], clock: Clock | None = None,
) -> dict[float, float]:  # fmt: skip
    """Requests per CPU second (or per second of ``clock``) with every request queued at once
    (FIFO), per fixed level."""
    closed = [replace(r, arrival_s=0.0) for r in trace]
    out = {}
    for tau in levels:
        engine = _engine(backend, budget, "fifo")
        engine.set_brownout(tau)
        out[tau] = len(closed) / replay(engine, closed, prompts, slo, clock=clock).duration_s
        backend.set_brownout(1.0)
    return out


def _run(
    law: str, backend: Backend, budget: int, timed: list[Any], prompts: np.ndarray, slo: Slo,
    slack_cfg: SlackLawConfig, clock: Clock | None = None, guard: PrefillGuard | None = None,
) -> ReplayResult:  # fmt: skip
    n_experts = backend.model.cfg.n_experts
    if law == "slack":
        engine = _engine(backend, budget, "bucket", step_law(slack_cfg), guard)
        res = replay(engine, timed, prompts, slo, clock=clock)
    elif law == "fixed0":
        engine = _engine(backend, budget, "bucket", guard=guard)
        engine.set_brownout(0.0)
        res = replay(engine, timed, prompts, slo, clock=clock)
    elif law == "paper":
        engine = _engine(backend, budget, "bucket", guard=guard)
        law_fn = _paper_law(slo, n_experts)
        res = replay(engine, timed, prompts, slo, law_fn, CONTROL_PERIOD_S, clock=clock)
    else:
        engine = _engine(backend, budget, "bucket", guard=guard)
        res = replay(engine, timed, prompts, slo, clock=clock)
    backend.set_brownout(1.0)
    return res


def _time_below_one(res: ReplayResult) -> float:
    """Share of the run's time spent at tau < 1."""
    below, marks = 0.0, [*res.tau, (res.duration_s, 1.0)]
    for (t0, tau), (t1, _) in itertools.pairwise(marks):
        below += (t1 - t0) if tau < 1.0 else 0.0
    return below / res.duration_s if res.duration_s else 0.0


def _shares(results: list[ReplayResult]) -> dict[str, float]:
    """Share of all output tokens made at each level (pooled over seeds)."""
    total: dict[float, int] = {}
    for res in results:
        for tau, n in res.tokens_at_level.items():
            total[tau] = total.get(tau, 0) + n
    n_all = sum(total.values()) or 1
    return {str(t): n / n_all for t, n in sorted(total.items(), reverse=True)}


def token_weighted_cost(shares: dict[str, float], cost: dict[str, float]) -> float:
    """Token-weighted mean of the per-level perplexity cost (ppl(tau) / ppl(1) - 1)."""
    return float(sum(share * cost[str(float(t))] for t, share in shares.items()))


def bursts(
    args: argparse.Namespace,
    backend: MoEBackend,
    budget: int,
    raw: list[Any],
    capacity: float,
    slo: Slo,
    prompts: np.ndarray,
    report: BenchReport,
    figures: dict[str, Any],
) -> None:
    """Profile, capacity per level, and the burst sweep (module docstring)."""
    model = backend.model
    levels = sorted({1.0, *(float(x) for x in args.levels.split(",") if x.strip())}, reverse=True)
    figures["brownout_profile"] = profile(model, levels, [1, 8, 16, 32], args.decode_steps, report)
    reqs = scale_trace(raw, args.length_scale, backend.max_seq_len)
    clocks = ClockSet(RecordingBackend(backend)) if args.replay_clock == "model" else None
    clock: Clock | None = None
    if clocks is None:
        costs = measure_step_costs(model, levels)
        cap = capacity_per_level(backend, budget, reqs[: args.requests], prompts, slo, levels)
    else:  # the engines run on the recording backend; time from the fitted step costs
        backend = clocks.backend  # type: ignore[assignment]
        cap, fitted, calibration = _calibrate(
            clocks, budget, reqs[: args.requests], prompts, slo, levels,
            method=args.clock_calibration, grid=Grid(repeats=args.clock_grid_repeats),
            slo_scale=args.slo_scale,
        )  # fmt: skip
        clock = clocks.modelled
        capacity = cap[1.0]
        slo = _modelled_slo(fitted, reqs, args.slo_scale, clocks.backend.expert_miss)
        figures["brownout_clock_fit"] = fitted.quality(clocks.calibration)
        figures["brownout_clock_calibration"] = calibration
        _calibration_table(calibration, report)
        costs = step_costs(fitted, clocks.backend.expert_miss)  # the law predicts on the clock
        figures["brownout_clock_slo"] = {"ttft_s": slo.ttft_s, "tpot_s": slo.tpot_s}
    figures["brownout_step_costs"] = {str(c.tau): vars(c) for c in costs}
    figures["brownout_replay_clock"] = args.replay_clock
    figures["brownout_capacity_ratio"] = {str(t): c / cap[1.0] for t, c in cap.items()}
    _cost_table(costs, cap, report, args.replay_clock)
    slack_cfg = _slack_config(args, costs, cap)
    costs = slack_cfg.costs
    guard = _guard(args, costs)
    factors = [float(x) for x in args.burst_factors.split(",") if x.strip()]
    seeds = [int(x) for x in args.burst_seeds.split(",") if x.strip()]
    headline = str(args.burst_headline if args.burst_headline in factors else factors[0])
    table = Table(
        f"united-expert brownout under bursts ({args.burst_seconds:g} s at 0.5x capacity with "
        f"{BURST_S:g} s bursts every {BURST_PERIOD_S:g} s; seeds {args.burst_seeds}; paper: P90 "
        f"law every {CONTROL_PERIOD_S:g} s; slack: per step, headroom {args.slack_headroom:g}, "
        f"utilisation {args.slack_utilisation:g}; "
        "fixed0: tau 0 throughout, the bound of any law; prefill guard "
        f"{_guard_label(args)})",
        ["burst x capacity", "law", "requests", "SLO violations (mean)", "in bursts",
         "in calm", "reduction", "95% CI", "TTFT p90 ms", "TPOT p90 ms", "time below tau 1",
         "tokens per level"],
    )  # fmt: skip
    red: dict[str, dict[str, dict[str, float]]] = {law: {} for law in LAWS if law != "off"}
    violations: dict[str, dict[str, Any]] = {}
    guarded: dict[str, dict[str, np.ndarray]] = {}  # factor -> law -> violations per seed
    shares: dict[str, dict[str, dict[str, float]]] = {law: {} for law in LAWS if law != "off"}
    for factor in factors:
        runs: dict[str, list[ReplayResult]] = {law: [] for law in LAWS}
        for seed in seeds:
            timed = _arrivals(args, reqs, capacity, factor, seed)
            for law in LAWS:
                runs[law].append(
                    _run(law, backend, budget, timed, prompts, slo, slack_cfg, clock, guard)
                )
            print(f"  bursts {factor:g}x seed {seed}: violations "
                  + " ".join(f"{law} {runs[law][-1].violations(slo)}" for law in LAWS),
                  flush=True)  # fmt: skip
        v = {law: np.array([r.violations(slo) for r in runs[law]], float) for law in LAWS}
        key = str(factor)
        violations[key] = {law: v[law].tolist() for law in LAWS}
        violations[key]["requests"] = [len(r.outcomes) for r in runs["off"]]
        for law in LAWS:
            ci = (0.0, 0.0, 0.0) if law == "off" else reduction_ci(v["off"], v[law])
            mix_shares = _shares(runs[law])
            if law != "off":
                red[law][key] = {"mean": ci[0], "lo": ci[1], "hi": ci[2]}
                shares[law][key] = mix_shares
            pooled = [o for r in runs[law] for o in r.outcomes]
            burst, calm = _by_phase(pooled, slo)
            violations[key][f"{law}_in_bursts"] = burst / len(seeds)
            ttft = np.percentile([o.ttft_s for o in pooled], 90) * 1e3
            tpot = np.percentile([o.tpot_s for o in pooled], 90) * 1e3
            below = float(np.mean([_time_below_one(r) for r in runs[law]]))
            mix = " ".join(f"{t}:{s:.2f}" for t, s in mix_shares.items())
            table.add(factor, law, int(np.mean(violations[key]["requests"])), float(v[law].mean()),
                      burst / len(seeds), calm / len(seeds), ci[0], f"[{ci[1]:.2f}, {ci[2]:.2f}]",
                      ttft, tpot, below, mix)  # fmt: skip
        guarded[key] = v
        if key == headline:
            _headroom_sweep(args, backend, budget, reqs, capacity, factor, seeds, prompts, slo,
                            costs, v["off"], report, figures, clock, guard)  # fmt: skip
    report.tables.append(table)
    if guard is not None:
        _guard_ablation(args, backend, budget, reqs, capacity, float(headline), seeds, prompts,
                        slo, slack_cfg, guarded, report, figures, clock)  # fmt: skip
    figures["brownout_violation_reduction"] = red["slack"][headline]["mean"]
    figures["brownout_violation_reduction_paper"] = red["paper"][headline]["mean"]
    figures["brownout_violation_reduction_bound"] = red["fixed0"][headline]["mean"]
    figures["brownout_violation_reduction_by_burst"] = red
    figures["brownout_violations"] = violations
    figures["brownout_token_share"] = shares
    figures["brownout_headline_burst"] = float(headline)
    if clocks is not None and clocks.model is not None:  # out of sample: capacities and bursts
        figures["brownout_clock_check"] = clocks.model.quality(clocks.checked)
        _clock_table(clocks, report)
        upto = [f for f in factors if f <= float(headline)]
        _corrected_clock_bursts(args, clocks, budget, reqs, prompts, seeds, upto, report,
                                figures)  # fmt: skip
    for law in ("slack", "paper", "fixed0"):
        report.ratios[f"SLO violations {law} / off (bursts {headline}x)"] = (
            1 - red[law][headline]["mean"]
        )


def _slack_config(
    args: argparse.Namespace, costs: tuple[StepCosts, ...], cap: dict[float, float]
) -> SlackLawConfig:
    """The slack law at the command's settings; its rate rule's capacities are each level's,
    measured on these request sizes (``cap``)."""
    return SlackLawConfig(
        tuple(replace(c, capacity_rps=cap[c.tau]) for c in costs),
        headroom=args.slack_headroom,
        max_batch=PolicyConfig().max_batch,
        max_utilisation=args.slack_utilisation,
    )


def _calibrate(
    clocks: ClockSet, budget: int, trace: list[Any], prompts: np.ndarray, slo: Slo,
    levels: list[float], rounds: int = CALIBRATION_ROUNDS, method: str = "grid",
    grid: Grid | None = None, slo_scale: float = 5.0,
) -> tuple[dict[float, float], StepCostModel, dict[str, Any]]:  # fmt: skip
    """Fits the step-cost clock and returns each level's capacity on it (the whole trace queued
    at once), the clock, and what the calibration found (JSON).

    Replays at each fixed level, measured: a share of the trace queued at once (FIFO, large
    batches), and a 6 s burst pattern of 1.3x tau 1's capacity over 0.5x (bucket batching,
    small and large batches; arrival seeds from 10000, unlike the figures' seeds). The levels
    take turns in ``rounds`` short rounds, so each level's steps are timed over the same
    minutes (this VM's speed drifts by tens of percent over minutes). ``method`` "grid" (the
    default): each level's backend costs from a designed grid of calls and the engine's
    overhead from these replays (``bench.lm_clock_grid``); "replays": a regression on the
    replays' steps (sessions 12-13). Either way the other method is fitted on the same
    measurements too and its capacities reported beside (``alternative``)."""
    if method not in ("grid", "replays"):
        raise ValueError(f"clock calibration {method!r}: expected grid or replays")
    backend = clocks.backend
    chunks = [trace[i::rounds] for i in range(rounds)]
    # requests per CPU second at tau 1, a first look (on the plain backend: not recorded)
    rate = capacity_per_level(backend.inner, budget, trace, prompts, slo, [1.0])[1.0]
    for i, chunk in enumerate(chunks):
        closed = [replace(r, arrival_s=0.0) for r in chunk]
        timed = bursty(trace, 0.5 * rate, 1.3 * rate, BURST_PERIOD_S, BURST_S, BURST_PERIOD_S,
                       seed=10_000 + i)  # fmt: skip
        for tau in levels if i % 2 == 0 else levels[::-1]:
            for reqs, policy in ((closed, "fifo"), (timed, "bucket")):
                engine = _engine(backend, budget, policy)
                engine.set_brownout(tau)
                replay(engine, reqs, prompts, slo, clock=clocks.measured)
                backend.set_brownout(1.0)
    replay_fit = StepCostModel.fit(clocks.calibration)
    grid = grid or Grid()
    samples = grid_samples(backend.inner, levels, grid, progress=_progress)
    fit = fit_grid(samples, clocks.calibration)
    models = {"grid": fit.model, "replays": replay_fit}
    caps = {}
    for name in sorted(models, key=lambda n: n == method):  # the chosen one last: it stays
        clocks.model = models[name]
        caps[name] = capacity_per_level(backend, budget, trace, prompts, slo, levels,
                                        clocks.modelled)  # fmt: skip
    other = next(n for n in models if n != method)
    info = {
        "method": method,
        "grid_points_per_level": len(samples) // len(levels),
        "grid_repeats": grid.repeats,
        "grid_fit": fit.quality(samples),
        "overhead_us": {f: 1e6 * float(fit.overhead[FEATURES.index(f)]) for f in OVERHEAD_FEATURES},
        "capacity_ratio": {str(t): c / caps[method][1.0] for t, c in caps[method].items()},
        "alternative": {
            "method": other,
            "capacity_ratio": {str(t): c / caps[other][1.0] for t, c in caps[other].items()},
            "slo": vars(_modelled_slo(models[other], trace, slo_scale, backend.expert_miss)),
        },
    }
    return caps[method], models[method], info


def _progress(message: str) -> None:
    print(f"  {message}", flush=True)


def _calibration_table(info: dict[str, Any], report: BenchReport) -> None:
    alt = info["alternative"]
    table = Table(
        f"step-cost clock calibration: {info['method']} (chosen) vs {alt['method']} on the same "
        f"measurements; grid {info['grid_points_per_level']} points per level x "
        f"{info['grid_repeats']} repeats, engine overhead (us): "
        + ", ".join(f"{k} {v:.3g}" for k, v in info["overhead_us"].items()),
        ["tau", "capacity / tau 1 (chosen)", f"capacity / tau 1 ({alt['method']})",
         "grid median error", "grid max error"],
    )  # fmt: skip
    for tau, ratio in info["capacity_ratio"].items():
        q = info["grid_fit"].get(tau, {})
        table.add(
            float(tau),
            ratio,
            alt["capacity_ratio"][tau],
            q.get("median_rel_error", float("nan")),
            q.get("max_rel_error", float("nan")),
        )
    report.tables.append(table)


def _corrected_clock_bursts(
    args: argparse.Namespace, clocks: ClockSet, budget: int, reqs: list[Any], prompts: np.ndarray,
    seeds: list[int], factors: list[float], report: BenchReport, figures: dict[str, Any],
) -> None:  # fmt: skip
    """The bursts up to the headline height again (off, slack, tau 0 throughout) on the clock
    corrected level by level to what the replays' steps on it measured (``rescaled``): how
    much the cuts owe to the model's error. Capacities, the law's table and the burst rates
    are recomputed on the corrected clock, and so is the SLO (5x the isolated request on it):
    kept from the fitted clock, a level over-predicted by the fit would leave the SLO that much
    looser in units of the corrected step costs (session 13: 1.2x in one run)."""
    assert clocks.model is not None
    fitted, clocks.model = clocks.model, clocks.model.rescaled(clocks.model.quality(clocks.checked))
    levels = sorted(clocks.model.coefficients, reverse=True)
    slo = _modelled_slo(clocks.model, reqs, args.slo_scale, clocks.backend.expert_miss)
    trace = reqs[: args.requests]
    cap = capacity_per_level(clocks.backend, budget, trace, prompts, slo, levels, clocks.modelled)
    cfg = _slack_config(args, step_costs(clocks.model, clocks.backend.expert_miss), cap)
    guard = _guard(args, cfg.costs)
    table = Table(
        "bursts on the corrected step-cost clock (each level's costs scaled to what the replays "
        f"on it measured); capacity at tau 0 {cap[0.0] / cap[1.0]:.2f}x tau 1's"
        if 0.0 in cap
        else "bursts on the corrected step-cost clock",
        ["burst x capacity", "law", "SLO violations (mean)", "reduction", "95% CI"],
    )
    out: dict[str, Any] = {"capacity_ratio": {str(t): c / cap[1.0] for t, c in cap.items()},
                           "slo": {"ttft_s": slo.ttft_s, "tpot_s": slo.tpot_s}}  # fmt: skip
    for factor in factors:
        runs: dict[str, list[float]] = {"off": [], "slack": [], "fixed0": []}
        for seed in seeds:
            timed = _arrivals(args, reqs, cap[1.0], factor, seed)
            for law in runs:
                res = _run(law, clocks.backend, budget, timed, prompts, slo, cfg,
                           clocks.modelled, guard)  # fmt: skip
                runs[law].append(res.violations(slo))
        off = np.array(runs["off"], float)
        for law, v in runs.items():
            ci = (0.0, 0.0, 0.0) if law == "off" else reduction_ci(off, np.array(v, float))
            table.add(factor, law, float(np.mean(v)), ci[0], f"[{ci[1]:.2f}, {ci[2]:.2f}]")
            if law != "off":
                out.setdefault(law, {})[str(factor)] = {"mean": ci[0], "lo": ci[1], "hi": ci[2]}
    clocks.model = fitted
    report.tables.append(table)
    figures["brownout_corrected_clock"] = out


def _modelled_slo(model: StepCostModel, reqs: list[Any], scale: float, miss: float) -> Slo:
    """The SLO on the fitted clock: ``scale`` x the modelled TTFT of the p90 prompt alone and
    x one decode step of one sequence after it (as ``bench.lm_serving`` measures them)."""
    p90 = int(np.percentile([r.prompt_tokens for r in reqs], 90))
    ttft = model.cost(1.0, prefill_work([p90], miss))
    step = model.cost(1.0, decode_work([p90 + 8], miss))
    return Slo(ttft_s=scale * ttft, tpot_s=scale * step)


def _clock_table(clocks: ClockSet, report: BenchReport) -> None:
    assert clocks.model is not None
    fit, check = clocks.model.quality(clocks.calibration), clocks.model.quality(clocks.checked)
    table = Table(
        "step-cost clock (bench.lm_clock): coefficients (us per unit), fit on the calibration "
        "steps, and predicted / measured CPU time over the replays on the clock (capacities and "
        "bursts: out of sample)",
        ["tau", *FEATURES, "calib. steps", "R^2", "median step error", "replay steps",
         "replays pred./meas."],
    )  # fmt: skip
    for tau in sorted(clocks.model.coefficients, reverse=True):
        c, f = clocks.model.coefficients[tau], fit[str(tau)]
        k = check.get(str(tau), {})
        table.add(tau, *(f"{1e6 * x:.3g}" for x in c), f["steps"], f["r2"],
                  f["median_rel_error"], k.get("steps", 0),
                  k.get("predicted_over_measured", float("nan")))  # fmt: skip
    report.tables.append(table)


def _by_phase(outcomes: list[Outcome], slo: Slo) -> tuple[int, int]:
    """(violations of requests that arrived in a burst, of those that arrived in calm)."""
    burst = calm = 0
    for o in outcomes:
        if not o.meets(slo):
            in_burst = o.request.arrival_s % BURST_PERIOD_S >= BURST_PERIOD_S - BURST_S
            burst, calm = (burst + 1, calm) if in_burst else (burst, calm + 1)
    return burst, calm


def _headroom_sweep(
    args: argparse.Namespace, backend: MoEBackend, budget: int, reqs: list[Any], capacity: float,
    factor: float, seeds: list[int], prompts: np.ndarray, slo: Slo, costs: tuple[StepCosts, ...],
    off: np.ndarray, report: BenchReport, figures: dict[str, Any], clock: Clock | None = None,
    guard: PrefillGuard | None = None,
) -> None:  # fmt: skip
    """The slack law's knobs swept one at a time at the headline burst (the other at its
    default): headroom, and the rate rule's utilisation (1.0 ~ the rule almost off; "off":
    without it)."""
    table = Table(
        f"slack law settings at {factor:g}x bursts (seeds {args.burst_seeds})",
        ["headroom", "utilisation", "SLO violations (mean)", "reduction", "95% CI",
         "tokens per level"],
    )  # fmt: skip
    out = {}
    grid = [(float(h), args.slack_utilisation) for h in args.slack_headrooms.split(",") if h]
    grid += [(args.slack_headroom, u) for u in args.slack_utilisations.split(",") if u]
    for h, u in grid:
        rule = u != "off"
        cfg = SlackLawConfig(
            costs if rule else tuple(replace(c, capacity_rps=math.inf) for c in costs),
            headroom=h,
            max_batch=PolicyConfig().max_batch,
            max_utilisation=float(u) if rule else 0.9,
        )
        runs = []
        for seed in seeds:
            timed = _arrivals(args, reqs, capacity, factor, seed)
            runs.append(_run("slack", backend, budget, timed, prompts, slo, cfg, clock, guard))
        v = np.array([r.violations(slo) for r in runs], float)
        ci = reduction_ci(off, v)
        mix = _shares(runs)
        out[f"h{h:g}_u{u}"] = {"reduction": ci[0], "lo": ci[1], "hi": ci[2], "token_share": mix}
        table.add(h, u, float(v.mean()), ci[0], f"[{ci[1]:.2f}, {ci[2]:.2f}]",
                  " ".join(f"{t}:{s:.2f}" for t, s in mix.items()))  # fmt: skip
    report.tables.append(table)
    figures["brownout_headroom_sweep"] = out


def _guard_label(args: argparse.Namespace) -> str:
    if args.prefill_guard == "off":
        return "off"
    return f"on, margin {args.guard_margin:g} steps"


def _guard_ablation(
    args: argparse.Namespace, backend: Backend, budget: int, reqs: list[Any], capacity: float,
    headline: float, seeds: list[int], prompts: np.ndarray, slo: Slo, slack_cfg: SlackLawConfig,
    guarded: dict[str, dict[str, np.ndarray]], report: BenchReport, figures: dict[str, Any],
    clock: Clock | None = None,
) -> None:  # fmt: skip
    """The bursts up to the headline height again without the prefill guard (off, slack, tau 0
    throughout), and the guard's margin swept at the headline (off and slack). The reduction
    "vs the better off" divides by whichever baseline, with or without the guard, violated
    less: the guard must not win by making brownout-off worse."""
    table = Table(
        "the prefill guard's part (same arrivals; violations are means over seeds)",
        ["burst x capacity", "law", "guard", "violations", "off, same guard", "reduction",
         "95% CI", "vs the better off", "95% CI (better off)"],
    )  # fmt: skip
    out: dict[str, Any] = {}
    plain_laws = ("off", "slack", "fixed0")
    for key, with_guard in guarded.items():
        if float(key) > headline:
            continue
        plain: dict[str, list[float]] = {law: [] for law in plain_laws}
        for seed in seeds:
            timed = _arrivals(args, reqs, capacity, float(key), seed)
            for law in plain_laws:
                res = _run(law, backend, budget, timed, prompts, slo, slack_cfg, clock)
                plain[law].append(res.violations(slo))
        off_plain, off_guard = np.array(plain["off"], float), with_guard["off"]
        better = off_plain if off_plain.mean() < off_guard.mean() else off_guard
        entry: dict[str, Any] = {"off_plain": off_plain.tolist(), "off_guard": off_guard.tolist()}
        for law in ("slack", "fixed0"):
            v_plain = np.array(plain[law], float)
            ci_plain = reduction_ci(off_plain, v_plain)
            ci_guard = reduction_ci(off_guard, with_guard[law])
            ci_best = reduction_ci(better, with_guard[law])
            table.add(key, law, "off", float(v_plain.mean()), float(off_plain.mean()),
                      ci_plain[0], f"[{ci_plain[1]:.2f}, {ci_plain[2]:.2f}]", "", "")  # fmt: skip
            table.add(key, law, "on", float(with_guard[law].mean()), float(off_guard.mean()),
                      ci_guard[0], f"[{ci_guard[1]:.2f}, {ci_guard[2]:.2f}]", ci_best[0],
                      f"[{ci_best[1]:.2f}, {ci_best[2]:.2f}]")  # fmt: skip
            entry[law] = {
                "plain": v_plain.tolist(),
                "guard": with_guard[law].tolist(),
                "reduction_plain": dict(zip(("mean", "lo", "hi"), ci_plain, strict=True)),
                "reduction_guard": dict(zip(("mean", "lo", "hi"), ci_guard, strict=True)),
                "reduction_vs_better_off": dict(zip(("mean", "lo", "hi"), ci_best, strict=True)),
            }
        out[key] = entry
    report.tables.append(table)
    figures["brownout_guard_ablation"] = out
    figures["brownout_guard_margins"] = _margin_sweep(args, backend, budget, reqs, capacity,
                                                      headline, seeds, prompts, slo, slack_cfg,
                                                      report, clock)  # fmt: skip


def _margin_sweep(
    args: argparse.Namespace, backend: Backend, budget: int, reqs: list[Any], capacity: float,
    factor: float, seeds: list[int], prompts: np.ndarray, slo: Slo, slack_cfg: SlackLawConfig,
    report: BenchReport, clock: Clock | None,
) -> dict[str, Any]:  # fmt: skip
    """Off and the slack law at the headline burst with the guard's other margins."""
    table = Table(
        f"prefill guard margin swept at {factor:g}x bursts (default {args.guard_margin:g})",
        ["margin (decode steps)", "off", "slack", "reduction", "95% CI"],
    )
    out = {}
    for margin in (float(m) for m in args.guard_margins.split(",") if m.strip()):
        guard = _guard(args, slack_cfg.costs, margin)
        v: dict[str, list[float]] = {"off": [], "slack": []}
        for seed in seeds:
            timed = _arrivals(args, reqs, capacity, factor, seed)
            for law in v:
                res = _run(law, backend, budget, timed, prompts, slo, slack_cfg, clock, guard)
                v[law].append(res.violations(slo))
        off, on = np.array(v["off"], float), np.array(v["slack"], float)
        ci = reduction_ci(off, on)
        table.add(margin, float(off.mean()), float(on.mean()), ci[0], f"[{ci[1]:.2f}, {ci[2]:.2f}]")
        out[f"{margin:g}"] = {"off": v["off"], "slack": v["slack"], "reduction": ci[0],
                              "lo": ci[1], "hi": ci[2]}  # fmt: skip
    report.tables.append(table)
    return out


def _cost_table(
    costs: tuple[StepCosts, ...], cap: dict[float, float], report: BenchReport, clock: str
) -> None:
    source = "ms of the step-cost clock"
    if clock == "cpu":
        source = "CPU ms; least squares on measured steps"
    table = Table(
        f"step costs the slack law predicts with ({source}) and capacity per level (all "
        "requests queued at once, FIFO)",
        ["tau", "decode a ms", "decode b ms/seq", "decode B=32 ms", "prefill p0 ms",
         "prefill p1 ms/token", "capacity req/s", "capacity vs tau 1"],
    )  # fmt: skip
    for c in costs:
        table.add(c.tau, c.decode_base_s * 1e3, c.decode_per_seq_s * 1e3, c.decode_s(32) * 1e3,
                  c.prefill_base_s * 1e3, c.prefill_per_token_s * 1e3, cap[c.tau],
                  cap[c.tau] / cap[1.0])  # fmt: skip
    report.tables.append(table)
