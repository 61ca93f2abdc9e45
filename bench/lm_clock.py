"""A reproducible clock for the language model's replays: each engine step costed by a model
fitted on measured steps, instead of the step's own CPU time.

Why: the replays' default clock advances by each step's measured CPU time (``time.thread_time``),
which on a shared 2-vCPU VM varies by tens of percent from run to run; a burst replay feeds
those times back into queueing, so two runs of one command disagreed far outside their
intervals (docs/lm.md, session 11). Here the engine runs the real model exactly as before (the
same tokens, the same batches), but time advances by a linear model of what the step computed,
so a replay no longer depends on how fast its own steps happened to run; what a rerun can still
change is the calibration (docs/lm.md, session 12: three runs):

    cost(tau, step) = c0 + c1 decode rows + c2 decode rows x their longest cached length
                      + c3 prefill calls + c4 padded prefill tokens + c5 sum of B x L^2
                      + c6 expected share of MoE experts each call runs, summed over calls
                      + c7 decode calls
                      (+ the measured CPU time of the step's law and guard, ``control_s``)

one coefficient vector per calibrated brownout level; levels between two calibrated ones
interpolate linearly, as the paper law's whole-expert levels need. ``StepCostModel.fit`` is
the sessions 12-13 calibration (non-negative least squares on every step of calibration
replays run on the CPU clock); ``bench.lm_clock_grid`` the default since session 14 (a designed
grid of backend calls plus the engine's overhead measured on those replays). The L^2 term is
attention over a prompt, the context term attention over the cache in decode (padded to the
longest row: the fast decode slices each expert's buffer to its largest count). The dispatch
term is the MoE's: the feed-forward loops over the experts its tokens picked, so a call of T tokens
costs about 1 - (1 - k/E)^T expert passes per expert (top-k of E, routing taken as balanced):
near-linear in T for a single decoded sequence, saturating by T ~ 16; without it a linear fit
calibrated mostly on large batches over-predicts small ones at tau 1 (measured: +19% over
burst replays). The fit's quality (R^2, median relative error per step, and predicted /
measured CPU time summed over each replay that runs on the model clock: an out-of-sample
check) is reported with the figures.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import nnls

from offload.models.lm.backend import Selection
from offload.models.lm.slack import StepCosts

FEATURES = (
    "step",
    "decode_rows",
    "decode_context",
    "prefill_calls",
    "prefill_tokens",
    "prefill_square",
    "expert_spread",
    "decode_calls",
)
# A replay's clock: (brownout level in effect, measured CPU seconds of the step) -> seconds.
Clock = Callable[[float, float], float]


class ClockError(ValueError):
    """A cost model cannot be fitted or used (no calibration steps, an unknown level)."""


@dataclass
class StepWork:
    """What one engine step computed."""

    decode_rows: int = 0
    decode_context: int = 0  # B x the longest cached length per decode call, summed (padded)
    prefill_calls: int = 0
    prefill_tokens: int = 0  # B x L_max per call, summed (padding is computed too)
    prefill_square: int = 0  # B x L_max^2 per call, summed (attention over the prompt)
    expert_spread: float = 0.0  # per call, 1 - (1 - k/E)^tokens, summed (MoE dispatch)
    decode_calls: int = 0
    # CPU seconds the backend's prefill and decode calls took in the step (``RecordingBackend``;
    # not a feature: what the engine spends around them is the step's time minus this)
    backend_s: float = field(default=0.0, compare=False)
    # CPU seconds of the step's brownout law and prefill guard, measured and charged as they are
    # (``RecordingBackend.charge``): calibration runs neither, so the fitted costs hold none of it
    control_s: float = field(default=0.0, compare=False)

    def vector(self) -> np.ndarray:
        return np.array(
            [1.0, self.decode_rows, self.decode_context, self.prefill_calls,
             self.prefill_tokens, self.prefill_square, self.expert_spread, self.decode_calls],
        )  # fmt: skip


def decode_work(contexts: list[int], expert_miss: float) -> StepWork:
    """The work of one decode call over rows with these cached lengths: a decode step attends
    over every row's cache padded to the longest (``MixSGAAttention.decode`` slices the slot
    buffers to the most slots a row holds), so the context term is rows x the longest."""
    rows = len(contexts)
    return StepWork(decode_rows=rows, decode_context=rows * max(contexts, default=0),
                    expert_spread=1.0 - expert_miss**rows, decode_calls=1)  # fmt: skip


def prefill_work(lengths: list[int], expert_miss: float) -> StepWork:
    """The work of one prefill call of prompts of these lengths (padded to the longest)."""
    longest = max(lengths)
    return StepWork(prefill_calls=1, prefill_tokens=len(lengths) * longest,
                    prefill_square=len(lengths) * longest * longest,
                    expert_spread=1.0 - expert_miss ** sum(lengths))  # fmt: skip


def _add(a: StepWork, b: StepWork) -> StepWork:
    return StepWork(*(x + y for x, y in zip(vars(a).values(), vars(b).values(), strict=True)))


class RecordingBackend:
    """An ``LMBackend`` that passes every call to ``inner`` and adds up the current step's
    work; ``take()`` returns it and starts the next step's."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self._work = StepWork()
        cfg = getattr(getattr(inner, "model", None), "cfg", None)
        # a token leaves a given expert out with probability 1 - k/E (balanced routing)
        self._miss = 1.0 - cfg.top_k / cfg.n_experts if cfg is not None else 1.0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    @property
    def expert_miss(self) -> float:
        """Probability that a token leaves a given MoE expert out (1 - k/E; 1: no MoE)."""
        return self._miss

    def take(self) -> StepWork:
        work, self._work = self._work, StepWork()
        return work

    def charge(self, seconds: float) -> None:
        """Adds measured control work (a law's or the guard's) to the current step."""
        self._work.control_s += seconds

    def prefill(self, prompts: list[list[int]]) -> Any:
        self._work = _add(self._work, prefill_work([len(p) for p in prompts], self._miss))
        start = time.thread_time()
        out = self.inner.prefill(prompts)
        self._work.backend_s += time.thread_time() - start
        return out

    def decode(self, tokens: Any, state: Any) -> Any:
        if isinstance(state, Selection):
            lengths = state.cache.lengths if state.rows is None else state.cache.lengths[state.rows]
        else:
            lengths = state.lengths
        self._work = _add(self._work, decode_work(lengths.tolist(), self._miss))
        start = time.thread_time()
        out = self.inner.decode(tokens, state)
        self._work.backend_s += time.thread_time() - start
        return out


