"""``robomr lm train|unite|eval|generate``: the MoE language model from the command line.

Thin: parses arguments, calls ``offload.models.lm``, prints. Library errors (bad model file,
setting out of bounds, missing corpus) become a ``CliError``. torch is imported by the handlers.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from robomr_nodes.cli.main import CliError

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "models" / "lm"
MERGES = ("aligned", "average", "anchor", "distilled")  # offload.models.lm.united.MergeMethod


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "lm",
        help="MoE language model: train, distil united experts, evaluate, generate",
        description="Decoder-only MoE transformer with mixSGA attention (see docs/lm.md).",
    )
    cmds = parser.add_subparsers(dest="lm_command", metavar="COMMAND", required=True)

    p = cmds.add_parser(
        "train",
        help="train variants x seeds on the WordNet corpus (resumes: finished runs are skipped)",
    )
    p.add_argument("--out", type=Path, required=True, help="run folder (weights, runs.json)")
    p.add_argument("--variants", default="mixsga,gqa,mha", help="comma-separated variants")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    p.add_argument("--steps", type=int, help="optimizer steps per run (default: 1200)")
    p.add_argument("--lr", type=float, help="peak learning rate (default: 3e-3)")
    p.add_argument("--batch-size", type=int, help="windows per step (default: 16)")
    p.add_argument("--experts", type=int, default=8, help="MoE experts per layer")
    p.add_argument("--kv-budget", type=float, default=0.5, help="KV budget vs MHA (default 0.5)")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--wordnet-dir", type=Path, help="WordNet data files (default: Debian's)")
    p.set_defaults(func=_train)

    p = cmds.add_parser(
        "unite",
        help="fit the united experts of brownout to the experts they replace (docs/lm.md)",
        description="Writes <model>.united.safetensors and .united.json beside the model; "
        "the server then serves brownout with them.",
    )
    p.add_argument("--model", type=Path, default=DEFAULT_DIR / "mixsga.safetensors")
    p.add_argument("--windows", type=int, default=256, help="training windows (129 tokens)")
    p.add_argument("--steps", type=int, default=500, help="Adam steps per layer and level")
    p.add_argument("--batch-tokens", type=int, default=4096, help="tokens per minibatch")
    p.add_argument("--lr", type=float, default=3e-3, help="peak learning rate")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--val-tokens", type=int, default=16384, help="validation tokens compared")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--wordnet-dir", type=Path, help="WordNet data files (default: Debian's)")
    p.set_defaults(func=_unite)

    p = cmds.add_parser("eval", help="test perplexity of a model (optionally per brownout level)")
    p.add_argument("--model", type=Path, default=DEFAULT_DIR / "mixsga.safetensors")
    p.add_argument("--split", choices=("val", "test"), default="test")
    p.add_argument("--max-tokens", type=int, help="first N tokens of the split only")
    p.add_argument("--tau", type=float, action="append", help="brownout level(s) to evaluate")
    p.add_argument(
        "--merge",
        choices=MERGES,
        help="united-expert merge (default: distilled when the model has them, else aligned)",
    )
    p.add_argument("--wordnet-dir", type=Path, help="WordNet data files (default: Debian's)")
    p.set_defaults(func=_eval)

    p = cmds.add_parser("generate", help="continue a prompt (greedy or sampled)")
    p.add_argument("prompt")
    p.add_argument("--model", type=Path, default=DEFAULT_DIR / "mixsga.safetensors")
    p.add_argument("--tokenizer", type=Path, help="default: tokenizer.json beside the model")
    p.add_argument("--max-tokens", type=int, default=40)
    p.add_argument("--temperature", type=float, default=0.0, help="0 = greedy")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tau", type=float, default=1.0, help="brownout level (1 = the full model)")
    p.add_argument("--merge", choices=MERGES, help="united-expert merge (default: the model's)")
    p.set_defaults(func=_generate)


def _ints(text: str, what: str) -> list[int]:
    try:
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError as err:
        raise CliError(f"{what} must be comma-separated integers, got {text!r}") from err


def _train(args: argparse.Namespace) -> int:
    import logging

    from offload.models.lm.config import VARIANTS, LMConfig, LMConfigError
    from offload.models.lm.corpus import CorpusError
    from offload.models.lm.recipe import train_runs
    from offload.models.lm.train import TrainConfig, TrainError

    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown or not variants:
        raise CliError(f"unknown variant(s) {unknown}; expected some of {', '.join(VARIANTS)}")
    logging.getLogger("offload.models.lm").setLevel(logging.INFO)
    chosen = {"steps": args.steps, "learning_rate": args.lr, "batch_size": args.batch_size}
    try:
        given = {k: v for k, v in chosen.items() if v}
        warmup = min(TrainConfig.warmup_steps, given.get("steps", TrainConfig.steps))
        recipe = TrainConfig(threads=args.threads, warmup_steps=warmup, **given)
        base = LMConfig(n_experts=args.experts, top_k=min(2, args.experts))

        def progress(name: str, step: int, info: dict[str, float]) -> None:
            print(
                f"{name}: step {step}/{recipe.steps}, train ce {info['ce']:.3f}, "
                f"val ppl {info['val_ppl']:.2f}, {info['s']:.0f} s",
                file=sys.stderr,
                flush=True,
            )

        records = train_runs(
            args.out,
            variants,  # type: ignore[arg-type]
            _ints(args.seeds, "--seeds"),
            base,
            recipe,
            command=shlex.join(["robomr", *sys.argv[1:]]),
            progress=progress,
            kv_budget=args.kv_budget,
            **({"wordnet_dir": args.wordnet_dir} if args.wordnet_dir else {}),
        )
    except (LMConfigError, TrainError, CorpusError) as err:
        raise CliError(str(err)) from err
    for r in records:
        print(
            f"{r['variant']:7s} seed {r['seed']}: test ppl {r['test']['ppl']:.3f} "
            f"(KV {r['test']['kv_relative']:.3f} of MHA)"
        )
    return 0


def _unite(args: argparse.Namespace) -> int:
    import logging

    import torch

    from offload.models.lm.checkpoint import CheckpointError
    from offload.models.lm.corpus import WORDNET_DIR, CorpusError
    from offload.models.lm.distill import DistillConfig, LayerFit
    from offload.models.lm.tokenizer import TokenizerError
    from offload.models.lm.unite_recipe import unite_model
    from offload.models.lm.united import BrownoutError

    if args.threads < 1:
        raise CliError(f"--threads must be >= 1, got {args.threads}")
    if args.val_tokens < 129:  # one evaluation window of 128 predicted tokens
        raise CliError(f"--val-tokens must be >= 129, got {args.val_tokens}")
    torch.set_num_threads(args.threads)
    logging.getLogger("offload.models.lm").setLevel(logging.INFO)

    def progress(merged: int, fit: LayerFit) -> None:
        print(
            f"{merged} experts merged, layer {fit.layer}: output error {fit.mse_aligned:.3g} "
            f"(aligned) -> {fit.mse_distilled:.3g} (zero output: {fit.target_energy:.3g}), "
            f"{fit.tokens} tokens",
            file=sys.stderr,
            flush=True,
        )

    try:
        config = DistillConfig(args.windows, args.steps, args.batch_tokens, args.lr, args.seed)
        record = unite_model(
            args.model,
            config,
            shlex.join(["robomr", *sys.argv[1:]]),
            val_tokens=args.val_tokens,
            wordnet_dir=args.wordnet_dir or WORDNET_DIR,
            progress=progress,
        )
    except (CheckpointError, CorpusError, TokenizerError, BrownoutError) as err:
        raise CliError(str(err)) from err
    val = record["val_ppl_by_merged_count"]
    for m in val["aligned"]:
        print(f"{m} experts merged: val ppl aligned {val['aligned'][m]:.2f}, "
              f"distilled {val['distilled'][m]:.2f}")  # fmt: skip
    return 0


def _eval(args: argparse.Namespace) -> int:
    from offload.models.lm.checkpoint import CheckpointError, load_model
    from offload.models.lm.corpus import WORDNET_DIR, CorpusError
    from offload.models.lm.evaluate import evaluate
    from offload.models.lm.recipe import prepare_data
    from offload.models.lm.tokenizer import TokenizerError
    from offload.models.lm.united import BrownoutError

    try:
        model = load_model(args.model)
        streams, _ = prepare_data(
            args.model.parent, model.cfg.vocab_size, args.wordnet_dir or WORDNET_DIR
        )
        for tau in args.tau or [1.0]:
            model.set_brownout(tau, args.merge)
            r = evaluate(model, streams[args.split], max_tokens=args.max_tokens)
            merge = f" ({args.merge or model.merge_method} merge)" if tau < 1.0 else ""
            print(
                f"tau {tau:.2f}{merge}: {args.split} ppl {r.ppl:.3f} over {r.tokens} tokens, "
                f"KV {r.kv_relative:.3f} of MHA, one-hot mass {r.onehot_mass:.3f}"
            )
    except (CheckpointError, CorpusError, TokenizerError, BrownoutError) as err:
        raise CliError(str(err)) from err
    return 0


def _generate(args: argparse.Namespace) -> int:
    from offload.models.lm.checkpoint import CheckpointError, load_model
    from offload.models.lm.generate import GenerateError, generate
    from offload.models.lm.tokenizer import TokenizerError, load_tokenizer
    from offload.models.lm.united import BrownoutError

    try:
        model = load_model(args.model)
        model.set_brownout(args.tau, args.merge)
        tok = load_tokenizer(args.tokenizer or args.model.parent / "tokenizer.json")
        for piece in generate(
            model, tok, args.prompt, args.max_tokens, args.temperature, seed=args.seed
        ):
            print(piece, end="", flush=True)
        print()
    except (CheckpointError, TokenizerError, GenerateError, BrownoutError) as err:
        raise CliError(str(err)) from err
    return 0
