"""``robomr bench lm``: the MoE language model and its token-level serving, all in one run.

Quality (``bench.lm_quality``): test perplexity of mixSGA vs static GQA vs MHA at the same KV
budget over the training seeds, the shipped model re-evaluated, a random-routing ablation, KV
bytes per token, prefill/decode tokens/s, and the perplexity of each united-expert brownout level.

Serving (``bench.lm_replay``): the Azure LLM conversation trace (ContextTokens, GeneratedTokens),
lengths divided by ``--length-scale`` to fit the model's context, replayed on the real engine with
the shipped model on a virtual clock of measured CPU time. The SLO is ``--slo-scale`` times the
isolated latency (TTFT of the trace's 90th-percentile prompt alone; one decode step alone);
offered load is a multiple of the capacity measured with every request queued at once.
Bucket (BucketServe), FIFO continuous batching and static batching (max batch swept, best kept)
run on the same arrivals. Brownout (``bench.lm_brownout``): where a step's time goes at each
united-expert level, each level's capacity, and on/off bursts swept over burst height and
arrival seeds with brownout off, with BrownoutServe's periodic law, with the per-step slack law
and with tau = 0 throughout (the bound of any law); the perplexity cost per level and as the
token-weighted mean actually served (``brownout_served_ppl_cost``). ``--sections brownout``
runs only the brownout parts (and the per-level perplexity).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch

from bench.lm_replay import AZURE_CONV
from bench.report import BenchReport

DESCRIPTION = (
    "MoE LM: mixSGA vs GQA vs MHA perplexity over seeds, KV bytes/token, tokens/s, brownout "
    "ppl cost; Azure-trace SLO attainment and goodput of bucket vs FIFO vs static batching; "
    "brownout SLO violations under bursts"
)
MODELS = Path(__file__).resolve().parents[1] / "models" / "lm"
TRAIN_HINT = (
    "train the three variants first: robomr lm train --out models/lm --variants mixsga,gqa,mha "
    "--seeds 0,1,2 (docs/lm.md, about 2 CPU-hours), then cp models/lm/mixsga-s0.safetensors "
    "models/lm/mixsga.safetensors"
)


class LMReport(BenchReport):
    """A BenchReport whose JSON also carries the issue's named figures at the top level."""

    figures: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        from bench.report import _jsonable

        return {**super().to_json(), **_jsonable(getattr(self, "figures", {}))}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model", type=Path, default=MODELS / "mixsga.safetensors", help="served mixSGA weights"
    )
    parser.add_argument(
        "--runs", type=Path, default=MODELS / "runs.json", help="training records (all seeds)"
    )
    parser.add_argument("--wordnet-dir", type=Path, help="WordNet data files (default: Debian's)")
    parser.add_argument("--eval-tokens", type=int, help="test tokens evaluated (default: all)")
    parser.add_argument("--trace", type=Path, default=AZURE_CONV, help="Azure LLM trace CSV")
    parser.add_argument("--requests", type=int, default=200, help="trace rows replayed")
    parser.add_argument("--length-scale", type=float, default=16.0, help="trace lengths / this")
    parser.add_argument("--loads", default="0.5,0.8,1.0,1.3", help="offered load / capacity")
    parser.add_argument("--slo-scale", type=float, default=5.0, help="SLO = this x isolated")
    parser.add_argument("--kv-seqs", type=int, default=16, help="KV budget in max-length sequences")
    parser.add_argument("--static-batches", default="4,8,16,32", help="static max_batch sweep")
    parser.add_argument("--burst-seconds", type=float, default=24.0, help="burst run length (s)")
    parser.add_argument(
        "--burst-factors", default="1.2,1.3,1.6,2", help="burst rate / capacity, swept"
    )
    parser.add_argument(
        "--burst-headline", type=float, default=1.3, help="burst factor of the headline figure"
    )
    parser.add_argument("--burst-seeds", default="0,1,2", help="arrival seeds of the burst runs")
    parser.add_argument(
        "--slack-headroom", type=float, default=0.8, help="slack law: share of time left usable"
    )
    parser.add_argument(
        "--slack-utilisation", type=float, default=0.7, help="slack law rate rule: max utilisation"
    )
    parser.add_argument(
        "--slack-headrooms", default="0.6,1.0", help="slack law headrooms swept at the headline"
    )
    parser.add_argument(
        "--slack-utilisations",
        default="0.9,0.6,off",
        help="rate-rule utilisations swept at the headline (off: the slack count alone)",
    )
    parser.add_argument(
        "--sections",
        choices=("all", "brownout"),
        default="all",
        help="brownout: only the brownout profile, capacity, bursts and per-level perplexity",
    )
    parser.add_argument("--levels", default="1,0.75,0.5,0.25,0", help="brownout levels tau")
    parser.add_argument(
        "--prefill-guard",
        choices=("on", "off"),
        default="on",
        help="burst engines admit through the decode-protecting prefill guard (off: session 12's "
        "engine; offload.models.lm.prefill_guard)",
    )
    parser.add_argument(
        "--guard-margin", type=float, default=1.0, help="prefill guard: TTFT margin, decode steps"
    )
    parser.add_argument(
        "--guard-margins", default="0,3", help="prefill guard margins swept at the headline"
    )
    parser.add_argument(
        "--replay-clock",
        choices=("cpu", "model"),
        default="cpu",
        help="brownout replays' clock: each step's CPU time, or a step-cost model fitted on "
        "measured steps (reproducible on a noisy machine; bench.lm_clock)",
    )
    parser.add_argument(
        "--clock-calibration",
        choices=("grid", "replays"),
        default="grid",
        help="model clock: each level's backend costs from a designed grid of calls (the "
        "engine's overhead from the calibration replays), or a regression on the replays' steps "
        "(sessions 12-13); bench.lm_clock_grid",
    )
    parser.add_argument(
        "--clock-grid-repeats", type=int, default=7, help="model clock: timings per grid point"
    )
    parser.add_argument("--decode-steps", type=int, default=32, help="timed decode steps")
    parser.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> BenchReport:
    from bench.lm_quality import brownout_quality, quality_section
    from bench.lm_serving import serving
    from offload.models.lm.checkpoint import load_model
    from offload.models.lm.corpus import WORDNET_DIR
    from offload.models.lm.recipe import prepare_data

    torch.set_num_threads(1)
    if not args.model.is_file() or not args.runs.is_file():
        raise ValueError(f"{args.model} or {args.runs} not found: {TRAIN_HINT}")
    if not 1 <= args.clock_grid_repeats <= 100:
        raise ValueError(f"--clock-grid-repeats {args.clock_grid_repeats}: must be in [1, 100]")
    model = load_model(args.model)
    streams, corpus = prepare_data(
        args.model.parent, model.cfg.vocab_size, args.wordnet_dir or WORDNET_DIR
    )
    report = LMReport(
        name="lm",
        settings={
            k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "json"
        },
    )
    figures: dict[str, Any] = {}
    # serving first: the quality section reads runs.json last, so a sweep still training its
    # later seeds while this runs is counted as far as it got (the table shows the seeds)
    serving(args, model, streams, report, figures)
    if args.sections == "brownout":
        brownout_quality(args, model, streams, report, figures)
    else:
        quality_section(args, model, streams, report, figures)
    served_cost(figures, report)
    report.figures = figures
    report.notes.append(
        f"corpus sha256 {corpus['sha256'][:16]}..., test split {corpus['tokens']['test']} tokens"
    )
    return report


def served_cost(figures: dict[str, Any], report: BenchReport) -> None:
    """The perplexity cost actually served in the burst runs: per law and burst factor, the
    token-weighted mean of the per-level cost ppl(tau) / ppl(1) - 1."""
    from bench.lm_brownout import token_weighted_cost

    cost = figures.get("brownout_ppl_cost")
    if not cost or "brownout_token_share" not in figures:
        return
    served = {
        law: {f: token_weighted_cost(share, cost) for f, share in by_factor.items()}
        for law, by_factor in figures["brownout_token_share"].items()
    }
    figures["brownout_served_ppl_cost"] = served
    for entry in figures.get("brownout_headroom_sweep", {}).values():
        entry["served_ppl_cost"] = token_weighted_cost(entry["token_share"], cost)
    head = str(figures["brownout_headline_burst"])
    for law in served:
        report.ratios[f"served perplexity / ppl at tau 1, {law} law (bursts {head}x)"] = (
            1 + served[law][head]
        )