Sample = tuple[float, StepWork, float]  # (level, work, measured CPU seconds)


@dataclass
class StepCostModel:
    """Seconds per engine step from its work, per brownout level (module docstring)."""

    coefficients: dict[float, np.ndarray]  # level -> [len(FEATURES)] seconds per unit

    @classmethod
    def fit(cls, samples: list[Sample]) -> StepCostModel:
        by_level: dict[float, list[Sample]] = {}
        for s in samples:
            by_level.setdefault(s[0], []).append(s)
        if not by_level:
            raise ClockError("no calibration steps to fit a step-cost model on")
        out = {}
        for tau, rows in by_level.items():
            x = np.stack([w.vector() for _, w, _ in rows])
            y = np.array([t for _, _, t in rows])
            out[tau], _ = nnls(x, y)
        return cls(out)

    def level_coefficients(self, tau: float) -> np.ndarray:
        """The coefficients at ``tau``, interpolated between the nearest calibrated levels."""
        if tau in self.coefficients:
            return self.coefficients[tau]
        levels = sorted(self.coefficients)
        if not levels[0] <= tau <= levels[-1]:
            raise ClockError(f"level {tau} is outside the calibrated levels {levels}")
        hi = next(t for t in levels if t > tau)
        lo = max(t for t in levels if t < tau)
        w = (tau - lo) / (hi - lo)
        return (1 - w) * self.coefficients[lo] + w * self.coefficients[hi]

    def rescaled(self, check: dict[str, dict[str, float]]) -> StepCostModel:
        """Each calibrated level's coefficients divided by its ``predicted_over_measured`` in
        ``check`` (a ``quality`` of other steps): the clock corrected to what those steps
        measured, level by level (levels without a check keep theirs)."""
        out = {}
        for tau, c in self.coefficients.items():
            ratio = check.get(str(tau), {}).get("predicted_over_measured", 1.0)
            out[tau] = c / ratio if ratio > 0 else c
        return StepCostModel(out)

    def cost(self, tau: float, work: StepWork) -> float:
        """The modelled cost of the step's work plus its measured control time."""
        return float(self.level_coefficients(tau) @ work.vector()) + work.control_s

    def quality(self, samples: list[Sample]) -> dict[str, dict[str, float]]:
        """Per level: R^2, median |predicted / measured - 1| per step, and predicted / measured
        CPU time summed over the steps."""
        out: dict[str, dict[str, float]] = {}
        for tau in sorted({s[0] for s in samples}, reverse=True):
            rows = [s for s in samples if s[0] == tau]
            y = np.array([t for _, _, t in rows])
            p = np.array([self.cost(tau, w) for _, w, _ in rows])
            resid = float(((y - p) ** 2).sum())
            total = float(((y - y.mean()) ** 2).sum())
            rel = np.abs(p / np.maximum(y, 1e-9) - 1)
            out[str(tau)] = {
                "steps": len(rows),
                "r2": 1 - resid / total if total > 0 else float("nan"),
                "median_rel_error": float(np.median(rel)),
                "predicted_over_measured": float(p.sum() / max(y.sum(), 1e-12)),
            }
        return out


