"""The step-cost clock calibrated on a designed grid of backend calls (``--clock-calibration
grid``, the default since session 14), instead of a regression on the calibration replays' steps.

Why (docs/lm.md, session 14): fitted on replay steps, the clock did not reproduce from one
calibration to the next (tau 0's capacity 1.26-1.53x tau 1's over five runs). In those steps
the decoded rows and their cached context move together (correlation 0.97), every step with
more than ~16 tokens has the whole MoE dispatch term at 1, and a step's CPU time carries this
VM's noise (tens of percent, with spikes): least squares traded the collinear terms for each
other from run to run, and with them the intercept that sets the SLO.

Here each level's backend cost is measured where the features vary independently: decode
calls over ``DECODE_ROWS`` x ``DECODE_CONTEXTS`` (rows x cached length) and prefill calls over
``PREFILL_PROMPTS`` x ``PREFILL_LENGTHS`` (prompts x length), each point timed ``repeats``
times with every level taking its turn at each point before the next (the VM's drift then
falls on all levels alike) and summarised by its median (robust to the spikes). Each level's
backend coefficients are non-negative least squares on the points' medians, weighted by
1 / median (relative error: a 5 ms decode of one row, which sets the SLO, counts as much as a
400 ms prefill of 16 prompts). What the engine spends around the backend (scheduling,
sampling, moving cache rows) does not depend on the level: it is measured on the calibration
replays' steps as the step's CPU time minus its backend calls' (``StepWork.backend_s``) and
fitted once for all levels, robustly (Huber weights), on the step, its decoded rows and its
prefill calls.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy.optimize import nnls

from bench.lm_clock import FEATURES, ClockError, Sample, StepCostModel, decode_work, prefill_work
from offload.models.lm.backend import MoEBackend

DECODE_ROWS = (1, 2, 4, 8, 16, 24, 32)
DECODE_CONTEXTS = (16, 64, 128, 208)
PREFILL_PROMPTS = (1, 2, 4, 8, 16)
PREFILL_LENGTHS = (8, 32, 64, 128, 240)
GRID_REPEATS = 7
# features the engine's own per-step work is fitted on (the rest: backend calls only)
OVERHEAD_FEATURES = ("step", "decode_rows", "prefill_calls")
HUBER_K = 1.345  # Huber's constant, in robust standard deviations (MAD x 1.4826)


@dataclass(frozen=True)
class Grid:
    """The designed points: decode calls of ``rows`` x ``contexts`` (cached length), prefill
    calls of ``prompts`` x ``lengths``; each timed ``repeats`` times per level."""

    rows: tuple[int, ...] = DECODE_ROWS
    contexts: tuple[int, ...] = DECODE_CONTEXTS
    prompts: tuple[int, ...] = PREFILL_PROMPTS
    lengths: tuple[int, ...] = PREFILL_LENGTHS
    repeats: int = GRID_REPEATS

    def points(self, max_seq_len: int) -> list[tuple[str, int, int]]:
        """Every (kind, batch, length); raises ``ClockError`` on a point the model cannot run."""
        if self.repeats < 1:
            raise ClockError(f"grid repeats={self.repeats}: at least 1")
        longest = max(max(self.contexts) + self.repeats + 1, max(self.lengths))
        if longest > max_seq_len or min(*self.contexts, *self.lengths, *self.rows,
                                        *self.prompts) < 1:  # fmt: skip
            raise ClockError(
                f"clock grid lengths must be in [1, {max_seq_len}] (decode contexts plus "
                f"{self.repeats + 1} appended tokens); batches at least 1"
            )
        dec = [("decode", b, n) for b in self.rows for n in self.contexts]
        return dec + [("prefill", b, n) for b in self.prompts for n in self.lengths]


def grid_samples(
    backend: MoEBackend,  # not recording: the grid's calls are timed here
    levels: Iterable[float],
    grid: Grid = Grid(),
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> list[Sample]:
    """(level, work, median CPU seconds) of every grid point at every level (module doc)."""
    model = backend.model
    cfg = model.cfg
    points = grid.points(cfg.max_seq_len)
    repeats = grid.repeats
    miss = 1.0 - cfg.top_k / cfg.n_experts
    levels = list(levels)
    gen = torch.Generator().manual_seed(seed)

    def tokens(*shape: int) -> torch.Tensor:
        return torch.randint(1, cfg.vocab_size, shape, generator=gen)

    caches: dict[tuple[float, int, int], Any] = {}
    times: dict[tuple[float, str, int, int], list[float]] = {}
    for r in range(repeats + 1):  # round 0 builds the decode caches and warms up
        for i, (kind, b, n) in enumerate(points):
            for tau in levels if (r + i) % 2 == 0 else levels[::-1]:
                backend.set_brownout(tau)
                if kind == "decode":
                    key = (tau, b, n)
                    if key not in caches:
                        _, caches[key] = backend.prefill(tokens(b, n).tolist())
                    nxt = tokens(b)
                    start = time.thread_time()
                    backend.decode(nxt, caches[key])
                else:
                    prompts = tokens(b, n).tolist()
                    start = time.thread_time()
                    backend.prefill(prompts)
                spent = time.thread_time() - start
                if r > 0:
                    times.setdefault((tau, kind, b, n), []).append(spent)
        if progress is not None:
            progress(f"clock grid: round {r} of {repeats} done")
    backend.set_brownout(1.0)
    out: list[Sample] = []
    for (tau, kind, b, n), ts in times.items():
        if kind == "decode":  # the cache grew by one token per round: its middle length
            work = decode_work([n + 1 + repeats // 2] * b, miss)
        else:
            work = prefill_work([n] * b, miss)
        out.append((tau, work, float(np.median(ts))))
    return out


def _huber_nnls(x: np.ndarray, y: np.ndarray, iterations: int = 30) -> np.ndarray:
    """Non-negative least squares with Huber weights (iteratively reweighted)."""
    coef = nnls(x, y)[0]
    for _ in range(iterations):
        resid = y - x @ coef
        scale = 1.4826 * float(np.median(np.abs(resid - np.median(resid))))
        if scale <= 0:
            break
        cut = HUBER_K * scale
        w = np.sqrt(np.where(np.abs(resid) <= cut, 1.0, cut / np.maximum(np.abs(resid), 1e-30)))
        coef = nnls(x * w[:, None], y * w)[0]
    return coef


@dataclass
class GridFit:
    """The clock (``model``: backend + overhead per level) and its two parts."""

    model: StepCostModel
    backend: dict[float, np.ndarray]  # level -> coefficients of the backend calls alone
    overhead: np.ndarray  # coefficients of the engine's own work (level-free)

    def quality(self, grid: list[Sample]) -> dict[str, dict[str, float]]:
        """Per level: median and largest |predicted / measured - 1| over the grid points."""
        out: dict[str, dict[str, float]] = {}
        for tau, c in self.backend.items():
            rel = [abs(float(c @ w.vector()) / t - 1) for lv, w, t in grid if lv == tau]
            out[str(tau)] = {"points": len(rel), "median_rel_error": float(np.median(rel)),
                             "max_rel_error": float(np.max(rel))}  # fmt: skip
        return out


def fit_grid(grid: list[Sample], replay_steps: list[Sample]) -> GridFit:
    """Per level: backend coefficients from the grid (relative least squares, non-negative)
    plus the engine's level-free overhead fitted on ``replay_steps`` (recorded with
    ``backend_s``)."""
    if not grid:
        raise ClockError("no grid points to fit a step-cost model on")
    over_idx = [FEATURES.index(f) for f in OVERHEAD_FEATURES]
    backend_idx = [i for i, f in enumerate(FEATURES) if f != "step"]
    overhead = np.zeros(len(FEATURES))
    if replay_steps:
        x = np.stack([w.vector()[over_idx] for _, w, _ in replay_steps])
        y = np.array([t - w.backend_s for _, w, t in replay_steps])
        overhead[over_idx] = _huber_nnls(x, y)
    backend: dict[float, np.ndarray] = {}
    for tau in sorted({s[0] for s in grid}, reverse=True):
        rows = [s for s in grid if s[0] == tau]
        x = np.stack([w.vector()[backend_idx] for _, w, _ in rows])
        y = np.array([t for _, _, t in rows])
        weight = 1.0 / np.maximum(y, 1e-9)
        backend[tau] = np.zeros(len(FEATURES))
        backend[tau][backend_idx] = nnls(x * weight[:, None], y * weight)[0]
    model = StepCostModel({tau: c + overhead for tau, c in backend.items()})
    return GridFit(model, backend, overhead)
