"""Arrival-rate forecasters for the predictive autoscaler: Holt-Winters and an LSTM.

Both see only the past: ``fit(history, horizon)`` on the rates observed so far (one value per
bin), ``predict(model, history)`` the rate ``horizon`` bins after the last one.

- **Holt-Winters** (additive, damped trend; Gardner 1985): level l, trend b, seasonal s of
  period m (m = 0: Holt's linear method)::

      l_t = a (y_t - s_{t-m}) + (1 - a)(l_{t-1} + phi b_{t-1})
      b_t = b' (l_t - l_{t-1}) + (1 - b') phi b_{t-1}
      s_t = g (y_t - l_t) + (1 - g) s_{t-m}
      y_{t+h} = l_t + (phi + ... + phi^h) b_t + s_{t+h-m}

  a, b', g are chosen on a grid by the smallest mean absolute h-step-ahead error over the
  history (the error the policy pays), phi = 0.98.
- **LSTM** (SealOS+, arXiv 2505.23258: LSTM load prediction): one LSTM layer (``hidden`` units)
  over the last ``window`` rates divided by the history's mean, a linear head giving the rate h
  bins after the window (direct multi-step forecasting); trained with Adam on every window of
  the history whose target is already observed (the most recent ``max_windows``); retrained
  from the previous weights (``refit_epochs`` steps) when the policy asks (every ``refit_every``
  bins). torch, one thread, seeded.

Fits are memoised on (history, horizon, settings): every knob setting of a sweep sees the same
arrivals, so it gets the same forecasts without refitting.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np

from offload.cluster.autoscaling.interface import AutoscalingError


@dataclass(frozen=True)
class HoltWintersConfig:
    """Attributes:
    season_bins: seasonal period in bins (0: no season).
    phi: trend damping in (0, 1].
    alphas, betas, gammas: the grid of smoothing factors.
    """

    season_bins: int = 0
    phi: float = 0.98
    alphas: tuple[float, ...] = (0.1, 0.3, 0.5, 0.8)
    betas: tuple[float, ...] = (0.01, 0.05, 0.2)
    gammas: tuple[float, ...] = (0.05, 0.2)

    def __post_init__(self) -> None:
        if self.season_bins < 0 or not 0 < self.phi <= 1:
            raise AutoscalingError("season_bins must be >= 0 and phi in (0, 1]")


@dataclass(frozen=True)
class HoltWintersModel:
    alpha: float
    beta: float
    gamma: float
    phi: float
    season_bins: int
    horizon: int


def _hw_pass(y: np.ndarray, m: HoltWintersModel) -> tuple[float, float, np.ndarray, np.ndarray]:
    """Runs the recursions over ``y``: (level, trend, seasonals, h-step forecasts made at each
    t for t + h, NaN before they exist)."""
    a, b_, g, phi, s_len, h = m.alpha, m.beta, m.gamma, m.phi, m.season_bins, m.horizon
    level, trend = float(y[0]), 0.0
    season = np.zeros(max(s_len, 1))
    if s_len and len(y) >= 2 * s_len:
        season[:] = y[:s_len] - y[:s_len].mean()
        level = float(y[:s_len].mean())
    damp = sum(phi**k for k in range(1, h + 1))
    forecasts = np.full(len(y), np.nan)
    for t in range(1, len(y)):
        s_old = season[t % s_len] if s_len else 0.0
        prev = level
        level = a * (y[t] - s_old) + (1 - a) * (level + phi * trend)
        trend = b_ * (level - prev) + (1 - b_) * phi * trend
        if s_len:
            season[t % s_len] = g * (y[t] - level) + (1 - g) * s_old
        if t + h < len(y):
            s_next = season[(t + h) % s_len] if s_len else 0.0
            forecasts[t + h] = level + damp * trend + s_next
    return level, trend, season, forecasts


@functools.lru_cache(maxsize=4096)
def _fit_hw(history: tuple[float, ...], horizon: int, cfg: HoltWintersConfig) -> HoltWintersModel:
    y = np.asarray(history)
    gammas = cfg.gammas if cfg.season_bins and len(y) >= 2 * cfg.season_bins else (0.0,)
    best: tuple[float, HoltWintersModel] | None = None
    for a, b, g in itertools.product(cfg.alphas, cfg.betas, gammas):
        m = HoltWintersModel(a, b, g, cfg.phi, cfg.season_bins if g else 0, horizon)
        f = _hw_pass(y, m)[3]
        ok = ~np.isnan(f)
        err = float(np.mean(np.abs(f[ok] - y[ok]))) if ok.any() else 0.0
        if best is None or err < best[0]:
            best = (err, m)
    return best[1]  # type: ignore[index]


class HoltWinters:
    """Holt-Winters forecaster (see the module docstring)."""

    name = "holt-winters"

    def __init__(self, config: HoltWintersConfig | None = None) -> None:
        self.config = config or HoltWintersConfig()

    def fit(self, history: np.ndarray, horizon: int, previous: Any = None) -> HoltWintersModel:
        return _fit_hw(tuple(np.round(history, 9)), horizon, self.config)

    def predict(self, model: HoltWintersModel, history: np.ndarray) -> float:
        y = np.asarray(history, float)
        level, trend, season, _ = _hw_pass(y, model)
        damp = sum(model.phi**k for k in range(1, model.horizon + 1))
        s = season[(len(y) - 1 + model.horizon) % model.season_bins] if model.season_bins else 0.0
        return max(0.0, level + damp * trend + s)


@dataclass(frozen=True)
class LstmConfig:
    """Attributes:
    window: input length (bins).
    hidden: LSTM units.
    epochs: Adam steps of the first fit (full batch).
    refit_epochs: Adam steps of a refit from the previous weights.
    max_windows: train on the most recent this many windows (bounds a fit's cost).
    lr: learning rate.
    seed: weight initialisation and shuffling.
    """

    window: int = 24
    hidden: int = 16
    epochs: int = 120
    refit_epochs: int = 25
    max_windows: int = 128
    lr: float = 2e-2
    seed: int = 0

    def __post_init__(self) -> None:
        if self.window < 2 or self.hidden < 1 or min(self.epochs, self.refit_epochs) < 1:
            raise AutoscalingError("LSTM needs window >= 2, hidden >= 1, epochs >= 1")
        if self.max_windows < 4 or not self.lr > 0:
            raise AutoscalingError("LSTM needs max_windows >= 4 and lr > 0")


def _lstm_net(cfg: LstmConfig) -> Any:
    import torch

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = torch.nn.LSTM(1, cfg.hidden, batch_first=True)
            self.head = torch.nn.Linear(cfg.hidden, 1)

        def forward(self, x: Any) -> Any:  # x: [B, window, 1]
            out, _ = self.lstm(x)
            return self.head(out[:, -1, :]).squeeze(-1)  # [B]

    return Net()


@dataclass(frozen=True)
class LstmModel:
    state: tuple[tuple[str, Any], ...]  # the network's weights (state_dict items)
    scale: float  # rates are divided by this
    horizon: int
    train_loss: float


@functools.lru_cache(maxsize=1024)
def _fit_lstm(
    history: tuple[float, ...], horizon: int, cfg: LstmConfig, previous: LstmModel | None
) -> LstmModel | None:
    import torch

    y = np.asarray(history, np.float32)
    n_windows = len(y) - cfg.window - horizon + 1
    if n_windows < 4:
        return None
    scale = float(max(y.mean(), 1e-6))
    z = y / scale
    idx = np.arange(max(0, n_windows - cfg.max_windows), n_windows)
    x = np.stack([z[i : i + cfg.window] for i in idx])[:, :, None]  # [B, window, 1]
    target = z[idx + cfg.window - 1 + horizon]  # [B]
    torch.manual_seed(cfg.seed)
    net = _lstm_net(cfg)
    if previous is not None:
        net.load_state_dict(dict(previous.state))
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    xt, yt = torch.from_numpy(x), torch.from_numpy(target)
    loss = torch.tensor(0.0)
    for _ in range(cfg.epochs if previous is None else cfg.refit_epochs):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(net(xt), yt)
        loss.backward()
        opt.step()
    state = tuple((k, v.detach().clone()) for k, v in net.state_dict().items())
    return LstmModel(state, scale, horizon, float(loss.detach()))


class Lstm:
    """LSTM forecaster (see the module docstring)."""

    name = "lstm"

    def __init__(self, config: LstmConfig | None = None) -> None:
        self.config = config or LstmConfig()

    def fit(
        self, history: np.ndarray, horizon: int, previous: LstmModel | None = None
    ) -> LstmModel | None:
        """Trains on ``history``; None when it is too short for a window and a target."""
        import torch

        torch.set_num_threads(1)
        if previous is not None and previous.horizon != horizon:
            previous = None
        return _fit_lstm(tuple(np.round(history, 9)), horizon, self.config, previous)

    def predict(self, model: LstmModel, history: np.ndarray) -> float:
        import torch

        y = np.asarray(history[-self.config.window :], np.float32) / model.scale
        if len(y) < self.config.window:
            raise AutoscalingError(f"LSTM needs {self.config.window} bins of history")
        net = _lstm_net(self.config)
        net.load_state_dict(dict(model.state))
        with torch.no_grad():
            out = net(torch.from_numpy(y[None, :, None]))
        return max(0.0, float(out[0]) * model.scale)


def make_forecaster(name: str) -> HoltWinters | Lstm:
    if name == "holt-winters":
        return HoltWinters()
    if name == "lstm":
        return Lstm()
    raise AutoscalingError(f"unknown forecaster {name!r} (holt-winters, lstm)")
