"""Saving and loading the language model: safetensors weights plus a provenance JSON beside them.

``<dir>/<name>.safetensors`` holds the weights (float16 by default: half the size; the stored
figures are measured on the stored weights) and, in its metadata, the model config as JSON.
``<dir>/<name>.json`` holds how the model was made (command, seeds, corpus SHA-256, recipe,
losses, validation and test perplexity), the SHA-256 of the weights file and library versions.
``<dir>/<name>.united.safetensors`` (optional) holds distilled united experts for brownout
(``offload.models.lm.distill``) with the SHA-256 of the model file they were fitted to;
``load_model`` loads them when that matches (a stale file is skipped with a warning: the model
then serves the aligned merge) and ``<dir>/<name>.united.json`` records how they were made.
Nothing is pickled.
"""

from __future__ import annotations

import hashlib
import json
import logging
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from offload.models.lm.config import LMConfig, LMConfigError
from offload.models.lm.model import MoELM
from offload.models.lm.united import BrownoutError

log = logging.getLogger(__name__)
_UNITED_FORMAT = "robomr-united-experts-v1"


class CheckpointError(ValueError):
    """A weights file is missing, unreadable or does not match its config."""


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def round_weights(model: MoELM, dtype: torch.dtype = torch.float16) -> None:
    """Rounds the parameters to ``dtype`` and back, in place (what saving at dtype keeps)."""
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.to(dtype).to(p.dtype))


def save_model(model: MoELM, path: str | Path, dtype: torch.dtype = torch.float16) -> Path:
    """Writes the weights (parameters at ``dtype``, buffers as float32) and config."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    params = {name for name, _ in model.named_parameters()}
    tensors = {
        name: t.detach().to(dtype if name in params else torch.float32).contiguous()
        for name, t in model.state_dict().items()
    }
    save_file(tensors, str(path), metadata={"config": json.dumps(model.cfg.to_dict())})
    return path


def _read_safetensors(path: Path) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    """A safetensors file's metadata and tensors."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as fh:
        meta = fh.metadata() or {}
    return meta, load_file(str(path))


def load_model(path: str | Path) -> MoELM:
    """The model in eval mode, float32.

    Raises:
        CheckpointError: the file is missing or unreadable, or its tensors do not fit its config.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"model file {path} not found")
    try:
        meta, tensors = _read_safetensors(path)
        cfg = LMConfig.from_dict(json.loads(meta["config"]))
    except (SafetensorError, OSError, KeyError, json.JSONDecodeError, LMConfigError) as err:
        raise CheckpointError(f"cannot read model {path}: {err}") from err
    model = MoELM(cfg)
    state = {
        k: v.to(model.state_dict()[k].dtype) for k, v in tensors.items() if k in model.state_dict()
    }
    missing, _ = model.load_state_dict(state, strict=False)
    if missing or len(state) != len(tensors):
        raise CheckpointError(f"model {path} does not match its config (missing {missing})")
    united = united_path(path)
    if united.is_file():
        try:
            model.set_distilled(load_united(united, sha256_file(path)))
        except (CheckpointError, BrownoutError) as err:  # defined fallback: the aligned merge
            log.warning("%s; serving brownout with the aligned merge", err)
    return model.eval()


def united_path(model_path: str | Path) -> Path:
    """Where the distilled united experts of ``model_path`` live."""
    model_path = Path(model_path)
    return model_path.with_name(f"{model_path.stem}.united.safetensors")


def save_united(
    experts: dict[int, list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]],
    path: str | Path,
    model_sha256: str,
    dtype: torch.dtype = torch.float16,
) -> Path:
    """Writes united experts per merged count (``m{m}.layer{l}.{gate,up,down}``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {
        f"m{m}.layer{layer}.{part}": t.detach().to(dtype).contiguous()
        for m, layers in experts.items()
        for layer, united in enumerate(layers)
        for part, t in zip(("gate", "up", "down"), united, strict=True)
    }
    meta = {"format": _UNITED_FORMAT, "model_sha256": model_sha256}
    save_file(tensors, str(path), metadata=meta)
    return path


def load_united(
    path: str | Path, model_sha256: str | None = None
) -> dict[int, list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]]:
    """United experts per merged count, float32.

    Raises:
        CheckpointError: unreadable, another format, or fitted to another model file than
            ``model_sha256`` (when given).
    """
    path = Path(path)
    try:
        meta, tensors = _read_safetensors(path)
    except (SafetensorError, OSError) as err:
        raise CheckpointError(f"cannot read united experts {path}: {err}") from err
    if meta.get("format") != _UNITED_FORMAT:
        raise CheckpointError(f"{path} is not a united-experts file ({meta.get('format')!r})")
    if model_sha256 is not None and meta.get("model_sha256") != model_sha256:
        raise CheckpointError(
            f"united experts {path} were fitted to another model file "
            f"(sha256 {str(meta.get('model_sha256'))[:12]}..., this one {model_sha256[:12]}...)"
        )
    parts: dict[int, dict[int, dict[str, torch.Tensor]]] = {}
    for name, t in tensors.items():
        try:
            m_part, layer_part, part = name.split(".")
            m, layer = int(m_part.removeprefix("m")), int(layer_part.removeprefix("layer"))
        except ValueError as err:
            raise CheckpointError(f"unexpected tensor {name!r} in {path}") from err
        parts.setdefault(m, {}).setdefault(layer, {})[part] = t.float()
    try:
        return {
            m: [(ls[k]["gate"], ls[k]["up"], ls[k]["down"]) for k in range(len(ls))]
            for m, ls in sorted(parts.items())
        }
    except KeyError as err:
        raise CheckpointError(f"{path} lacks a part or a layer ({err})") from err


def write_provenance(model_path: str | Path, record: dict[str, Any]) -> Path:
    """``record`` plus the weights' SHA-256, size, time and versions, as ``<stem>.json``."""
    model_path = Path(model_path)
    full = {
        "model_file": model_path.name,
        "sha256": sha256_file(model_path),
        "bytes": model_path.stat().st_size,
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "numpy": np.__version__,
        },
        **record,
    }
    out = model_path.with_suffix(".json")
    out.write_text(json.dumps(full, indent=2) + "\n")
    return out
