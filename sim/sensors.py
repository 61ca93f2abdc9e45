"""Real lidar models: beam tables, resolution, range, noise and detection of common sensors.

Each preset is a ``LidarConfig`` with the sensor's published beam table and figures (the
manufacturers' manuals and data sheets; per-unit calibration moves beams by about 0.1 deg):

| name | beams | elevations (deg) | columns | used by |
| --- | ---: | --- | ---: | --- |
| ``hdl64e`` | 64 | +2.0 to -8.33 (1/3 deg), -8.83 to -24.9 (1/2 deg) | 2000 | KITTI, 1.73 m |
| ``hdl32e`` | 32 | -30.67 to +10.67, uniform 1.33 deg | 1084 | nuScenes (20 Hz), 1.84 m |
| ``vlp16`` | 16 | -15 to +15, uniform 2 deg | 1800 | small robots |
| ``vlp32c`` | 32 | -25 to +15, dense near the horizon (0.33 deg) | 1800 | robotaxis |
| ``os1-64`` | 64 | -22.5 to +22.5 uniform (Ouster OS1 rev 6) | 1024 | robots |
| ``os1-128`` | 128 | -22.5 to +22.5 uniform | 1024 | robots |

(10 Hz unless noted.)

Range noise (1 sigma): HDL-64E and HDL-32E 2 cm, VLP-16 3 cm, VLP-32C 3 cm, OS1 3 cm.
``range_10pct_m`` (50 % detection of a 10 % target): about 1.3x the data sheets' range for
low-reflectivity targets (which are quoted at a high detection rate): HDL-64E 50 m ("50 m for
pavement"), HDL-32E 70 m, VLP-16 and VLP-32C 100 m (VLP-32C: 200 m at 80 %), OS1 60 m (45 m at
10 % in the rev 6 data sheet). Intensity is reflectivity times ``|cos|^0.5`` with 10 % noise
(Velodyne's and Ouster's "calibrated reflectivity" depend only weakly on the incidence angle).
All presets see through glass, wire mesh and foliage (``sim/lidar.py``).
"""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType

import numpy as np

from sim.lidar import LidarConfig, LidarError

# Velodyne VLP-32C laser elevations (deg), from its manual's laser table (sorted here).
_VLP32C = (
    -25.0, -15.639, -11.31, -8.843, -7.254, -6.148, -5.333, -4.667, -4.0, -3.667, -3.333, -3.0,
    -2.667, -2.333, -2.0, -1.667, -1.333, -1.0, -0.667, -0.333, 0.0, 0.333, 0.667, 1.0, 1.333,
    1.667, 2.333, 3.333, 4.667, 7.0, 10.333, 15.0,
)  # fmt: skip
_HDL64E = tuple(
    np.round(np.concatenate([np.linspace(-24.9, -8.83, 32), np.linspace(-8.33, 2.0, 32)]), 3)
)
_COMMON = {
    "intensity_incidence_exponent": 0.5,
    "intensity_noise_std": 0.1,
    "see_through": True,
    "dropout_prob": 0.005,
    "min_range_m": 0.8,
}


def _preset(beams: int, table: tuple[float, ...], **kwargs: float) -> LidarConfig:
    lo, hi = min(table), max(table)
    return LidarConfig(
        beams=beams,
        vertical_fov_down_deg=lo,
        vertical_fov_up_deg=hi,
        elevations_deg=tuple(float(e) for e in table),
        **_COMMON,  # type: ignore[arg-type]
        **kwargs,  # type: ignore[arg-type]
    )


SENSORS = MappingProxyType(
    {
        "hdl64e": _preset(64, _HDL64E, azimuth_resolution_deg=0.18, range_noise_std_m=0.02,
                          range_10pct_m=50.0, max_range_m=120.0),
        "hdl32e": _preset(32, tuple(np.round(np.linspace(-30.67, 10.67, 32), 3)),
                          azimuth_resolution_deg=360.0 / 1084, range_noise_std_m=0.02,
                          range_10pct_m=70.0, max_range_m=100.0, scan_period_s=0.05),
        "vlp16": _preset(16, tuple(np.linspace(-15.0, 15.0, 16)), azimuth_resolution_deg=0.2,
                         range_noise_std_m=0.03, range_10pct_m=100.0, max_range_m=100.0),
        "vlp32c": _preset(32, _VLP32C, azimuth_resolution_deg=0.2, range_noise_std_m=0.03,
                          range_10pct_m=100.0, max_range_m=200.0),
        "os1-64": _preset(64, tuple(np.linspace(-22.5, 22.5, 64)),
                          azimuth_resolution_deg=360.0 / 1024, range_noise_std_m=0.03,
                          range_10pct_m=60.0, max_range_m=120.0),
        "os1-128": _preset(128, tuple(np.linspace(-22.5, 22.5, 128)),
                           azimuth_resolution_deg=360.0 / 1024, range_noise_std_m=0.03,
                           range_10pct_m=60.0, max_range_m=120.0),
    }
)  # fmt: skip
# Typical mounting heights (m above the ground) of the datasets that use them.
TYPICAL_HEIGHT_M = MappingProxyType(
    {"hdl64e": 1.73, "hdl32e": 1.84, "vlp16": 1.0, "vlp32c": 1.9, "os1-64": 1.2, "os1-128": 1.6}
)


def sensor_config(name: str, rng: np.random.Generator | None = None) -> LidarConfig:
    """The preset ``name``; with ``rng``, each beam's elevation jittered by N(0, 0.05 deg)
    (unit-to-unit calibration spread) and kept in order.

    Raises:
        LidarError: unknown sensor name.
    """
    if name not in SENSORS:
        raise LidarError(f"unknown lidar model {name!r}; known: {sorted(SENSORS)}")
    config = SENSORS[name]
    if rng is None:
        return config
    table = np.sort(np.asarray(config.elevations_deg) + rng.normal(0.0, 0.05, config.beams))
    return replace(
        config,
        elevations_deg=tuple(float(e) for e in table),
        vertical_fov_down_deg=float(min(table[0], config.vertical_fov_down_deg)),
        vertical_fov_up_deg=float(max(table[-1], config.vertical_fov_up_deg)),
    )
