"""CPI prediction (C-Koordinator): gradient-boosted trees on the metrics, and the baselines.

Task: from the feature row of interval k (:mod:`offload.cluster.features`: the last interval's
metrics and the co-location of the next one) predict the replica's CPI over interval k+1, as
the inflation CPI / reference (the probe's uncontended CPI; CPI = inflation x reference), and
its latency inflation (mean latency / its quiet median).

Model: LightGBM regression (gradient-boosted trees, the paper's choice) of log inflation,
``num_threads=1``, a fixed seed. Baselines, trained and scored on the same rows:
- *last value*: inflation(k+1) = inflation(k) (what a reactive controller assumes);
- *linear regression*: least squares on the same features (NaN -> training median, plus the
  feature's missing indicator), on log inflation.

Accuracy, printed with every figure: **within-10%** = share of held-out predictions whose CPI is
within 10% of the measured CPI, |pred - measured| / measured <= 0.10; **MAPE** = mean of
|pred - measured| / measured. Held-out means whole runs (seeds) never seen in training.

The trained model ships as LightGBM's text format beside a JSON provenance file (command, seed,
data set hash, runs, machine, held-out accuracy); :meth:`CpiPredictor.load` reads both.

Raises:
    PredictorError: too few rows, an unreadable model, features that do not match.
"""

from __future__ import annotations

import hashlib
import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from offload.cluster.features import COLOC, FEATURES

DEFAULT_MODEL = Path(__file__).resolve().parents[2] / "models" / "cpi_predictor.txt"
ACCURACY_DEFINITION = (
    "within-10% = share of held-out predictions with |predicted CPI - measured CPI| / measured "
    "CPI <= 0.10; MAPE = mean |predicted - measured| / measured; held out = whole runs"
)
LGB_PARAMS = {
    "objective": "regression",
    "learning_rate": 0.05,
    "num_leaves": 15,
    "min_data_in_leaf": 10,
    "feature_fraction": 0.9,
    "bagging_fraction": 0.9,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "num_threads": 1,
    "verbose": -1,
}
ROUNDS = 300


SOLO_MIN_ROWS = 10


class PredictorError(ValueError):
    """See the module docstring."""


def fit_solo_curve(X: np.ndarray, y: np.ndarray) -> dict[str, float] | None:
    """The inflation a replica shows with no co-runner, as a function of its own CPU use.

    The probe shares its replica's cpus, so a busy replica inflates its own probe (in the
    quiet benchmark's collection 1.2x at 0.2 cores, about 2x at 0.5), which is not
    interference. Fitted on the rows whose co-location features are all zero (no best-effort
    co-runner on the node) as ``1 + a x + b x^2`` with ``a, b >= 0`` (non-negative least
    squares), ``x`` = own CPU use (cores) clipped to the range seen. None with fewer than
    ``SOLO_MIN_ROWS`` such rows.
    """
    from scipy.optimize import nnls

    coloc = X[:, [FEATURES.index(k) for k in COLOC]]
    x = X[:, FEATURES.index("cpu_used")]
    ok = np.all(coloc == 0, axis=1) & np.isfinite(x) & np.isfinite(y) & (y > 0)
    if ok.sum() < SOLO_MIN_ROWS:
        return None
    xs, ys = x[ok], y[ok]
    (a, b), _ = nnls(np.stack([xs, xs**2], axis=1), ys - 1.0)
    return {"a": float(a), "b": float(b), "cpu_max": float(xs.max()), "rows": int(ok.sum())}


def within(pred: np.ndarray, true: np.ndarray, tol: float = 0.10) -> float:
    """Share of predictions within ``tol`` (relative) of the truth."""
    return float(np.mean(np.abs(pred - true) / true <= tol)) if len(true) else math.nan


def mape(pred: np.ndarray, true: np.ndarray) -> float:
    return float(np.mean(np.abs(pred - true) / true)) if len(true) else math.nan


@dataclass
class LinearBaseline:
    """Least squares on standardised features with median imputation and missing indicators."""

    median: np.ndarray = field(default_factory=lambda: np.zeros(0))
    mean: np.ndarray = field(default_factory=lambda: np.zeros(0))
    scale: np.ndarray = field(default_factory=lambda: np.zeros(0))
    coef: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def _design(self, X: np.ndarray) -> np.ndarray:  # [N, F] -> [N, 2F + 1]
        miss = np.isnan(X)
        filled = np.where(miss, self.median, X)
        z = (filled - self.mean) / self.scale
        return np.hstack([z, miss.astype(float), np.ones((len(X), 1))])

    def fit(self, X: np.ndarray, y: np.ndarray) -> LinearBaseline:
        with warnings.catch_warnings():  # a feature this machine never has is all NaN: 0
            warnings.simplefilter("ignore", RuntimeWarning)
            self.median = np.nan_to_num(np.nanmedian(X, axis=0))
        filled = np.where(np.isnan(X), self.median, X)
        self.mean, self.scale = filled.mean(0), filled.std(0) + 1e-9
        A = self._design(X)
        self.coef = np.linalg.lstsq(A, y, rcond=None)[0]
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self._design(X) @ self.coef