@dataclass
class ClockSet:
    """The two clocks of one recording backend: ``measured`` (each step's CPU time, recorded
    as calibration samples) and ``modelled`` (the fitted model, with each step's measured time
    kept for the out-of-sample check)."""

    backend: RecordingBackend
    calibration: list[Sample] = field(default_factory=list)
    checked: list[Sample] = field(default_factory=list)
    model: StepCostModel | None = None

    def measured(self, tau: float, spent_s: float) -> float:
        self.calibration.append((tau, self.backend.take(), spent_s))
        return spent_s

    def modelled(self, tau: float, spent_s: float) -> float:
        if self.model is None:
            raise ClockError("fit the step-cost model (ClockSet.fit) before using its clock")
        work = self.backend.take()
        self.checked.append((tau, work, spent_s))
        return self.model.cost(tau, work)

    def fit(self) -> StepCostModel:
        self.model = StepCostModel.fit(self.calibration)
        return self.model


def step_costs(
    model: StepCostModel,
    expert_miss: float,
    batches: tuple[int, ...] = (1, 4, 16, 32),
    prefills: tuple[tuple[int, int], ...] = ((1, 8), (1, 32), (4, 16), (4, 48)),
    context: int = 24,
) -> tuple[StepCosts, ...]:
    """The slack law's cost table (``offload.models.lm.stepcost``'s linear forms, fitted on the
    same step shapes) computed from the clock's model instead of timed again: on the model
    clock the law then predicts with the clock it is judged by, not with a separate timing."""
    out = []
    for tau in sorted(model.coefficients, reverse=True):
        dec = [model.cost(tau, decode_work([context] * b, expert_miss)) for b in batches]
        pre = [model.cost(tau, prefill_work([p] * b, expert_miss)) for b, p in prefills]
        b1, a = np.polyfit(np.asarray(batches, float), np.asarray(dec), 1)
        p1, p0 = np.polyfit(np.asarray([b * p for b, p in prefills], float), np.asarray(pre), 1)
        out.append(StepCosts(tau, max(a, 0.0), max(b1, 0.0), max(p0, 0.0), max(p1, 0.0)))
    return tuple(out)
