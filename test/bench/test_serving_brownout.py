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
