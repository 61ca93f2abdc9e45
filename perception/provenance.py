"""Provenance of a trained model: the JSON file written beside the weights.

``models/detector.pt`` gets ``models/detector.json`` holding how it was made (command, seed,
epochs, every setting, the dataset's meta.json and size, per-epoch losses and times, final
metrics) plus the SHA-256 of the weights file and the library versions. Nothing is taken from git:
the file describes the run, not the checkout.
"""

from __future__ import annotations

import hashlib
import json
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import spconv
import torch


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def provenance_path(model_path: str | Path) -> Path:
    """``<dir>/<stem>.json`` for ``<dir>/<stem>.pt``."""
    return Path(model_path).with_suffix(".json")


def write_provenance(model_path: str | Path, record: dict[str, Any]) -> Path:
    """Writes ``record`` plus file hash, versions and time beside ``model_path``; returns the
    JSON path."""
    model_path = Path(model_path)
    full = {
        "model_file": model_path.name,
        "sha256": _sha256(model_path),
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "spconv": spconv.__version__,
            "numpy": np.__version__,
        },
        **record,
    }
    path = provenance_path(model_path)
    path.write_text(json.dumps(full, indent=2, default=_jsonable) + "\n")
    return path


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def update_provenance(model_path: str | Path, updates: dict[str, Any]) -> Path:
    """Adds ``updates`` to the provenance JSON beside ``model_path`` and refreshes its hash
    (after the model file was rewritten); returns the JSON path."""
    model_path = Path(model_path)
    path = provenance_path(model_path)
    record = json.loads(path.read_text()) if path.is_file() else {"model_file": model_path.name}
    record.update(updates)
    record["sha256"] = _sha256(model_path)
    path.write_text(json.dumps(record, indent=2, default=_jsonable) + "\n")
    return path
