"""Serving figures of ``robomr bench lm``: batching policies on the Azure trace, brownout bursts.

See ``bench.bench_lm`` for the set-up (scaled trace, virtual CPU-time clock, SLO from isolated
latencies, load as a multiple of measured capacity).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from bench.lm_brownout import bursts
from bench.lm_replay import (
    Outcome,
    ReplayResult,
    Slo,
    load_azure_trace,
    replay,
    scale_trace,
)
from bench.report import BenchReport, Table
from offload.models.lm.backend import MoEBackend
from offload.models.lm.engine import Engine, EngineConfig
from offload.models.lm.generate import argmax_rows
from offload.models.lm.model import MoELM
from offload.models.lm.scheduling import PolicyConfig
from offload.models.lm.tokenizer import load_tokenizer


def _isolated(model: MoELM, prompt_len: int, steps: int = 16) -> tuple[float, float]:
    """(TTFT of one ``prompt_len`` prompt alone, one decode step alone) in CPU seconds."""
    tokens = torch.randint(1, model.cfg.vocab_size, (1, prompt_len))
    lengths = torch.tensor([prompt_len])
    model.prefill(tokens, lengths)  # warm-up
    start = time.thread_time()
    logits, cache = model.prefill(tokens, lengths)
    ttft = time.thread_time() - start
    nxt = argmax_rows(logits)
    start = time.thread_time()
    for _ in range(steps):
        nxt = argmax_rows(model.decode(nxt, cache))
    return ttft, (time.thread_time() - start) / steps


def _engine(
    backend: MoEBackend, budget: int, policy: str, max_batch: int, delay_s: float
) -> Engine:
    cfg = PolicyConfig(max_batch=max_batch, max_queue_delay_s=delay_s)
    return Engine(backend, EngineConfig(budget, policy, cfg))  # type: ignore[arg-type]


def serving(
    args: argparse.Namespace,
    model: MoELM,
    streams: Any,
    report: BenchReport,
    figures: dict[str, Any],
) -> None:
    tok = load_tokenizer(args.model.parent / "tokenizer.json")
    backend = MoEBackend(model, tok)
    model.set_brownout(1.0)
    max_total = model.cfg.max_seq_len
    raw = load_azure_trace(args.trace, count=args.requests)
    trace = scale_trace(raw, args.length_scale, max_total)
    window_s = max(r.arrival_s for r in trace) or 1.0
    p90_prompt = int(np.percentile([r.prompt_tokens for r in trace], 90))
    ttft1, step1 = _isolated(model, p90_prompt)
    slo = Slo(ttft_s=args.slo_scale * ttft1, tpot_s=args.slo_scale * step1)
    budget = args.kv_seqs * backend.kv_bytes_for(max_total)
    prompts = streams.test
    # Capacity: every request queued at t = 0, FIFO continuous batching, requests per CPU second.
    closed = [replace(r, arrival_s=0.0) for r in trace]
    cap_run = replay(_engine(backend, budget, "fifo", 32, 0.0), closed, prompts, slo)
    capacity = len(trace) / cap_run.duration_s
    loads = [float(x) for x in args.loads.split(",") if x.strip()]
    if args.sections == "brownout":  # only the brownout section (capacity and SLO still needed)
        bursts(args, backend, budget, raw, capacity, slo, prompts, report, figures)
        return
    statics = [int(x) for x in args.static_batches.split(",") if x.strip()]
    table = Table(
        f"Azure conv trace, {len(trace)} requests, lengths / {args.length_scale:g}; SLO TTFT "
        f"{slo.ttft_s * 1e3:.0f} ms, TPOT {slo.tpot_s * 1e3:.1f} ms ({args.slo_scale:g}x "
        f"isolated); capacity {capacity:.1f} req/s",
        ["load", "offered req/s", "policy", "SLO attainment", "goodput req/s", "TTFT p50 ms",
         "TTFT p90 ms", "TPOT p50 ms", "TPOT p90 ms"],
    )  # fmt: skip
    goodput: dict[str, dict[str, float]] = {"bucket": {}, "fifo": {}, "static": {}}
    attain: dict[str, dict[str, float]] = {"bucket": {}, "fifo": {}, "static": {}}
    static_choice: dict[str, int] = {}
    for load in loads:
        rate = load * capacity
        timed = scale_trace(
            raw, args.length_scale, max_total, rate_scale=rate * window_s / len(trace)
        )
        win = max(r.arrival_s for r in timed) or 1.0
        results: dict[str, ReplayResult] = {}
        for policy in ("bucket", "fifo"):
            results[policy] = replay(_engine(backend, budget, policy, 32, 0.0), timed, prompts, slo)
        best = None
        for mb in statics:  # the static baseline gets its best max_batch at this load
            res = replay(
                _engine(backend, budget, "static", mb, slo.ttft_s / 4), timed, prompts, slo
            )
            if best is None or res.goodput(slo, win) > best[1].goodput(slo, win):
                best = (mb, res)
        assert best is not None
        static_choice[str(load)] = best[0]
        results["static"] = best[1]
        for policy, res in results.items():
            goodput[policy][str(load)] = res.goodput(slo, win)
            attain[policy][str(load)] = res.attainment(slo)
            label = policy if policy != "static" else f"static (max batch {best[0]})"
            table.add(load, len(timed) / win, label, res.attainment(slo), res.goodput(slo, win),
                      *_pcts(res.outcomes))  # fmt: skip
    report.tables.append(table)
    peak = {p: max(v.values()) for p, v in goodput.items()}
    figures["goodput"] = goodput
    figures["slo_attainment"] = attain
    figures["static_max_batch"] = static_choice
    figures["goodput_ratio_bucket_over_static"] = peak["bucket"] / max(peak["static"], 1e-9)
    figures["goodput_ratio_bucket_over_fifo"] = peak["bucket"] / max(peak["fifo"], 1e-9)
    report.ratios["peak goodput bucket / static"] = figures["goodput_ratio_bucket_over_static"]
    report.ratios["peak goodput bucket / fifo"] = figures["goodput_ratio_bucket_over_fifo"]
    bursts(args, backend, budget, raw, capacity, slo, prompts, report, figures)


def _pcts(outcomes: list[Outcome]) -> list[float]:
    ttft = np.array([o.ttft_s for o in outcomes]) * 1e3
    tpot = np.array([o.tpot_s for o in outcomes]) * 1e3
    return [float(np.percentile(ttft, 50)), float(np.percentile(ttft, 90)),
            float(np.percentile(tpot, 50)), float(np.percentile(tpot, 90))]  # fmt: skip
