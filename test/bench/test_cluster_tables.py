"""The cluster benchmark's bookkeeping: BE throughput kept and the CPI label's repeatability."""

from __future__ import annotations

import math

import pytest

from bench.cluster_latency import VariantRun, be_kept
from offload.cluster.collect import label_repeatability


def _run(variant: str, units: dict[tuple[str, str], int], repeat: int = 0) -> VariantRun:
    return VariantRun(variant, repeat, be_units=dict(units))


def test_be_kept_is_the_mean_ratio_per_phase_and_corunner():
    off = _run("off", {("p1", "hog"): 100, ("p2", "hog"): 200, ("p2", "cache"): 50})
    full = _run("full", {("p1", "hog"): 50, ("p2", "hog"): 200, ("p2", "cache"): 0})
    runs = [off, full]
    assert be_kept(runs, "full") == pytest.approx((0.5 + 1.0 + 0.0) / 3)
    assert be_kept(runs, "full", "p1") == pytest.approx(0.5)
    assert be_kept(runs, "full", "p2") == pytest.approx(0.5)
    assert math.isnan(be_kept(runs, "suppress"))


def test_be_kept_pairs_passes_and_skips_what_did_no_work_under_off():
    runs = [
        _run("off", {("p", "a"): 10}, 0),
        _run("off", {("p", "a"): 0}, 1),
        _run("full", {("p", "a"): 5}, 0),
        _run("full", {("p", "a"): 7}, 1),  # no reference under off in pass 1
    ]
    assert be_kept(runs, "full") == pytest.approx(0.5)


def _row(step: int, bursts: list[float], phase: int = 0, mixed: bool = False) -> dict:
    return {
        "run": 0,
        "phase": phase,
        "replica": "replica-0",
        "step": step,
        "mixed": mixed,
        "burst_cpis": bursts,
    }


def test_label_repeatability_is_one_for_identical_halves_and_low_for_split_ones():
    steady = [_row(s, [10.0] * 10) for s in range(4)]
    assert label_repeatability(steady) == {"within": 1.0, "n": 4, "bursts": 10.0}
    # alternate bursts fast and slow: the two halves disagree by 2x in every label
    split = [_row(s, [10.0, 20.0] * 5) for s in range(4)]
    assert label_repeatability(split)["within"] == 0.0
    # windows of two intervals pool 20 bursts; a mixed interval breaks a window
    rows = [_row(0, [10.0] * 10), _row(1, [10.0] * 10), _row(2, [10.0] * 10, mixed=True)]
    assert label_repeatability(rows, window=2) == {"within": 1.0, "n": 1, "bursts": 20.0}
    assert label_repeatability([], window=2)["n"] == 0


def test_benchmark_variants_name_their_settings_and_bad_ones_are_refused():
    from bench.cluster_latency import variant_config
    from offload.cluster.mitigation import MitigationConfig, MitigationError

    config, measured = variant_config("full")
    assert config == MitigationConfig("full") and not measured
    config, measured = variant_config("full-measured")
    assert config.variant == "full" and measured
    assert variant_config("full:0.35")[0].full_relax_frac == pytest.approx(0.35)
    assert variant_config("full", 0.25)[0].full_relax_frac == pytest.approx(0.25)
    assert variant_config("full:0", 0.25)[0].full_relax_frac == 0.0  # its own raise wins
    for bad in ("fulll", "full:x", "full:0.5"):
        with pytest.raises(MitigationError):
            variant_config(bad)
