"""How collected intervals become samples: labels from the bursts, intervals a mix change fell
into dropped, same-interval and next-interval pairing (the collection itself runs on real
processes in test_local.py)."""

from __future__ import annotations

import numpy as np
import pytest

from offload.cluster.collect import CollectError, to_arrays
from offload.cluster.features import FEATURES

LAST = list(FEATURES).index("last_inflation")


def _row(step: int, bursts: list[float], phase: int = 0, mixed: bool = False) -> dict:
    return {
        "run": 0,
        "replica": "r0",
        "step": step,
        "phase": phase,
        "mixed": mixed,
        "features": {"cpu_used": 0.1 * step, "last_inflation": -1.0},
        "burst_cpis": bursts,
        "cpi": float(np.mean(bursts)),
        "reference_cpi": 10.0,
        "inflation": float(np.mean(bursts)) / 10.0,
        "latency_mean_ms": 50.0 * (step + 1),
    }


ROWS = [
    _row(0, [10, 10, 40]),  # median 10 -> 1.0; mean 20 -> 2.0
    _row(1, [20, 20, 20]),  # 2.0
    _row(2, [30, 30, 90], mixed=True),  # a mix changed while it was measured: dropped
    _row(3, [40, 40, 40], phase=1),  # 4.0, a new phase
    _row(4, [50, 50, 50], phase=1),  # 5.0
]


@pytest.mark.parametrize(
    ("horizon", "how", "y", "last", "steps"),
    [
        # same interval: features and label of k, history k-1 (the pair 2/3 is broken by the
        # dropped interval, 0 has no history)
        (0, "median", [2.0, 5.0], [1.0, 4.0], [1, 4]),
        (0, "mean", [2.0, 5.0], [2.0, 4.0], [1, 4]),
        # next interval: features and history of k, label k+1 of the same phase
        (1, "median", [2.0, 5.0], [1.0, 4.0], [0, 3]),
    ],
)
def test_samples_pair_intervals_of_one_phase_and_drop_mixed_ones(
    horizon: int, how: str, y: list, last: list, steps: list
) -> None:
    d = to_arrays(ROWS, 50.0, horizon, how)
    assert d["y"].tolist() == pytest.approx(y)
    assert d["last"].tolist() == pytest.approx(last)
    # the history feature is the baseline's value (not the agent's stale one)
    assert d["X"][:, LAST].tolist() == pytest.approx(last)
    assert d["X"][:, 0].tolist() == pytest.approx([0.1 * s for s in steps])  # cpu_used of k
    if horizon == 0:  # the features hold the interval's own P50: no latency label
        assert np.isnan(d["lat"]).all()
    else:  # next interval's mean latency over the quiet 50 ms
        assert d["lat"].tolist() == pytest.approx([(s + 2) * 1.0 for s in steps])


def test_rows_of_an_older_collection_use_the_agents_inflation() -> None:
    old = [{k: v for k, v in r.items() if k not in ("burst_cpis", "phase", "mixed")} for r in ROWS]
    d = to_arrays(old, 50.0, 0)  # every consecutive pair of the run, labels from "inflation"
    assert d["y"].tolist() == pytest.approx([2.0, 5.0, 4.0, 5.0])
    assert d["last"].tolist() == pytest.approx([2.0, 2.0, 5.0, 4.0])


@pytest.mark.parametrize(("horizon", "how"), [(2, "median"), (0, "max")])
def test_a_bad_horizon_or_aggregate_is_a_clear_error(horizon: int, how: str) -> None:
    with pytest.raises(CollectError, match=r"horizon|aggregate"):
        to_arrays(ROWS, 50.0, horizon, how)
