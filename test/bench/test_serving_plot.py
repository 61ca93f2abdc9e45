"""The serving benchmark's picture is drawn from its JSON figures."""

from __future__ import annotations

import json
from pathlib import Path

from bench.serving_plot import main


def test_plot_draws_every_model_and_pattern_from_the_json(tmp_path: Path) -> None:
    series = {"0.5": 0.9, "1": 0.7, "2": 0.4}
    per_policy = {p: dict(series) for p in ("bucket", "static", "none")}
    figures = {
        key: {
            m: {pat: per_policy for pat in ("trace", "bursty")} for m in ("detector", "gs_render")
        }
        for key in ("slo_attainment", "goodput")
    }
    (tmp_path / "s.json").write_text(json.dumps(figures))
    assert main([str(tmp_path / "s.json"), str(tmp_path / "out.png")]) == 0
    assert (tmp_path / "out.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main([str(tmp_path / "s.json")]) == 2  # usage error, no traceback
