"""Model-side figures of ``robomr bench lm``: perplexity over seeds, KV bytes, speed, brownout cost.

Perplexity over seeds comes from the training records (``runs.json``, written by
``robomr lm train``: every run's test perplexity, measured on its stored float16 weights); the
shipped model is re-evaluated here and must reproduce its record. KV bytes per token are measured
from the cache after prefilling test text (float32, as the engine stores it). Prefill and decode
tokens/s are timed side by side for the three variants at the same shape (CPU time of this
thread). Brownout cost: test perplexity of the shipped model at each level tau, per merge method.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.report import BenchReport, Table
from offload.models.lm.config import VARIANTS, LMConfig, variant_config
from offload.models.lm.evaluate import evaluate
from offload.models.lm.generate import argmax_rows
from offload.models.lm.model import MoELM
from offload.models.lm.united import MERGE_METHODS


def seed_stats(runs_path: Path, kv_budget: float = 0.5) -> dict[str, dict[str, Any]]:
    """Test perplexity per variant over its seeds: mean, std (ddof 1), min, max, seeds."""
    records = json.loads(runs_path.read_text())
    out: dict[str, dict[str, Any]] = {}
    for variant in VARIANTS:
        rows = [
            r
            for r in records
            if r["variant"] == variant
            and (variant == "mha" or abs(r["model"]["kv_budget"] - kv_budget) < 1e-9)
        ]
        if not rows:
            continue
        ppl = np.array([r["test"]["ppl"] for r in rows])
        out[variant] = {
            "mean": float(ppl.mean()),
            "std": float(ppl.std(ddof=1)) if len(ppl) > 1 else 0.0,
            "min": float(ppl.min()),
            "max": float(ppl.max()),
            "seeds": [int(r["seed"]) for r in rows],
            "per_seed": [float(p) for p in ppl],
            "kv_relative": float(np.mean([r["test"]["kv_relative"] for r in rows])),
            "onehot_mass": float(np.mean([r["test"]["onehot_mass"] for r in rows])),
            "agreement": float(np.mean([r["test"]["agreement"] for r in rows])),
        }
    return out


def paired_differences(runs_path: Path, a: str, b: str) -> list[float]:
    """Per-seed test perplexity of ``a`` minus ``b`` (seeds both have): same data order and init
    seed, so the pairing removes the shared part of the seed noise."""
    records = json.loads(runs_path.read_text())
    by = {(r["variant"], r["seed"]): r["test"]["ppl"] for r in records}
    seeds = sorted({s for v, s in by if v == a} & {s for v, s in by if v == b})
    return [by[(a, s)] - by[(b, s)] for s in seeds]


def kv_bytes_per_token(model: MoELM, windows: torch.Tensor) -> float:
    """Stored KV bytes per token after prefilling ``windows`` [W, T] (float32)."""
    _, cache = model.prefill(windows, torch.full((len(windows),), windows.shape[1]))
    return float(cache.stored_bytes().sum()) / windows.numel()


def speed(
    model: MoELM, prompt_len: int, batch: int, decode_steps: int, rng: np.random.Generator
) -> tuple[float, float]:
    """(prefill tokens/s, decode tokens/s) at ``batch`` sequences, CPU time of this thread."""
    tokens = torch.from_numpy(rng.integers(1, model.cfg.vocab_size, (batch, prompt_len)))
    lengths = torch.full((batch,), prompt_len)
    model.prefill(tokens[:, :8], lengths.clamp(max=8))  # warm-up: first-call allocations
    start = time.thread_time()
    logits, cache = model.prefill(tokens, lengths)
    prefill_s = time.thread_time() - start
    nxt = argmax_rows(logits)
    start = time.thread_time()
    for _ in range(decode_steps):
        nxt = argmax_rows(model.decode(nxt, cache))
    decode_s = time.thread_time() - start
    return batch * prompt_len / prefill_s, batch * decode_steps / decode_s


def variant_models(trained: MoELM) -> dict[str, MoELM]:
    """The shipped (trained) mixSGA model and GQA/MHA models of the same shape (random weights:
    their cache size and speed do not depend on the weights; mixSGA's routing does)."""
    base: LMConfig = replace(trained.cfg)
    out = {"mixsga": trained}
    for variant in VARIANTS:
        if variant != "mixsga":
            torch.manual_seed(0)
            out[variant] = MoELM(variant_config(variant, base, trained.cfg.kv_budget)).eval()
    return out


def brownout_costs(
    model: MoELM, stream: np.ndarray, levels: list[float], max_tokens: int | None, seq_len: int
) -> dict[str, dict[float, float]]:
    """Test perplexity per merge method and brownout level (tau = 1 is the original); the
    distilled united experts too when the model has them (``robomr lm unite``)."""
    out: dict[str, dict[float, float]] = {}
    methods = [*MERGE_METHODS, *(["distilled"] if model.merge_method == "distilled" else [])]
    for method in methods:
        out[method] = {}
        for tau in levels:
            model.set_brownout(tau, method)
            out[method][tau] = evaluate(model, stream, seq_len, max_tokens=max_tokens).ppl
        model.set_brownout(1.0)
    return out


def random_router_ppl(
    model: MoELM, stream: np.ndarray, max_tokens: int | None, seq_len: int, seed: int
) -> float:
    """Ablation: perplexity when every layer's attention routing is replaced by random choices
    at the training shares (the KV guard still applies): how much the learned importance does."""
    gen = torch.Generator().manual_seed(seed)

    def random_logits(
        module: torch.nn.Module, _inputs: Any, out: torch.Tensor, f: Any
    ) -> torch.Tensor:
        n = int(np.prod(out.shape[:-1]))
        choice = torch.multinomial(torch.tensor(f), n, replacement=True, generator=gen)
        return 20.0 * torch.nn.functional.one_hot(choice, out.shape[-1]).float().view(out.shape)

    handles = [
        b.attn.router.register_forward_hook(
            lambda m, i, o, f=b.attn.fractions: random_logits(m, i, o, f)
        )
        for b in model.blocks
        if b.attn.router is not None
    ]
    try:
        return evaluate(model, stream, seq_len, max_tokens=max_tokens).ppl
    finally:
        for h in handles:
            h.remove()


def quality_section(
    args: argparse.Namespace, model: Any, streams: Any, report: BenchReport, figures: dict[str, Any]
) -> None:
    """The quality and speed tables; figures go into ``figures`` under the issue's keys."""
    runs = args.runs
    stats = seed_stats(runs, model.cfg.kv_budget)
    seq = 128
    shipped = evaluate(model, streams.test, seq, max_tokens=args.eval_tokens)
    ablation = random_router_ppl(model, streams.test, args.eval_tokens, seq, args.seed)
    models = variant_models(model)
    n_win = max(1, min(16, len(streams.test) // seq))  # 16 windows of test text (fewer if short)
    windows = torch.from_numpy(streams.test[: n_win * seq].astype(np.int64)).view(n_win, seq)
    rng = np.random.default_rng(args.seed)
    table = Table(
        f"test perplexity over seeds at KV budget {model.cfg.kv_budget} of MHA (mean, sd, "
        "min-max), KV cache, speed (CPU time, batch 16, 64-token prompts)",
        ["variant", "seeds", "ppl mean", "ppl sd", "ppl min", "ppl max", "KV vs MHA",
         "KV B/token", "prefill tok/s", "decode tok/s"],
    )  # fmt: skip
    figures["ppl"], figures["kv_bytes_per_token"] = {}, {}
    figures["prefill_tokens_per_s"], figures["decode_tokens_per_s"] = {}, {}
    for variant, m in models.items():
        kv = kv_bytes_per_token(m, windows)
        pre, dec = speed(m, 64, 16, args.decode_steps, rng)
        s = stats.get(variant, {})
        table.add(variant, len(s.get("seeds", [])), s.get("mean"), s.get("std"), s.get("min"),
                  s.get("max"), s.get("kv_relative"), kv, pre, dec)  # fmt: skip
        figures["ppl"][variant] = (
            {k: s[k] for k in ("mean", "std", "per_seed", "seeds")} if s else None
        )
        figures["kv_bytes_per_token"][variant] = kv
        figures["prefill_tokens_per_s"][variant] = pre
        figures["decode_tokens_per_s"][variant] = dec
    report.tables.append(table)
    diffs = paired_differences(runs, "mixsga", "gqa")
    figures["ppl_paired_mixsga_minus_gqa"] = diffs
    mix = stats.get("mixsga", {})
    check = Table(
        "shipped mixSGA model re-evaluated here; routing ablation",
        ["model", "test ppl", "recorded ppl (seed 0)", "KV vs MHA", "one-hot mass", "agreement"],
    )
    recorded = dict(zip(mix.get("seeds", []), mix.get("per_seed", []), strict=True)).get(0)
    check.add("mixsga (learned routing)", shipped.ppl, recorded,
              shipped.kv_relative, shipped.onehot_mass, shipped.agreement)  # fmt: skip
    check.add("mixsga, random routing", ablation, "-", "-", "-", "-")
    report.tables.append(check)
    brownout_quality(args, model, streams, report, figures)
    if "mixsga" in stats and "gqa" in stats:
        report.ratios["ppl mixsga / gqa (mean over seeds)"] = (
            stats["mixsga"]["mean"] / stats["gqa"]["mean"]
        )
    if "mha" in stats and "gqa" in stats:
        report.ratios["ppl mha / gqa (mean over seeds)"] = (
            stats["mha"]["mean"] / stats["gqa"]["mean"]
        )
    report.ratios["ppl random routing / learned (shipped mixsga)"] = ablation / shipped.ppl
    report.ratios["decode tok/s mixsga / gqa"] = (
        figures["decode_tokens_per_s"]["mixsga"] / figures["decode_tokens_per_s"]["gqa"]
    )


def brownout_quality(
    args: argparse.Namespace, model: Any, streams: Any, report: BenchReport, figures: dict[str, Any]
) -> None:
    """Test perplexity per brownout level and merge method; ``brownout_ppl_cost`` per level,
    also at the levels the burst runs served that ``--levels`` does not name (the paper law
    rounds its tau to any whole number of experts; those get the default merge only). The cost is
    that of the model's default merge (``MoELM.merge_method``: distilled when it has them), the
    one the server and the burst runs serve."""
    seq = 128
    levels = sorted({1.0, *(float(x) for x in args.levels.split(",") if x.strip())}, reverse=True)
    costs = brownout_costs(model, streams.test, levels, args.eval_tokens, seq)
    served = {
        float(t)
        for by_factor in figures.get("brownout_token_share", {}).values()
        for share in by_factor.values()
        for t in share
    }
    default = model.merge_method
    for tau in sorted(served - set(levels), reverse=True):
        model.set_brownout(tau)
        costs[default][tau] = evaluate(model, streams.test, seq, max_tokens=args.eval_tokens).ppl
        model.set_brownout(1.0)
    bt = Table(
        "brownout: test perplexity per level tau (share 1 - tau of experts united)",
        ["tau", "experts merged", *[f"ppl {m}" for m in costs], f"cost ({default})"],
    )
    base = costs[default][1.0]
    for tau in sorted(costs[default], reverse=True):
        merged = round((1 - tau) * model.cfg.n_experts)
        row = [costs[m].get(tau, "-") for m in costs]
        bt.add(tau, merged, *row, costs[default][tau] / base - 1)
    report.tables.append(bt)
    figures["brownout_merge_method"] = default
    figures["brownout_ppl_cost"] = {
        str(t): costs[default][t] / base - 1 for t in sorted(costs[default], reverse=True)
    }
    figures["brownout_ppl"] = {m: {str(t): v for t, v in c.items()} for m, c in costs.items()}
