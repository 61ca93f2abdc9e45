"""Model files: saving and loading a trained detector with its configuration.

A model file is a ``torch.save`` dict readable with ``weights_only=True`` (no pickled code):
``format`` ("robomr-detector"), ``version`` (1), ``config`` (``config_to_dict``), ``state_dict``
and ``metadata`` (free-form, JSON-like: the training provenance). Loading rebuilds the network
from the stored config, checks the class names and loads the weights strictly, so a file from an
incompatible build fails with a message saying what differs instead of silently misbehaving.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from perception.config import (
    DEFAULT_MODEL_PATH,
    ConfigError,
    config_from_dict,
    config_to_dict,
    resolve_device,
)
from perception.errors import PerceptionError
from perception.model import Detector

MODEL_FORMAT = "robomr-detector"
MODEL_VERSION = 2  # 2: model frame (FrameConfig), direction-vector head


class ModelFileError(PerceptionError):
    """A model file is missing, unreadable, or incompatible with this build."""


def save_detector(
    model: Detector, path: str | Path, metadata: dict[str, Any] | None = None
) -> Path:
    """Writes ``model`` (weights on CPU) and its config to ``path``; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    torch.save(
        {
            "format": MODEL_FORMAT,
            "version": MODEL_VERSION,
            "config": config_to_dict(model.config),
            "state_dict": state,
            "metadata": metadata or {},
        },
        path,
    )
    return path


def read_model_file(path: str | Path) -> dict[str, Any]:
    """The checked contents of a model file (format and version verified).

    Raises:
        ModelFileError: no such file, not a torch file, or wrong format/version.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(
            f"no model file at {path}; train one with `robomr perception train "
            f"--data DIR --out {path}`"
        )
    try:
        with path.open("rb") as fh:
            head = fh.read(4)
    except OSError as err:
        raise ModelFileError(f"cannot read model file {path}: {err.strerror or err}") from None
    # torch.save writes a zip archive (legacy files: a pickle, protocol byte 0x80)
    if head[:4] != b"PK\x03\x04" and head[:1] != b"\x80":
        raise ModelFileError(
            f"{path}: not a model file (not a torch checkpoint; robomr model files are written "
            "by `robomr perception train`)"
        )
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a damaged archive or pickle
        first = (str(err).strip().splitlines() or [""])[0][:200]
        raise ModelFileError(
            f"{path}: damaged or foreign torch checkpoint ({type(err).__name__}: {first})"
        ) from err
    if not isinstance(data, dict) or data.get("format") != MODEL_FORMAT:
        raise ModelFileError(
            f"{path}: not a robomr detector model (format must be {MODEL_FORMAT!r})"
        )
    if data.get("version") != MODEL_VERSION:
        raise ModelFileError(
            f"{path}: model file version {data.get('version')!r}, this build "
            f"reads version {MODEL_VERSION}"
        )
    return data


def load_detector(path: str | Path = DEFAULT_MODEL_PATH, device: str = "auto") -> Detector:
    """The detector stored at ``path``, in eval mode on ``device`` ("auto", "cpu", "cuda[:N]").

    Raises:
        ModelFileError: missing/unreadable file, invalid stored config, or weights that do not
            fit the network built from that config.
        ConfigError: ``device`` is unknown or unavailable.
    """
    target = resolve_device(device)
    data = read_model_file(path)
    try:
        config = config_from_dict(data.get("config"))
    except ConfigError as err:
        raise ModelFileError(f"{path}: stored detector config is incompatible: {err}") from err
    model = Detector(config)
    state = data.get("state_dict")
    if not isinstance(state, dict):
        raise ModelFileError(f"{path}: no state_dict in the model file")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        first = str(err).strip().splitlines()[:4]
        raise ModelFileError(
            f"{path}: weights do not fit the stored config: " + " ".join(first)
        ) from err
    return model.to(target).eval()


def set_score_threshold(path: str | Path, threshold: float, record: dict[str, Any]) -> Path:
    """Rewrites the model file at ``path`` with ``postprocess.score_threshold = threshold`` and
    ``record`` (how it was chosen) in its metadata under ``score_threshold``.

    Raises:
        ModelFileError: missing or incompatible file.
        ConfigError: the threshold is out of [0, 1).
    """
    data = read_model_file(path)
    config = config_from_dict(data["config"])
    post = replace(config.postprocess, score_threshold=float(threshold))  # validates
    data["config"] = config_to_dict(replace(config, postprocess=post))
    data["metadata"] = {**(data.get("metadata") or {}), "score_threshold": record}
    torch.save(data, Path(path))
    return Path(path)
