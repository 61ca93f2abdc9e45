"""The whole training recipe: corpus, tokenizer, every (variant, seed) run, records and weights.

``train_runs`` writes into ``out_dir``::

    tokenizer.json                 BPE trained on the training split (shared by every run)
    <variant>-s<seed>.safetensors  float16 weights of each run
    <variant>-s<seed>.json         provenance: command, corpus SHA-256, recipe, losses, ppl
    runs.json                      one record per run (the figures ``robomr bench lm`` reports)

Runs already present in ``runs.json`` are skipped, so an interrupted sweep resumes.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from offload.models.lm.checkpoint import round_weights, save_model, write_provenance
from offload.models.lm.config import LMConfig, Variant, variant_config
from offload.models.lm.corpus import WORDNET_DIR, corpus_sha256, load_splits
from offload.models.lm.data import TokenSplits, encode_splits, eval_windows
from offload.models.lm.evaluate import evaluate
from offload.models.lm.tokenizer import load_tokenizer, train_bpe
from offload.models.lm.train import TrainConfig, train
from offload.models.lm.united import calibrate_usage

log = logging.getLogger(__name__)
CORPUS = {
    "name": "WordNet 3.0 glosses and examples (Debian wordnet-base 1:3.0-37)",
    "licence": "WordNet 3.0 licence (Princeton University; permissive, keep the notice)",
    "files": "/usr/share/wordnet/data.{noun,verb,adj,adv}",
    "document": "one synset: lemmas (part of speech): gloss; examples",
    "split": "sha256(pos:offset) mod 100: <90 train, <95 val, else test",
}
CALIBRATION_WINDOWS = 64  # training windows used to recount expert usage for brownout


def prepare_data(
    out_dir: Path, vocab_size: int, wordnet_dir: Path = WORDNET_DIR
) -> tuple[TokenSplits, dict[str, Any]]:
    """Token streams of the three splits, training (or reusing) ``out_dir/tokenizer.json``."""
    splits = load_splits(wordnet_dir)
    tok_path = out_dir / "tokenizer.json"
    if tok_path.is_file():
        tok = load_tokenizer(tok_path)
    else:
        tok = train_bpe(splits["train"], vocab_size)
        tok.save(str(tok_path))
    streams = encode_splits(tok, splits)
    info = {
        **CORPUS,
        "sha256": corpus_sha256(wordnet_dir),
        "documents": {k: len(v) for k, v in splits.items()},
        "tokens": {k: len(streams[k]) for k in ("train", "val", "test")},
        "tokenizer": {"file": tok_path.name, "vocab_size": tok.get_vocab_size()},
    }
    return streams, info


def train_runs(
    out_dir: str | Path,
    variants: list[Variant],
    seeds: list[int],
    base: LMConfig,
    recipe: TrainConfig,
    command: str,
    progress: Callable[[str, int, dict[str, float]], None] | None = None,
    kv_budget: float = 0.5,
    wordnet_dir: Path = WORDNET_DIR,
) -> list[dict[str, Any]]:
    """Trains every (variant, seed) not yet in ``out_dir/runs.json``; returns all records."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    streams, corpus = prepare_data(out_dir, base.vocab_size, wordnet_dir)
    runs_path = out_dir / "runs.json"
    records: list[dict[str, Any]] = json.loads(runs_path.read_text()) if runs_path.is_file() else []
    for seed in seeds:
        for variant in variants:
            cfg = variant_config(variant, base, kv_budget)
            name = f"{variant}-s{seed}" + ("" if kv_budget == 0.5 else f"-kv{kv_budget:g}")
            with _claim(out_dir / f".{name}.lock") as mine:
                records = json.loads(runs_path.read_text()) if runs_path.is_file() else []
                done = {(r["variant"], r["seed"], r["model"]["kv_budget"]) for r in records}
                if not mine or (variant, seed, cfg.kv_budget) in done:
                    log.info("%s: done or being trained by another process, skipped", name)
                    continue
                records = _one_run(
                    out_dir, name, variant, seed, cfg, recipe, streams, corpus, command, progress
                )
    return records


def _one_run(
    out_dir: Path,
    name: str,
    variant: Variant,
    seed: int,
    cfg: LMConfig,
    recipe: TrainConfig,
    streams: TokenSplits,
    corpus: dict[str, Any],
    command: str,
    progress: Callable[[str, int, dict[str, float]], None] | None,
) -> list[dict[str, Any]]:
    """Trains, evaluates and stores one run; returns runs.json's records."""
    run_cfg = replace(recipe, seed=seed)
    model, history = train(
        cfg,
        run_cfg,
        streams.train,
        streams.val,
        progress=None if progress is None else (lambda s, i, n=name: progress(n, s, i)),
    )
    round_weights(model)  # the figures below are those of the stored float16 weights
    calibrate_usage(model, eval_windows(streams.train, recipe.seq_len)[:CALIBRATION_WINDOWS])
    val = evaluate(model, streams.val, recipe.seq_len)
    test = evaluate(model, streams.test, recipe.seq_len)
    path = save_model(model, out_dir / f"{name}.safetensors")
    record = {
        "variant": variant,
        "seed": seed,
        "model": asdict(cfg),
        "parameters": sum(p.numel() for p in model.parameters()),
        "kv_bytes_per_token_fp16": cfg.kv_bytes_per_token(2),
        "val": val.to_dict(),
        "test": test.to_dict(),
        "train_s": history["train_s"][0],
    }
    write_provenance(
        path,
        {
            "command": command,
            "corpus": corpus,
            "recipe": asdict(run_cfg),
            "history": {k: v for k, v in history.items() if k != "config"},
            **record,
        },
    )
    log.info("%s: val ppl %.3f, test ppl %.3f", name, val.ppl, test.ppl)
    return _append_record(out_dir / "runs.json", json.loads(json.dumps(record)))


@contextlib.contextmanager
def _claim(path: Path) -> Iterator[bool]:
    """An exclusive, non-blocking lock on ``path`` (released when the process dies): parallel
    ``robomr lm train`` processes on one folder never train the same run twice."""
    with path.open("w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _append_record(runs_path: Path, record: dict[str, Any]) -> list[dict[str, Any]]:
    """Adds one record to runs.json under an exclusive lock (parallel sweeps share the file)."""
    with (runs_path.parent / ".runs.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        records = json.loads(runs_path.read_text()) if runs_path.is_file() else []
        records.append(record)
        runs_path.write_text(json.dumps(records, indent=2) + "\n")
    return records
