"""Forecasts for receding-horizon GSCLO: the next frames' discrepancy and channel gain.

The online scheduler (:mod:`planning.gsclo.scheduler`) plans over ``H`` frames but measures
only the current one; these pure functions supply the other ``H - 1`` (arXiv 2504.13697's
problem assumes them known; a robot has to forecast them).

* **Discrepancy** ``L_t``: from the map's coverage of the view at the planned pose (see
  ``gs_render.sensor_map``), a one-feature ridge regression ``L = b0 + b1 (1 - coverage)``
  fitted to the last ``memory_frames`` measured pairs; the slope is shrunk toward 0 by
  ``ridge``. With fewer than ``min_samples`` pairs the forecast is the current measurement
  repeated (persistence).
* **Channel gain** ``|h|^2``: the large-scale part from the log-distance path loss at the
  planned positions (:func:`planning.gsclo.channel.path_gain`), the small-scale part from
  recent estimates: with ``o_s = ln |h_s|^2 - ln PL(d_s)`` the offsets of the last
  ``memory_frames`` frames, mean ``m`` and lag-1 autocorrelation ``rho`` (clipped to [0, 1)),
  the forecast ``k`` frames ahead is ``exp(m + rho^k (o_now - m) - pessimism * std(o))``.
  Under i.i.d. Rayleigh fading ``rho ~ 0`` and ``exp(m)`` tends to the geometric mean of
  ``Exp(1)``, ``e^-0.577 = 0.56``: a forecast that neither assumes the next frame's fade nor
  the mean gain, whose inverse (the energy) is infinite in expectation.

Raises:
    ForecastError: malformed inputs or settings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from planning.gsclo.channel import FadingConfig, path_gain


class ForecastError(ValueError):
    """A forecast setting or input is malformed."""


@dataclass(frozen=True)
class ForecastConfig:
    """Forecast settings.

    Attributes:
        memory_frames: past frames each forecast uses, >= 2.
        min_samples: discrepancy pairs needed before the regression replaces persistence, >= 2.
        ridge: shrinkage of the coverage slope (in units of the feature's variance), >= 0.
        pessimism: standard deviations of the fading offset taken off the gain forecast, >= 0.
        fading: the path-loss model of the large-scale gain.
    """

    memory_frames: int = 100
    min_samples: int = 5
    ridge: float = 1e-3
    pessimism: float = 0.0
    fading: FadingConfig = field(default_factory=FadingConfig)

    def __post_init__(self) -> None:
        if not isinstance(self.memory_frames, int) or self.memory_frames < 2:
            raise ForecastError(f"memory_frames={self.memory_frames!r} must be an int >= 2")
        if not isinstance(self.min_samples, int) or self.min_samples < 2:
            raise ForecastError(f"min_samples={self.min_samples!r} must be an int >= 2")
        for name in ("ridge", "pessimism"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0.0):
                raise ForecastError(f"{name}={value!r} must be finite and >= 0")


@dataclass(frozen=True)
class ForecastState:
    """Recent measurements (oldest first, at most ``memory_frames``)."""

    coverage: tuple[float, ...] = ()
    discrepancy: tuple[float, ...] = ()
    fading_offset: tuple[float, ...] = ()  # ln |h|^2 - ln PL(d)


def observe(
    state: ForecastState,
    config: ForecastConfig,
    coverage: float,
    discrepancy: float,
    channel_gain: float,
    distance_m: float,
) -> ForecastState:
    """The state after one measured frame.

    Raises:
        ForecastError: a non-finite value, a gain <= 0 or a coverage outside [0, 1].
    """
    values = (coverage, discrepancy, channel_gain, distance_m)
    if not all(math.isfinite(v) for v in values) or channel_gain <= 0.0 or distance_m < 0.0:
        raise ForecastError(f"observe needs finite values, gain > 0, distance >= 0: {values}")
    if not 0.0 <= coverage <= 1.0:
        raise ForecastError(f"coverage={coverage} outside [0, 1]")
    offset = math.log(channel_gain) - math.log(
        float(path_gain(np.array([distance_m]), config.fading)[0])
    )
    keep = config.memory_frames
    return ForecastState(
        (*state.coverage, float(coverage))[-keep:],
        (*state.discrepancy, float(discrepancy))[-keep:],
        (*state.fading_offset, offset)[-keep:],
    )


def forecast_discrepancy(
    state: ForecastState,
    config: ForecastConfig,
    current: float,
    coverage: np.ndarray,  # [K] coverage at the next K planned poses
) -> np.ndarray:
    """Forecast L [K] >= 0 (module docstring)."""
    cov = np.asarray(coverage, dtype=np.float64)
    if len(state.discrepancy) < config.min_samples:
        return np.full(cov.shape, max(0.0, float(current)))
    f = 1.0 - np.asarray(state.coverage)
    y = np.asarray(state.discrepancy)
    var = float(np.var(f))
    slope = float(np.mean((f - f.mean()) * (y - y.mean()))) / (var + config.ridge)
    return np.maximum(0.0, y.mean() + slope * ((1.0 - cov) - f.mean()))


def forecast_channel_gain(
    state: ForecastState,
    config: ForecastConfig,
    current_offset: float | None,
    distance_m: np.ndarray,  # [K] distance to the base station at the next K planned positions
) -> np.ndarray:
    """Forecast |h|^2 [K] > 0 (module docstring); ``current_offset`` is the latest offset
    (None: the state's last one)."""
    d = np.asarray(distance_m, dtype=np.float64)
    offsets = np.asarray(state.fading_offset)
    if offsets.shape[0] == 0:
        return path_gain(d, config.fading) * math.exp(-0.5772156649)  # Rayleigh's geometric mean
    mean = float(offsets.mean())
    now = float(offsets[-1]) if current_offset is None else float(current_offset)
    rho = 0.0
    if offsets.shape[0] >= 3 and float(np.var(offsets)) > 0.0:
        centred = offsets - mean
        rho = float(np.clip(np.sum(centred[1:] * centred[:-1]) / np.sum(centred**2), 0.0, 0.999))
    lags = np.arange(1, d.shape[0] + 1)
    offset = mean + rho**lags * (now - mean) - config.pessimism * float(offsets.std())
    return path_gain(d, config.fading) * np.exp(offset)


def poses_along_path(
    path_xy: np.ndarray | None,  # [N, 2] planned positions (m), or None
    x_m: float,
    y_m: float,
    yaw_rad: float,
    speed_mps: float,
    period_s: float,
    count: int,
) -> np.ndarray:
    """Planned (x, y, yaw) [count, 3] of the robot 1..count periods ahead: along ``path_xy``
    from its point nearest to (x, y) at ``speed_mps`` (heading along the path), or straight
    ahead at the current yaw when there is no path (constant velocity)."""
    steps = max(0.0, speed_mps) * period_s * np.arange(1, count + 1)  # arc length ahead (m)
    if path_xy is None or len(path_xy) < 2:
        heading = np.full(count, yaw_rad)
        return np.column_stack(
            [x_m + steps * np.cos(yaw_rad), y_m + steps * np.sin(yaw_rad), heading]
        )
    pts = np.asarray(path_xy, dtype=np.float64)
    nearest = int(np.argmin(np.hypot(pts[:, 0] - x_m, pts[:, 1] - y_m)))
    pts = np.vstack([[x_m, y_m], pts[nearest + 1 :]]) if nearest + 1 < len(pts) else pts[-2:]
    seg = np.diff(pts, axis=0)
    length = np.hypot(seg[:, 0], seg[:, 1])
    cum = np.concatenate([[0.0], np.cumsum(length)])
    s = np.minimum(steps, cum[-1])
    i = np.clip(np.searchsorted(cum, s, side="right") - 1, 0, len(seg) - 1)
    frac = np.where(length[i] > 0, (s - cum[i]) / np.maximum(length[i], 1e-12), 0.0)
    xy = pts[i] + frac[:, None] * seg[i]
    return np.column_stack([xy, np.arctan2(seg[i, 1], seg[i, 0])])
