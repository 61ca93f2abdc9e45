"""The CPI predictor's learning code on rows with a known answer (the collected pipeline is
tested on real processes in test_local.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from offload.cluster.features import FEATURES
from offload.cluster.predictor import (
    CpiPredictor,
    LinearBaseline,
    PredictorError,
    evaluate,
    mape,
    within,
)

F = list(FEATURES)


def _rows(n: int, seed: int) -> dict[str, np.ndarray]:
    """Inflation that time-sharing would give: 1 + a same-core hog's duty (x how busy the
    replica is), a cache co-runner adds 10%; last_inflation is that of a random earlier mix."""
    rng = np.random.default_rng(seed)
    X = np.full((n, len(F)), np.nan)
    duty = rng.choice([0.0, 0.3, 0.6, 1.0], n)
    cache = rng.choice([0.0, 1.0], n)
    busy = rng.uniform(0.2, 1.0, n)
    X[:, F.index("same_cpu_duty")] = duty
    X[:, F.index("same_cache_duty")] = cache
    X[:, F.index("cpu_used")] = busy
    y = (1 + duty * busy) * (1 + 0.1 * cache) * rng.normal(1.0, 0.01, n)
    last = np.roll(y, 1)
    X[:, F.index("last_inflation")] = last
    return {"X": X, "y": y, "last": last, "lat": y * 1.2}


@pytest.mark.parametrize(
    ("pred", "true", "w10", "mape_"),
    [([1.0, 2.0], [1.0, 2.0], 1.0, 0.0), ([1.05, 3.0], [1.0, 2.0], 0.5, 0.275)],
)
def test_accuracy_measures_follow_their_definitions(pred, true, w10, mape_) -> None:
    p, t = np.array(pred), np.array(true)
    assert within(p, t) == w10 and mape(p, t) == pytest.approx(mape_)


def test_trees_learn_a_nonlinear_interaction_the_baselines_miss() -> None:
    """Held-out rows of the same law: the trees are within 10% nearly always (noise is 1%);
    last value cannot be (mixes change), and a linear fit misses the duty x busy product."""
    scores, _ = evaluate(_rows(600, 0), _rows(200, 1), rounds=200)
    assert scores["gbt"]["within10"] >= 0.9
    assert scores["gbt"]["within10"] > scores["last_value"]["within10"] + 0.2
    assert scores["gbt"]["mape"] < scores["linear"]["mape"]


def test_a_model_round_trips_with_its_provenance(tmp_path: Path) -> None:
    data = _rows(200, 2)
    model = CpiPredictor.train(data["X"], data["y"], data["lat"], rounds=30)
    path = tmp_path / "cpi.txt"
    model.save(path, {"command": "test", "seed": 0})
    again = CpiPredictor.load(path)
    assert np.allclose(again.predict(data["X"]), model.predict(data["X"]))
    assert np.allclose(again.predict_latency(data["X"]), model.predict_latency(data["X"]))
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["features"] == F and meta["command"] == "test" and len(meta["model_sha256"]) == 64


def test_a_model_with_other_features_or_none_at_all_is_refused(tmp_path: Path) -> None:
    data = _rows(100, 3)
    path = tmp_path / "m.txt"
    CpiPredictor.train(data["X"], data["y"], rounds=5).save(path, {})
    meta = json.loads(path.with_suffix(".json").read_text())
    meta["features"] = ["cpu_used"]
    path.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(PredictorError, match="other features"):
        CpiPredictor.load(path)
    with pytest.raises(PredictorError, match="no model"):
        CpiPredictor.load(tmp_path / "missing.txt")
    with pytest.raises(PredictorError, match="too few"):
        CpiPredictor.train(data["X"][:5], data["y"][:5])


def test_the_linear_baseline_imputes_missing_values() -> None:
    X = np.array([[1.0, np.nan], [2.0, 1.0], [3.0, np.nan], [4.0, 3.0]])
    y = np.array([2.0, 4.0, 6.0, 8.0])
    lin = LinearBaseline().fit(X, y)
    assert np.allclose(lin.predict(X), y, atol=1e-6)  # y = 2 x0 exactly


def test_the_solo_curve_is_fitted_on_rows_without_corunners_only() -> None:
    from offload.cluster.features import COLOC
    from offload.cluster.predictor import fit_solo_curve

    rng = np.random.default_rng(3)
    n = 200
    X = np.zeros((n, len(F)))
    x = rng.uniform(0.05, 0.8, n)
    X[:, F.index("cpu_used")] = x
    y = 1 + 2.0 * x**2
    hog = np.arange(n) % 2 == 1  # every other row has a same-core hog that triples it
    X[hog, F.index("same_cpu_duty")] = 1.0
    y = np.where(hog, 3 * y, y)
    curve = fit_solo_curve(X, y)
    assert curve is not None and curve["rows"] == n // 2
    assert curve["a"] == pytest.approx(0.0, abs=1e-6) and curve["b"] == pytest.approx(2.0)
    model = CpiPredictor.train(X, y)
    assert model.solo_inflation(0.5) == pytest.approx(1.5)
    assert model.solo_inflation(5.0) == pytest.approx(1 + 2 * x[~hog].max() ** 2)  # clipped
    # fewer than SOLO_MIN_ROWS clean rows: no curve, and a model without one says 1
    X[:, F.index(COLOC[0])] = 1.0
    assert fit_solo_curve(X, y) is None
    assert CpiPredictor.train(X, y).solo_inflation(0.5) == 1.0
