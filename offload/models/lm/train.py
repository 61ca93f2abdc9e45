"""Training the MoE language model from scratch on the WordNet corpus, on a CPU.

Recipe (nanoGPT-style, scaled to 2 shared cores): AdamW (beta2 0.95, decoupled weight decay on
matrices only), linear warm-up then cosine decay to 10% of the peak rate, gradient clipping,
windows of ``seq_len + 1`` tokens (``data.train_batches``). Every ``eval_every`` steps the
validation perplexity (causal routing, first ``eval_tokens`` tokens) is logged; the history goes
into the provenance file. The three variants get the same recipe, data order and seed.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch

from offload.models.lm.config import LMConfig
from offload.models.lm.data import train_batches
from offload.models.lm.evaluate import evaluate
from offload.models.lm.model import MoELM

log = logging.getLogger(__name__)


class TrainError(ValueError):
    """A training setting is out of bounds."""


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings of one run."""

    steps: int = 1200  # optimizer steps, >= 1
    batch_size: int = 16  # windows per step, >= 1
    seq_len: int = 128  # tokens per window (context in training), [8, max_seq_len]
    learning_rate: float = 3e-3  # peak rate, (0, 1]
    warmup_steps: int = 50  # linear warm-up, [0, steps]
    weight_decay: float = 0.1  # AdamW decoupled decay on matrices, >= 0
    grad_clip_norm: float = 1.0  # max gradient 2-norm, > 0
    eval_every: int = 200  # steps between validation evaluations, >= 1
    eval_tokens: int = 65536  # validation tokens per evaluation, >= seq_len
    seed: int = 0  # initialisation and data order
    threads: int = 1  # torch.set_num_threads, >= 1

    def __post_init__(self) -> None:
        checks = {
            "steps": self.steps >= 1,
            "batch_size": self.batch_size >= 1,
            "seq_len": self.seq_len >= 8,
            "learning_rate": 0 < self.learning_rate <= 1,
            "warmup_steps": 0 <= self.warmup_steps <= self.steps,
            "weight_decay": self.weight_decay >= 0,
            "grad_clip_norm": self.grad_clip_norm > 0,
            "eval_every": self.eval_every >= 1,
            "eval_tokens": self.eval_tokens >= self.seq_len,
            "threads": self.threads >= 1,
        }
        for name, ok in checks.items():
            if not ok:
                raise TrainError(f"{name}={getattr(self, name)!r} is out of bounds")


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Warm-up then cosine decay to 10% of the peak."""
    if step < cfg.warmup_steps:
        return cfg.learning_rate * (step + 1) / cfg.warmup_steps
    frac = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return cfg.learning_rate * (0.1 + 0.45 * (1 + math.cos(math.pi * min(frac, 1.0))))


def train(
    model_cfg: LMConfig,
    cfg: TrainConfig,
    train_stream: np.ndarray,
    val_stream: np.ndarray,
    progress: Callable[[int, dict[str, float]], None] | None = None,
) -> tuple[MoELM, dict[str, list]]:
    """A trained model and its history (step, loss parts, learning rate, validation ppl)."""
    if cfg.seq_len > model_cfg.max_seq_len:
        raise TrainError(f"seq_len={cfg.seq_len} exceeds max_seq_len={model_cfg.max_seq_len}")
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    model = MoELM(model_cfg)
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embed" not in n]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2 or "embed" in n]
    opt = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": cfg.weight_decay},
            {"params": no_decay, "weight_decay": 0},
        ],
        lr=cfg.learning_rate,
        betas=(0.9, 0.95),
    )
    history: dict[str, list] = {"step": [], "ce": [], "balance": [], "onehot": [], "lr": []}
    history.update({"val_step": [], "val_ppl": []})
    batches = train_batches(train_stream, cfg.seq_len, cfg.batch_size, cfg.seed)
    model.train()
    start = time.perf_counter()
    window: dict[str, list[float]] = {"ce": [], "balance": [], "onehot": []}
    for step in range(cfg.steps):
        for group in opt.param_groups:
            group["lr"] = lr_at(step, cfg)
        loss, parts = model.loss(next(batches))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip_norm)
        opt.step()
        for k in window:
            window[k].append(parts[k])
        last = step + 1 == cfg.steps
        if (step + 1) % 50 == 0 or last:  # log means over the last 50 steps
            history["step"].append(step + 1)
            history["lr"].append(lr_at(step, cfg))
            for k, vals in window.items():
                history[k].append(float(np.mean(vals)))
                vals.clear()
        if (step + 1) % cfg.eval_every == 0 or last:
            val = evaluate(model, val_stream, cfg.seq_len, max_tokens=cfg.eval_tokens)
            model.train()
            history["val_step"].append(step + 1)
            history["val_ppl"].append(val.ppl)
            info = {"ce": history["ce"][-1], "val_ppl": val.ppl, "s": time.perf_counter() - start}
            log.info("step %d/%d %s", step + 1, cfg.steps, info)
            if progress is not None:
                progress(step + 1, info)
    history["train_s"] = [time.perf_counter() - start]
    model.eval()
    return model, {**history, "config": [asdict(cfg)]}
