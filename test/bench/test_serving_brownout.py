"""The serving benchmark's brownout statistics and calibration cache."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest

from bench.serving_brownout import reduction_ci
from bench.serving_models import cached_fits
from bench.serving_workload import ServiceFit


@pytest.mark.parametrize(
    ("off", "on", "point"),
    [
        ([0.5, 0.4, 0.6], [0.1, 0.08, 0.12], 0.8),  # every seed cut by 80%
        ([0.5, 0.5], [0.5, 0.5], 0.0),  # no change
        ([0.2, 0.2], [0.3, 0.3], -0.5),  # brownout made it worse: negative, not clipped
    ],
)
def test_reduction_is_one_minus_the_ratio_of_means_with_a_ci_around_it(off, on, point) -> None:
    red, lo, hi = reduction_ci(np.asarray(off), np.asarray(on))
    assert red == pytest.approx(point)
    assert lo <= red + 1e-12 and red <= hi + 1e-12


def test_calibration_cache_measures_once_then_reuses(tmp_path: Path) -> None:
    args = argparse.Namespace(calib_cache=tmp_path / "calib.json")
    fit = ServiceFit(0.1, 1e-6, 0.05, 0.1, 0.9, 12)
    calls = []

    def measure() -> dict[str, ServiceFit]:
        calls.append(1)
        return {"full": fit, "brownout": fit}

    for _ in range(2):
        assert cached_fits(args, "detector", ["full", "brownout"], measure)["brownout"] == fit
    assert len(calls) == 1
    # a variant missing from the file: every variant is timed again, together
    cached_fits(args, "detector", ["full", "brownout@16"], measure)
    assert len(calls) == 2
    args.calib_cache.write_text("not json")
    with pytest.raises(ValueError, match="not a calibration file"):
        cached_fits(args, "detector", ["full"], measure)


def _row(law: str, reduction: float, cost: float, cheap: float = 0.5) -> tuple:
    return ({"law": law, "reduction": reduction, "accuracy_cost": cost, "cheap_share": cheap}, 0, 0)


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        # the slack setting of least accuracy cost among those meeting the target
        ([_row("slack", 0.9, 0.4), _row("slack", 0.85, 0.3), _row("slack", 0.5, 0.1)], 1),
        # none meets it: the largest cut of the slack law, not the paper's law's
        ([_row("paper", 0.7, 0.2), _row("slack", 0.6, 0.3), _row("slack", 0.4, 0.1)], 1),
        # no slack setting swept: the largest cut of what was
        ([_row("paper", 0.2, 0.1), _row("paper", 0.3, 0.2)], 1),
    ],
)
def test_headline_is_the_cheapest_setting_meeting_the_target(rows, expected) -> None:
    from bench.serving_brownout import _headline

    assert _headline(rows, 0.8) is rows[expected]


def test_slack_tau_is_drawn_over_the_period_it_describes() -> None:
    from bench.serving_brownout import _tau_steps

    steps = [(0.0, 1.0), (5.0, 0.2), (10.0, 1.0)]
    assert _tau_steps(steps, {"law": "paper", "period_s": 5.0}) == [[0, 1], [5, 0.2], [10, 1]]
    assert _tau_steps(steps, {"law": "slack", "period_s": 5.0}) == [[0, 1], [0, 0.2], [5, 1]]


@pytest.mark.parametrize(
    ("token", "level"), [("2", (2, 1.0)), ("2:0.25", (2, 0.25)), (" 1:0.5 ", (1, 0.5))]
)
def test_renderer_levels_parse(token: str, level: tuple) -> None:
    from bench.serving_models import render_level

    assert render_level(token) == level


def test_malformed_renderer_level_is_a_clear_error() -> None:
    from bench.serving_models import render_level

    with pytest.raises(ValueError, match="S or S:K"):
        render_level("half")


def test_timeline_plot_is_drawn_from_the_json_figures(tmp_path: Path) -> None:
    import json

    from bench.serving_plot import main

    edges = [float(t) for t in range(11)]
    run = {"violations_hz": [0.0] * 10, "cheap_hz": [1.0] * 10, "violations": 0.0}
    timeline = {
        "model": "detector",
        "slo_s": 0.5,
        "edges_s": edges,
        "arrivals_hz": [2.0] * 10,
        "runs": {
            "brownout off": {**run, "tau": [[0.0, 1.0]]},
            "slack law (x)": {**run, "tau": [[0.0, 1.0], [5.0, 0.2]]},
        },
    }
    source = tmp_path / "serving.json"
    source.write_text(json.dumps({"goodput": {}, "brownout_timeline": timeline}))
    out = tmp_path / "timeline.png"
    assert main([str(source), str(tmp_path / "unused.png"), str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (tmp_path / "unused.png").exists()  # no policy sweep in the file: not drawn
