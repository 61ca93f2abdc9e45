"""Replaying request arrivals against the token-level engine on a virtual clock.

The clock advances by the CPU time (``time.thread_time``) each engine step really took, and jumps
over idle gaps to the next arrival. CPU time, not wall time, because up to eight processes share
these two cores: a step's CPU time is what it costs the engine, wall time adds whatever else ran.
Arrivals are replayed at their (scaled) trace times; each request's first-token time (TTFT) and
mean time per output token after the first (TPOT) are measured on that clock.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from offload.models.lm.engine import Engine, LMRequest

TRACE = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "traces"
AZURE_CONV = TRACE / "AzureLLMInferenceTrace_conv.csv"


class ReplayError(ValueError):
    """The trace file is missing or malformed."""


@dataclass(frozen=True)
class TraceRequest:
    arrival_s: float
    prompt_tokens: int
    output_tokens: int


@dataclass(frozen=True)
class Slo:
    """A request meets its SLO when TTFT <= ttft_s and TPOT <= tpot_s."""

    ttft_s: float
    tpot_s: float


@dataclass
class Outcome:
    request: TraceRequest
    ttft_s: float = float("nan")
    tpot_s: float = 0.0
    finish_s: float = float("nan")

    def meets(self, slo: Slo) -> bool:
        return bool(self.ttft_s <= slo.ttft_s and self.tpot_s <= slo.tpot_s)

    def normalized(self, slo: Slo) -> float:
        """max(TTFT / TTFT SLO, TPOT / TPOT SLO): <= 1 meets the SLO."""
        return max(self.ttft_s / slo.ttft_s, self.tpot_s / slo.tpot_s)


def load_azure_trace(
    path: Path = AZURE_CONV, start: int = 0, count: int | None = None
) -> list[TraceRequest]:
    """Rows [start, start + count) of an Azure LLM inference trace (TIMESTAMP, ContextTokens,
    GeneratedTokens), arrival times relative to the first row taken.

    Raises:
        ReplayError: the file is missing or a row is malformed.
    """
    if not Path(path).is_file():
        raise ReplayError(f"trace {path} not found")
    out: list[TraceRequest] = []
    t0 = None
    with Path(path).open(newline="") as fh:
        for i, row in enumerate(csv.DictReader(fh)):
            if i < start:
                continue
            if count is not None and len(out) >= count:
                break
            try:
                stamp = np.datetime64(row["TIMESTAMP"].strip()[:26])
                ctx, gen = int(row["ContextTokens"]), int(row["GeneratedTokens"])
            except (KeyError, ValueError) as err:
                raise ReplayError(f"{path} row {i + 2}: {err}") from err
            t0 = stamp if t0 is None else t0
            out.append(TraceRequest(float((stamp - t0) / np.timedelta64(1, "us")) / 1e6, ctx, gen))
    return out


def scale_trace(
    reqs: list[TraceRequest], length_scale: float, max_total: int, rate_scale: float = 1.0
) -> list[TraceRequest]:
    """Lengths divided by ``length_scale`` (at least 1 token each; prompts cut so prompt +
    output <= max_total) and inter-arrival times divided by ``rate_scale``."""
    out = []
    for r in reqs:
        gen = max(1, min(max_total - 1, round(r.output_tokens / length_scale)))
        ctx = max(1, min(max_total - gen, round(r.prompt_tokens / length_scale)))
        out.append(TraceRequest(r.arrival_s / rate_scale, ctx, gen))
    return out


def bursty(
    reqs: list[TraceRequest],
    base_rate: float,
    burst_rate: float,
    period_s: float,
    burst_s: float,
    duration_s: float,
    seed: int,
) -> list[TraceRequest]:
    """An on/off Poisson process over ``duration_s``: ``burst_rate`` req/s for ``burst_s`` at
    the end of every ``period_s`` (so each run starts calm), ``base_rate`` otherwise; request
    sizes are taken from ``reqs`` in order, cycling."""
    rng = np.random.default_rng(seed)
    t, out = 0.0, []
    while True:
        rate = burst_rate if (t % period_s) >= period_s - burst_s else base_rate
        t += rng.exponential(1.0 / rate)
        if t >= duration_s:
            return out
        r = reqs[len(out) % len(reqs)]
        out.append(TraceRequest(t, r.prompt_tokens, r.output_tokens))


@dataclass
class ReplayResult:
    outcomes: list[Outcome]
    duration_s: float  # first arrival to last completion (virtual)
    busy_s: float  # CPU time spent in engine steps
    tau: list[tuple[float, float]] = field(default_factory=list)  # (time, brownout level)
    tokens_at_level: dict[float, int] = field(default_factory=dict)  # tokens made per level

    def attainment(self, slo: Slo) -> float:
        return float(np.mean([o.meets(slo) for o in self.outcomes]))

    def goodput(self, slo: Slo, window_s: float) -> float:
        """SLO-meeting requests per second over the arrival window."""
        return sum(o.meets(slo) for o in self.outcomes) / window_s

    def violations(self, slo: Slo) -> int:
        return sum(not o.meets(slo) for o in self.outcomes)


def replay(
    engine: Engine,
    reqs: list[TraceRequest],
    prompt_source: np.ndarray,  # token stream the prompts are cut from
    slo: Slo,
    controller: Callable[[float, list[Outcome]], float | None] | None = None,
    control_period_s: float = 1.0,
    clock: Callable[[float, float], float] | None = None,
) -> ReplayResult:
    """Runs every request to completion; ``controller(now, finished_in_period)`` may return a new
    brownout level each ``control_period_s`` (a periodic law; a per-step law is the engine's
    ``level_law``). ``tau`` logs every change of level, whichever law made it. Virtual time
    advances by each step's CPU time, or by ``clock(level, cpu_seconds)`` when given
    (``bench.lm_clock``: a fitted step-cost model)."""
    outcomes = [Outcome(r) for r in reqs]
    order = sorted(range(len(reqs)), key=lambda i: reqs[i].arrival_s)
    arrivals = [reqs[i].arrival_s for i in order]
    nxt, now, busy = 0, 0.0, 0.0
    next_control = control_period_s
    finished_period: list[Outcome] = []
    tau_log = [(0.0, engine.brownout_tau)]
    offset = 0
    while nxt < len(order) or not engine.idle:
        if engine.idle and arrivals[nxt] > now:
            now = arrivals[nxt]
        while nxt < len(order) and arrivals[nxt] <= now:
            i = order[nxt]
            r = reqs[i]
            prompt = prompt_source[offset : offset + r.prompt_tokens].tolist()
            offset = (offset + r.prompt_tokens) % max(1, len(prompt_source) - 300)
            engine.submit(
                LMRequest(
                    str(i),
                    prompt,
                    r.output_tokens,
                    r.arrival_s,
                    slo.ttft_s,
                    ignore_eos=True,
                    tpot_slo_s=slo.tpot_s,
                )
            )
            nxt += 1
        start = time.thread_time()
        events = engine.step(now)  # a per-step law (``engine.level_law``) runs inside it
        spent = time.thread_time() - start
        if clock is not None:
            spent = clock(engine.brownout_tau, spent)
        if engine.brownout_tau != tau_log[-1][1]:
            tau_log.append((now, engine.brownout_tau))
        busy += spent
        # A step that did nothing (static batching waiting for its queue delay) still moves time.
        now += spent if events else max(spent, 1e-3)
        for ev in events:
            o = outcomes[int(ev.request_id)]
            if ev.index == 0:
                o.ttft_s = now - o.request.arrival_s
            if ev.finish is not None:
                o.finish_s = now
                n_after = ev.index
                o.tpot_s = (now - o.request.arrival_s - o.ttft_s) / n_after if n_after else 0.0
                finished_period.append(o)
        if controller is not None and now >= next_control:
            tau = controller(now, finished_period)
            finished_period = []
            next_control = now + control_period_s
            if tau is not None and tau != engine.brownout_tau:
                engine.set_brownout(tau)
                tau_log.append((now, tau))
    return ReplayResult(
        outcomes,
        now - (arrivals[0] if arrivals else 0.0),
        busy,
        tau_log,
        dict(engine.tokens_at_level),
    )
