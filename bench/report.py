"""A benchmark's result: tables, ratios and the machine and settings that produced them."""

from __future__ import annotations

import contextlib
import json
import os
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


def machine_info() -> dict[str, Any]:
    """CPU model, core count, memory and key library versions of this machine."""
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = None
    with contextlib.suppress(ValueError, OSError):
        mem_gib = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    info: dict[str, Any] = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": mem_gib,
        "python": platform.python_version(),
        "numpy": np.__version__,
    }
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
        info["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except ImportError:
        pass
    return info


@dataclass
class Table:
    """A printed table: column names and rows of values (numbers are formatted)."""

    title: str
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)

    def add(self, *values: Any) -> None:
        if len(values) != len(self.columns):
            raise ValueError(
                f"row has {len(values)} values, table {self.title!r} has "
                f"{len(self.columns)} columns"
            )
        self.rows.append(list(values))

    def render(self) -> str:
        cells = [[_fmt(v) for v in row] for row in self.rows]
        widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(self.columns)]
        line = "  ".join(c.ljust(w) for c, w in zip(self.columns, widths, strict=True))
        out = [self.title, line, "-" * len(line)]
        out += ["  ".join(v.rjust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
        return "\n".join(out)

    def to_json(self) -> dict[str, Any]:
        return {"title": self.title, "columns": self.columns, "rows": _jsonable(self.rows)}


@dataclass
class BenchReport:
    """Everything a benchmark measured, printable and JSON-serialisable."""

    name: str
    settings: dict[str, Any]
    tables: list[Table] = field(default_factory=list)
    ratios: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    machine: dict[str, Any] = field(default_factory=machine_info)
    # Named figures an issue asks for, written at the top level of the JSON as well.
    figures: dict[str, Any] = field(default_factory=dict)

    def render(self) -> str:
        parts = [
            f"== robomr bench {self.name} ==",
            "machine: " + ", ".join(f"{k}={v}" for k, v in self.machine.items()),
            "settings: " + ", ".join(f"{k}={v}" for k, v in self.settings.items()),
        ]
        parts += ["", *[t.render() + "\n" for t in self.tables]]
        if self.ratios:
            parts.append("ratios (measured side by side in this run):")
            parts += [f"  {k}: {_fmt(v)}" for k, v in self.ratios.items()]
        if self.figures:
            parts.append("figures:")
            parts += [f"  {k}: {_fmt(v)}" for k, v in self.figures.items()]
        parts += [f"note: {n}" for n in self.notes]
        return "\n".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "machine": self.machine,
            "settings": _jsonable(self.settings),
            "tables": [t.to_json() for t in self.tables],
            "ratios": _jsonable(self.ratios),
            "notes": self.notes,
            **_jsonable(self.figures),
        }

    def write_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=2) + "\n")


def _fmt(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if not np.isfinite(v):
            return str(v)
        if v != 0.0 and (abs(v) >= 1e5 or abs(v) < 1e-3):
            return f"{v:.3g}"
        return f"{v:.3f}" if abs(v) < 100 else f"{v:.1f}"
    text = str(value)
    if len(text) > _MAX_PRINTED:  # per-request arrays and timelines: the JSON has them whole
        return f"{text[:_MAX_PRINTED]} ... ({len(text):,} characters; whole in --json)"
    return text


_MAX_PRINTED = 400


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj


def percentile_ms(samples_s: list[float] | np.ndarray, q: float) -> float:
    """The q-th percentile of durations given in seconds, in milliseconds."""
    return float(np.percentile(np.asarray(samples_s, dtype=np.float64), q) * 1e3)