class CpiPredictor:
    """A trained model of log inflation (CPI and latency); see the module docstring."""

    def __init__(
        self, booster: Any, provenance: dict[str, Any], latency_booster: Any | None = None
    ) -> None:
        self.booster, self.latency_booster = booster, latency_booster
        self.provenance = provenance

    def solo_inflation(self, cpu_used: float) -> float:
        """The inflation expected at this own CPU use without co-runners (:func:`fit_solo_curve`;
        1 for a model trained without such rows)."""
        c = self.provenance.get("solo_curve")
        if not c or not math.isfinite(cpu_used):
            return 1.0
        x = min(max(cpu_used, 0.0), c["cpu_max"])
        return 1.0 + c["a"] * x + c["b"] * x * x

    @classmethod
    def train(
        cls,
        X: np.ndarray,
        y_infl: np.ndarray,
        y_lat: np.ndarray | None = None,
        seed: int = 0,
        rounds: int = ROUNDS,
    ) -> CpiPredictor:
        """Fits the trees on rows ``X`` [N, len(FEATURES)] and inflations ``y_infl`` [N] > 0.

        Raises:
            PredictorError: fewer than 20 rows, or a shape mismatch.
        """
        import lightgbm as lgb

        if X.ndim != 2 or X.shape[1] != len(FEATURES) or len(X) != len(y_infl):
            raise PredictorError(f"X {X.shape} must be [N, {len(FEATURES)}] with N = len(y)")
        if len(X) < 20:
            raise PredictorError(f"{len(X)} rows are too few to train on (>= 20)")
        params = {**LGB_PARAMS, "seed": seed, "min_data_in_leaf": min(10, len(X) // 10)}

        def fit(y: np.ndarray) -> Any:
            ok = np.isfinite(y) & (y > 0)
            data = lgb.Dataset(
                X[ok], np.log(y[ok]), feature_name=list(FEATURES), params={"verbose": -1}
            )
            return lgb.train(params, data, num_boost_round=rounds)

        lat = fit(y_lat) if y_lat is not None and np.isfinite(y_lat).sum() >= 20 else None
        prov = {
            "features": list(FEATURES),
            "rounds": rounds,
            "seed": seed,
            "solo_curve": fit_solo_curve(X, y_infl),
        }
        return cls(fit(y_infl), prov, lat)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predicted CPI inflation [N] of rows [N, F]."""
        return np.exp(self.booster.predict(np.asarray(X, dtype=float), num_threads=1))

    def predict_latency(self, X: np.ndarray) -> np.ndarray:
        if self.latency_booster is None:
            return np.full(len(X), np.nan)
        return np.exp(self.latency_booster.predict(np.asarray(X, dtype=float), num_threads=1))

    def save(self, path: Path, provenance: dict[str, Any]) -> None:
        """Writes ``path`` (LightGBM text), ``path``.latency.txt and ``path`` with .json."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.booster.save_model(str(path))
        if self.latency_booster is not None:
            self.latency_booster.save_model(str(_latency_path(path)))
        else:  # an older model's latency file would be loaded with this model's provenance
            _latency_path(path).unlink(missing_ok=True)
        self.provenance = {
            **self.provenance,
            **provenance,
            "model_sha256": _sha256(path.read_bytes()),
        }
        path.with_suffix(".json").write_text(json.dumps(self.provenance, indent=2) + "\n")

    @classmethod
    def load(cls, path: Path = DEFAULT_MODEL) -> CpiPredictor:
        """Reads a saved model and checks its features against :data:`FEATURES`.

        Raises:
            PredictorError: missing files or features that differ.
        """
        import lightgbm as lgb

        path = Path(path)
        meta_path = path.with_suffix(".json")
        if not path.exists() or not meta_path.exists():
            raise PredictorError(
                f"no model at {path} (+ .json): train one with `robomr cluster collect --train`"
            )
        meta = json.loads(meta_path.read_text())
        if meta.get("features") != list(FEATURES):
            raise PredictorError(f"{path} was trained on other features; retrain it")
        booster = lgb.Booster(model_file=str(path))
        lat = _latency_path(path)
        lat_booster = lgb.Booster(model_file=str(lat)) if lat.exists() else None
        return cls(booster, meta, lat_booster)


def _latency_path(path: Path) -> Path:
    return path.with_name(path.stem + ".latency.txt")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def dataset_sha256(X: np.ndarray, y: np.ndarray) -> str:
    return _sha256(np.ascontiguousarray(X).tobytes() + np.ascontiguousarray(y).tobytes())


def evaluate(
    train: dict[str, np.ndarray], test: dict[str, np.ndarray], seed: int = 0, rounds: int = ROUNDS
) -> tuple[dict[str, dict[str, float]], CpiPredictor]:
    """Trains the trees and the linear baseline on ``train``, scores all three methods on
    ``test`` (dicts with ``X`` [N, F], ``y`` next inflation, ``last`` current inflation,
    ``lat`` next latency inflation). Returns {method: {within10, mape, n}} and the model."""
    model = CpiPredictor.train(train["X"], train["y"], train.get("lat"), seed, rounds)
    ok_tr = np.isfinite(train["y"]) & (train["y"] > 0)
    linear = LinearBaseline().fit(train["X"][ok_tr], np.log(train["y"][ok_tr]))
    y = test["y"]
    ok = np.isfinite(y) & (y > 0)
    last = test["last"]
    preds = {
        "gbt": model.predict(test["X"][ok]),
        "linear": np.exp(linear.predict(test["X"][ok])),
        "last_value": np.where(np.isfinite(last[ok]) & (last[ok] > 0), last[ok], 1.0),
    }
    scores = {
        m: {"within10": within(p, y[ok]), "mape": mape(p, y[ok]), "n": int(ok.sum())}
        for m, p in preds.items()
    }
    if "lat" in test and model.latency_booster is not None:
        lat = test["lat"]
        okl = np.isfinite(lat) & (lat > 0)
        p = model.predict_latency(test["X"][okl])
        scores["gbt_latency"] = {
            "within10": within(p, lat[okl]),
            "mape": mape(p, lat[okl]),
            "n": int(okl.sum()),
        }
    return scores, model
