"""A local Hugging Face checkpoint folder behind the engine's ``LMBackend`` protocol.

The folder is what ``save_pretrained`` writes (config.json, weights, tokenizer files). Only
architectures that ``transformers`` implements natively are accepted (``SUPPORTED``; never
``trust_remote_code``), and nothing is downloaded (``local_files_only``). Each sequence keeps
its own ``DynamicCache``; prefill and decode run sequence by sequence (correct for any of these
architectures without padding-aware position handling; slower than ``MoELM``'s batched decode).
United-expert brownout is implemented for ``MoELM`` only: ``supports_brownout`` is False here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

SUPPORTED = (
    "LlamaForCausalLM",
    "MistralForCausalLM",
    "MixtralForCausalLM",
    "Qwen2ForCausalLM",
    "Qwen2MoeForCausalLM",
    "Qwen3ForCausalLM",
    "Qwen3MoeForCausalLM",
)


class HFCheckpointError(ValueError):
    """The folder is not a loadable checkpoint of a supported architecture."""


def _architecture(folder: Path) -> str:
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise HFCheckpointError(f"{folder} has no config.json (not a Hugging Face checkpoint)")
    try:
        archs = json.loads(config_path.read_text()).get("architectures") or []
    except (json.JSONDecodeError, OSError, AttributeError) as err:
        raise HFCheckpointError(f"cannot read {config_path}: {err}") from err
    supported = [a for a in archs if a in SUPPORTED]
    if not supported:
        raise HFCheckpointError(
            f"{folder}: architecture {archs or 'unknown'} is not supported; expected one of "
            + ", ".join(SUPPORTED)
        )
    return supported[0]


class HFBackend:
    """A ``transformers`` causal LM and its tokenizer from a local folder."""

    supports_brownout = False

    def __init__(self, folder: str | Path, name: str | None = None) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        folder = Path(folder)
        self.architecture = _architecture(folder)
        try:
            self.model = AutoModelForCausalLM.from_pretrained(
                folder, local_files_only=True, trust_remote_code=False, dtype=torch.float32
            ).eval()
            self.tokenizer = AutoTokenizer.from_pretrained(
                folder, local_files_only=True, trust_remote_code=False
            )
        except (OSError, ValueError, KeyError) as err:
            raise HFCheckpointError(f"cannot load {folder}: {err}") from err
        cfg = self.model.config
        self.name = name or folder.name
        self.max_seq_len = int(cfg.max_position_embeddings)
        self.eos_id = self.tokenizer.eos_token_id
        head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        kv_heads = getattr(cfg, "num_key_value_heads", None) or cfg.num_attention_heads
        self._token_bytes = 2 * cfg.num_hidden_layers * kv_heads * head_dim * 4  # K, V in fp32

    def kv_bytes_for(self, n_tokens: int) -> int:
        return self._token_bytes * n_tokens

    @torch.no_grad()
    def _run(self, ids: Tensor, cache: Any) -> Tensor:
        out = self.model(input_ids=ids, cache=cache, use_cache=True)
        return out.logits[0, -1]

    def prefill(self, prompts: list[list[int]]) -> tuple[Tensor, list[Any]]:
        from transformers import DynamicCache

        caches = [DynamicCache(config=self.model.config) for _ in prompts]
        logits = [self._run(torch.tensor([p]), c) for p, c in zip(prompts, caches, strict=True)]
        return torch.stack(logits), caches

    def decode(self, tokens: Tensor, state: list[Any]) -> Tensor:
        return torch.stack([self._run(t.view(1, 1), c) for t, c in zip(tokens, state, strict=True)])

    def select(self, state: list[Any], rows: list[int]) -> list[Any]:
        return [state[i] for i in rows]

    def concat(self, states: list[list[Any]]) -> list[Any]:
        return [c for s in states for c in s]

    def set_brownout(self, tau: float) -> None:
        if tau != 1.0:
            raise HFCheckpointError("united-expert brownout is not available for HF checkpoints")

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def decode_text(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids)
