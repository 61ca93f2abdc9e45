"""``robomr lm unite``: distilled united experts for a trained model, with their provenance.

Writes beside ``<dir>/<name>.safetensors``::

    <name>.united.safetensors   float16 united experts per merged count (1..E) and layer, with
                                the model file's SHA-256 (checkpoint.save_united)
    <name>.united.json          command, corpus SHA-256, settings, per level and layer the output
                                error of the aligned merge and of the fit, and the validation
                                perplexity of both merges at every level (of the stored weights)

Only training windows are fitted on; the validation split compares the merges; the test split is
left to ``robomr bench lm``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from offload.models.lm.checkpoint import (
    load_model,
    load_united,
    save_united,
    sha256_file,
    united_path,
    write_provenance,
)
from offload.models.lm.corpus import WORDNET_DIR
from offload.models.lm.data import eval_windows
from offload.models.lm.distill import DistillConfig, LayerFit, distill_united
from offload.models.lm.evaluate import evaluate
from offload.models.lm.recipe import CORPUS, prepare_data

log = logging.getLogger(__name__)
SEQ_LEN = 128  # the training recipe's window length


def unite_model(
    model_path: Path,
    config: DistillConfig,
    command: str,
    val_tokens: int | None = 16384,
    wordnet_dir: Path = WORDNET_DIR,
    progress: Callable[[int, LayerFit], None] | None = None,
) -> dict[str, Any]:
    """Fits, stores and checks the united experts of ``model_path``; returns the record."""
    model = load_model(model_path)
    model.set_distilled({})  # fit from the model alone, whatever a previous run left beside it
    streams, corpus = prepare_data(model_path.parent, model.cfg.vocab_size, wordnet_dir)
    train = eval_windows(streams.train, SEQ_LEN)
    if len(train) < config.windows:
        log.warning("only %d training windows for %d asked", len(train), config.windows)
    pick = np.random.default_rng(config.seed).permutation(len(train))[: config.windows]
    distilled = distill_united(model, train[torch.as_tensor(np.sort(pick))], config,
                               progress=progress)  # fmt: skip
    model_sha256 = sha256_file(model_path)
    out = save_united(distilled.experts, united_path(model_path), model_sha256)
    model.set_distilled(load_united(out))  # what is stored (float16), as the server loads it
    val: dict[str, dict[str, float]] = {"aligned": {}, "distilled": {}}
    for m in [0, *sorted(distilled.experts)]:
        tau = 1.0 - m / model.cfg.n_experts
        for method in ("aligned", "distilled"):
            model.set_brownout(tau, method)  # type: ignore[arg-type]
            ppl = evaluate(model, streams.val, SEQ_LEN, max_tokens=val_tokens).ppl
            val[method][str(m)] = ppl
        log.info("%d merged: val ppl aligned %.2f, distilled %.2f", m,
                 val["aligned"][str(m)], val["distilled"][str(m)])  # fmt: skip
    model.set_brownout(1.0)
    record = {
        "command": command,
        "fitted_to": {"model_file": model_path.name, "sha256": model_sha256},
        "corpus": {**CORPUS, "sha256": corpus["sha256"]},
        "distill": asdict(config),
        "windows_of_tokens": SEQ_LEN + 1,
        "val_tokens": val_tokens,
        "val_ppl_by_merged_count": val,
        **distilled.report(),
    }
    write_provenance(out, record)
    return record
