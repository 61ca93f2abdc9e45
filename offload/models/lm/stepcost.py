"""Measured engine-step costs per brownout level: what the slack law (``slack``) predicts with.

For each level the model is switched to it and timed on synthetic batches: decode steps of B
sequences (B in ``batches``, after a prefill of ``context`` tokens) and prefill calls of several
shapes. Least squares then fit ``decode(B) = a + b B`` and ``prefill(P) = p0 + p1 P`` (P padded
tokens of one call). Times are CPU time of the calling thread by default (``time.thread_time``:
what a step costs the engine, independent of other processes on the machine; the benchmark's
virtual clock is the same); the HTTP service may pass a wall clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np
import torch

from offload.models.lm.generate import argmax_rows
from offload.models.lm.model import MoELM
from offload.models.lm.slack import StepCosts


def _fit(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float]:
    """Least-squares ``y = a + b x`` with a, b clipped at 0 (costs are not negative)."""
    b, a = np.polyfit(np.asarray(xs, float), np.asarray(ys, float), 1)
    return max(float(a), 0.0), max(float(b), 0.0)


@torch.no_grad()
def time_decode(
    model: MoELM, batch: int, context: int, steps: int, clock: Callable[[], float]
) -> float:
    """Seconds per decode step of ``batch`` sequences after ``context`` prompt tokens."""
    g = torch.Generator().manual_seed(batch)
    tokens = torch.randint(1, model.cfg.vocab_size, (batch, context), generator=g)
    logits, cache = model.prefill(tokens, torch.full((batch,), context))
    nxt = argmax_rows(model.decode(argmax_rows(logits), cache))  # warm-up
    start = clock()
    for _ in range(steps):
        nxt = argmax_rows(model.decode(nxt, cache))
    return (clock() - start) / steps


@torch.no_grad()
def time_prefill(
    model: MoELM, batch: int, prompt: int, reps: int, clock: Callable[[], float]
) -> float:
    """Seconds per prefill call of ``batch`` prompts of ``prompt`` tokens."""
    g = torch.Generator().manual_seed(prompt)
    tokens = torch.randint(1, model.cfg.vocab_size, (batch, prompt), generator=g)
    lengths = torch.full((batch,), prompt)
    model.prefill(tokens, lengths)  # warm-up
    start = clock()
    for _ in range(reps):
        model.prefill(tokens, lengths)
    return (clock() - start) / reps


def measure_step_costs(
    model: MoELM,
    levels: Sequence[float],
    batches: Sequence[int] = (1, 4, 16, 32),
    prefills: Sequence[tuple[int, int]] = ((1, 8), (1, 32), (4, 16), (4, 48)),
    context: int = 24,
    steps: int = 8,
    clock: Callable[[], float] = time.thread_time,
) -> tuple[StepCosts, ...]:
    """One ``StepCosts`` per level (the model is left at tau = 1)."""
    out = []
    try:
        for tau in levels:
            model.set_brownout(tau)
            dec = [time_decode(model, b, context, steps, clock) for b in batches]
            pre = [time_prefill(model, b, p, max(1, steps // 2), clock) for b, p in prefills]
            a, b = _fit(batches, dec)
            p0, p1 = _fit([b * p for b, p in prefills], pre)
            out.append(StepCosts(tau, a, b, p0, p1))
    finally:
        model.set_brownout(1.0)
    return tuple(out)
