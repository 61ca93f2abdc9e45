"""``gsclo_scheduler``: per camera frame, upload the image or only the pose, and at what power.

GSCLO (arXiv 2504.13697) solved by APO (``planning.gsclo``), receding horizon. Subscribes
``camera/image`` (the real frame), ``gs/image`` (the Gaussian-splatting render at the same
stamp), ``gs/forecast`` (the map's coverage at this and the next planned poses, from
``gs_render``) and ``odom``. For each stamp with both images it measures the render's
discrepancy L_t = 1 - SSIM, draws the uplink gain (path loss to the base station at
``base_station_xy_m`` times seeded Rayleigh fading: the channel estimate a radio would
report), forecasts the next ``horizon_frames - 1`` frames' L (regression on coverage) and gains
(path loss along the planned positions times the recent fading offsets,
``planning.gsclo.forecast``), plans the horizon, applies the first decision and re-plans at
the next frame. ``horizon_frames = 1`` (or no forecast message) is the myopic scheduler. The
budget is a rolling mean over ``window_frames`` (``budget_mode``: or consecutive blocks).
Publishes:

- ``gsclo/uploaded``: the real image, only for frames the robot uploads;
- ``gsclo/operator_view``: what the operator sees (the real image if uploaded, else the render);
- ``gsclo/decision``: DiagnosticArray with upload, power, energy, L_t, PSNR/SSIM of the
  operator view, and the running energy of this schedule and of always uploading (RoboMR).

Frames whose partner image never arrives are dropped after ``pair_timeout_s`` (counted).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from gs_render.metrics import psnr, ssim
from planning.gsclo import (
    FadingConfig,
    GscloObservation,
    GscloProblem,
    GscloScheduler,
    GscloState,
    LinkConfig,
    PayloadConfig,
    SchedulerConfig,
    robomr_schedule,
)
from planning.gsclo.channel import path_gain
from planning.gsclo.forecast import (
    ForecastConfig,
    ForecastState,
    forecast_channel_gain,
    forecast_discrepancy,
    observe,
)
from robomr_nodes.api import NodeHandle, RobomrNode
from robomr_nodes.convert.image import ImageError, image_to_array
from robomr_nodes.convert.tf import odometry_in_frame
from robomr_nodes.diagnostics import diagnostic_array, diagnostic_values
from robomr_nodes.messages import stamp_ns
from robomr_nodes.params import param
from robomr_nodes.runtime.entry import run_node
from robomr_nodes.tf_static import StaticTransforms


@dataclass(frozen=True)
class GscloParams:
    fidelity_budget: float = param(
        0.25, "allowed rolling mean of L_t over sent poses (1 - SSIM)", min_value=0.0, max_value=1.0
    )
    window_frames: int = param(
        30, "frames the fidelity budget averages over", min_value=1, max_value=10000
    )
    method: str = param("apo", "scheduler", choices=("apo", "exact"))
    horizon_frames: int = param(
        5, "frames planned ahead (1: myopic); <= window_frames", min_value=1, max_value=10000
    )
    budget_mode: str = param(
        "rolling", "fidelity budget over every window or blocks", choices=("rolling", "block")
    )
    base_station_xy_m: list = param([0.0, 0.0], "base station position in the map (m)")
    bandwidth_hz: float = param(10e6, "uplink bandwidth (Hz)", min_value=1e3, max_value=1e10)
    max_power_w: float = param(0.2, "maximum transmit power (W)", min_value=1e-6, max_value=100.0)
    deadline_s: float = param(0.1, "per-frame latency deadline (s)", min_value=1e-4, max_value=10.0)
    jpeg_bits_per_pixel: float = param(
        1.5, "compressed image size (bits/px)", min_value=0.01, max_value=24.0
    )
    fading_seed: int = param(0, "seed of the Rayleigh fading", min_value=0)
    pair_timeout_s: float = param(
        1.0, "drop a frame whose partner image is this late (s)", min_value=0.01, max_value=60.0
    )


class GscloSchedulerNode(RobomrNode):
    NAME = "gsclo_scheduler"

    def __init__(self, handle: NodeHandle) -> None:
        super().__init__(handle)
        self.params = p = handle.declare_params(GscloParams)
        if len(p.base_station_xy_m) != 2:
            raise ValueError("base_station_xy_m needs two values (x, y)")
        self.link = LinkConfig(
            bandwidth_hz=p.bandwidth_hz, max_power_w=p.max_power_w, deadline_s=p.deadline_s
        )
        self.fading = FadingConfig()
        self.forecast = ForecastConfig(fading=self.fading)
        self._forecast_state = ForecastState()
        self._scheduler: GscloScheduler | None = None  # built when the image size is known
        self._state = GscloState()
        self._rng = np.random.default_rng(p.fading_seed)
        self._xy: tuple[float, float] | None = None
        self._pending: dict[int, dict[str, Any]] = {}
        self.totals = {
            "frames": 0,
            "uploads": 0,
            "energy_j": 0.0,
            "robomr_energy_j": 0.0,
            "deadline_misses": 0,
            "dropped": 0,
        }
        self._uploaded = handle.create_publisher("sensor_msgs/msg/Image", "gsclo/uploaded")
        self._view = handle.create_publisher("sensor_msgs/msg/Image", "gsclo/operator_view")
        self._decision = handle.create_publisher(
            "diagnostic_msgs/msg/DiagnosticArray", "gsclo/decision"
        )
        self._static = StaticTransforms()  # map -> odom (REP 105): the base station is in map
        handle.create_subscription(
            "tf2_msgs/msg/TFMessage", "/tf_static", self._static.update, "latched"
        )
        handle.create_subscription("nav_msgs/msg/Odometry", "odom", self._on_odom)
        handle.create_subscription(
            "sensor_msgs/msg/Image",
            "camera/image",
            lambda m: self._on_image("real", m),
            "sensor_data",
        )
        handle.create_subscription(
            "sensor_msgs/msg/Image",
            "gs/image",
            lambda m: self._on_image("render", m),
            "sensor_data",
        )
        handle.create_subscription(
            "diagnostic_msgs/msg/DiagnosticArray",
            "gs/forecast",
            lambda m: self._on_image("forecast", m),
            "sensor_data",
        )

    def _on_odom(self, msg: Any) -> None:
        pose = odometry_in_frame(msg, self._static, "map")
        if pose is not None:
            self._xy = pose[:2]

    def _on_image(self, kind: str, msg: Any) -> None:
        stamp = stamp_ns(msg.header.stamp)
        self._pending.setdefault(stamp, {})[kind] = msg
        horizon = stamp - round(self.params.pair_timeout_s * 1e9)
        for old in [s for s in self._pending if s < horizon]:
            del self._pending[old]
            self.totals["dropped"] += 1
        pair = self._pending[stamp]
        if "real" in pair and "render" in pair and self._xy is not None:
            del self._pending[stamp]
            self._decide(stamp, pair["real"], pair["render"], pair.get("forecast"))

    def _distance_m(self, x: float, y: float) -> float:
        bs = self.params.base_station_xy_m
        return float(np.hypot(x - bs[0], y - bs[1]))

    def _channel_gain(self) -> float:
        distance = self._distance_m(*self._xy)
        fading = max(self._rng.exponential(1.0), np.finfo(np.float64).tiny)
        return float(path_gain(np.array([distance]), self.fading)[0] * fading)

    def _horizon(
        self, discrepancy: float, gain: float, forecast_msg: Any
    ) -> tuple[np.ndarray, np.ndarray, float]:
        """L [H] and |h|^2 [H] of this frame and the forecast ones, and this frame's coverage
        (nan without a forecast message: then H = 1)."""
        values = diagnostic_values(forecast_msg).get("gs_forecast", {}) if forecast_msg else {}
        if "coverage_0" not in values:
            return np.array([discrepancy]), np.array([gain]), float("nan")
        ahead = [i for i in range(1, self.params.horizon_frames) if f"coverage_{i}" in values]
        coverage = np.array([float(values[f"coverage_{i}"]) for i in ahead])
        distance = np.array(
            [self._distance_m(float(values[f"x_{i}"]), float(values[f"y_{i}"])) for i in ahead]
        )
        disc = forecast_discrepancy(self._forecast_state, self.forecast, discrepancy, coverage)
        gains = forecast_channel_gain(self._forecast_state, self.forecast, None, distance)
        return (
            np.concatenate([[discrepancy], disc]),
            np.concatenate([[gain], gains]),
            float(values["coverage_0"]),
        )

    def _decide(self, stamp: int, real_msg: Any, render_msg: Any, forecast_msg: Any) -> None:
        try:
            real, render = image_to_array(real_msg), image_to_array(render_msg)
        except ImageError as err:
            self.log.warning("dropping frame %d: %s", stamp, err)
            return
        if real.shape != render.shape:
            self.log.warning(
                "dropping frame %d: real %s and render %s differ in size",
                stamp,
                real.shape,
                render.shape,
            )
            return
        if self._scheduler is None:
            payload = PayloadConfig(
                image_width_px=real.shape[1],
                image_height_px=real.shape[0],
                jpeg_bits_per_pixel=self.params.jpeg_bits_per_pixel,
            )
            self._scheduler = GscloScheduler(
                SchedulerConfig(
                    fidelity_budget=self.params.fidelity_budget,
                    window_frames=self.params.window_frames,
                    method=self.params.method,
                    budget_mode=self.params.budget_mode,
                    link=self.link,
                    payload=payload,
                )
            )
        discrepancy = 1.0 - float(ssim(real, render))
        gain = self._channel_gain()
        disc_h, gain_h, coverage = self._horizon(discrepancy, gain, forecast_msg)
        horizon = min(len(disc_h), self.params.window_frames)
        decision, self._state = self._scheduler.decide(
            GscloObservation(stamp, disc_h[:horizon], gain_h[:horizon]), self._state
        )
        if np.isfinite(coverage):
            self._forecast_state = observe(
                self._forecast_state, self.forecast, min(max(coverage, 0.0), 1.0),
                discrepancy, gain, self._distance_m(*self._xy),
            )  # fmt: skip
        cfg = self._scheduler.config
        always = robomr_schedule(
            GscloProblem(
                np.array([discrepancy]),
                np.array([gain]),
                1.0,
                cfg.link,
                cfg.payload.image_bits,
                cfg.payload.pose_bits,
            )
        )
        shown = real_msg if decision.upload else render_msg
        if decision.upload:
            self._uploaded.publish(real_msg)
        self._view.publish(shown)
        t = self.totals
        t["frames"] += 1
        t["uploads"] += int(decision.upload)
        t["energy_j"] += decision.energy_j
        t["robomr_energy_j"] += float(always.total_energy_j)
        t["deadline_misses"] += int(decision.deadline_miss)
        view = real if decision.upload else render
        self._decision.publish(
            diagnostic_array(
                self.handle.now_ns(),
                "gsclo",
                {
                    "stamp_ns": stamp,
                    "upload": decision.upload,
                    "power_w": decision.power_w,
                    "energy_j": decision.energy_j,
                    "discrepancy": discrepancy,
                    "horizon_frames": horizon,
                    "channel_gain": gain,
                    "view_psnr_db": float(psnr(real, view))
                    if not decision.upload
                    else float("inf"),
                    "view_ssim": float(ssim(real, view)) if not decision.upload else 1.0,
                    "render_psnr_db": float(psnr(real, render)),
                    "render_ssim": 1.0 - discrepancy,
                    **{f"total_{k}": v for k, v in t.items()},
                },
            )
        )


def main(args: list[str] | None = None) -> int:
    return run_node(GscloSchedulerNode, args)
