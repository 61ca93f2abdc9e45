"""Sensor-agnostic input: any lidar layout and mounting, normalised into the model's frame.

The model frame (``FrameConfig``) has its origin on the ground below the lidar, z up (normal to
the ground the robot stands on), x along the lidar's x axis turned by ``yaw_rad`` (so x can be
made to point forward for sensors whose frame does not, such as nuScenes' LIDAR_TOP with x to
the right). A point p in the lidar frame maps to

    p_model = R_z(yaw) R_y(pitch) R_x(roll) p + (0, 0, height_m)

with ``height_m`` the lidar's height above the ground and pitch/roll its tilt relative to the
ground (positive pitch: nose down, REP 103). Before the transform, per-layout normalisation
(``LAYOUTS``) scales ranges to metres and intensities to [0, 1] (KITTI 0-1, Velodyne and
nuScenes 0-255, Ouster 16-bit), drops rows with NaN/Inf and returns closer than
``min_range_m`` (the robot's own body, e.g. nuScenes' roof returns). Boxes found in the model
frame go back to the lidar frame with the inverse transform (centre exactly; yaw of the box's
x axis projected on the lidar's xy plane, as ``sim.truth.boxes_to_frame``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from perception.errors import PerceptionError


class SensorSetupError(PerceptionError):
    """A sensor setup value is out of its bounds or the layout is unknown."""


@dataclass(frozen=True)
class Layout:
    """How a sensor family encodes points: multiply ranges by ``range_scale`` to get metres
    and intensities by ``intensity_scale`` to get [0, 1]."""

    range_scale: float
    intensity_scale: float
    description: str


LAYOUTS = MappingProxyType(
    {
        "sim": Layout(1.0, 1.0, "robomr simulator: metres, intensity 0-1"),
        "kitti": Layout(1.0, 1.0, "KITTI velodyne .bin: metres, reflectance 0-1"),
        "nuscenes": Layout(1.0, 1.0 / 255.0, "nuScenes .pcd.bin: metres, intensity 0-255"),
        "velodyne": Layout(1.0, 1.0 / 255.0, "Velodyne ROS driver: metres, intensity 0-255"),
        "ouster": Layout(1.0, 1.0 / 65535.0, "Ouster ROS driver: metres, 16-bit intensity"),
        "millimetres": Layout(1e-3, 1.0 / 255.0, "raw ranges in mm, intensity 0-255"),
    }
)


def infer_layout(intensity: np.ndarray) -> str:  # [N]
    """The layout whose intensity scale fits the data: "sim" (all <= 1.5), "velodyne"
    (<= 255), else "ouster"."""
    finite = intensity[np.isfinite(intensity)]
    peak = float(finite.max()) if len(finite) else 0.0
    return "sim" if peak <= 1.5 else "velodyne" if peak <= 255.0 else "ouster"


@dataclass(frozen=True)
class SensorSetup:
    """Where the lidar sits and how its clouds are encoded.

    Attributes:
        height_m: lidar origin above the ground (m), in [0, 10].
        pitch_rad: tilt about the lidar's y axis relative to the ground, in [-0.5, 0.5].
        roll_rad: tilt about its x axis, in [-0.5, 0.5].
        yaw_rad: turn about z from the lidar frame to the model frame, in [-pi, pi].
        layout: a key of ``LAYOUTS`` or "auto" (``infer_layout``).
        min_range_m: returns closer than this are dropped (m), in [0, 10].
    """

    height_m: float = 1.8
    pitch_rad: float = 0.0
    roll_rad: float = 0.0
    yaw_rad: float = 0.0
    layout: str = "auto"
    min_range_m: float = 2.5

    def __post_init__(self) -> None:
        bounds = {
            "height_m": (0.0, 10.0),
            "pitch_rad": (-0.5, 0.5),
            "roll_rad": (-0.5, 0.5),
            "yaw_rad": (-math.pi, math.pi),
            "min_range_m": (0.0, 10.0),
        }
        for name, (lo, hi) in bounds.items():
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                raise SensorSetupError(f"{name}={value!r}: must be a finite number")
            if not lo <= value <= hi:
                raise SensorSetupError(f"{name}={value!r}: must be in [{lo}, {hi}]")
        if self.layout != "auto" and self.layout not in LAYOUTS:
            raise SensorSetupError(
                f"layout={self.layout!r}: must be 'auto' or one of {sorted(LAYOUTS)}"
            )

    @property
    def T_model_sensor(self) -> np.ndarray:
        """[4, 4] float64 from the lidar frame to the model frame (module docstring)."""
        cr, sr = math.cos(self.roll_rad), math.sin(self.roll_rad)
        cp, sp = math.cos(self.pitch_rad), math.sin(self.pitch_rad)
        cy, sy = math.cos(self.yaw_rad), math.sin(self.yaw_rad)
        rx = np.array([[1, 0, 0], [0, cr, -sr], [0, sr, cr]])
        ry = np.array([[cp, 0, sp], [0, 1, 0], [-sp, 0, cp]])
        rz = np.array([[cy, -sy, 0], [sy, cy, 0], [0, 0, 1]])
        T = np.eye(4)
        T[:3, :3] = rz @ ry @ rx
        T[2, 3] = self.height_m
        return T

    @classmethod
    def from_transform(
        cls, T_base_sensor: np.ndarray, layout: str = "auto", min_range_m: float = 2.5
    ) -> SensorSetup:
        """The setup of a lidar mounted at ``T_base_sensor`` [4, 4] on a robot whose base
        frame has its origin on the ground (z up); the base's x/y offset of the lidar is
        dropped (the model frame is centred below the lidar).

        Raises:
            SensorSetupError: the transform's angles or height are out of bounds.
        """
        r = np.asarray(T_base_sensor, dtype=np.float64)[:3, :3]
        pitch = math.asin(max(-1.0, min(1.0, -r[2, 0])))
        roll = math.atan2(r[2, 1], r[2, 2])
        yaw = math.atan2(r[1, 0], r[0, 0])
        return cls(float(T_base_sensor[2][3]), pitch, roll, yaw, layout, min_range_m)


def to_model_frame(
    cloud: np.ndarray,  # [N, C >= 3] x, y, z (, intensity, ...) in the lidar frame
    setup: SensorSetup,
    with_intensity: bool,
) -> np.ndarray:  # [M, 3 or 4] float32 x, y, z (, intensity in [0, 1]) in the model frame
    """Normalised points of one cloud in the model frame (module docstring)."""
    pts = np.asarray(cloud)
    layout = layout_of(pts, setup, with_intensity)
    xyz, keep = _scaled_and_kept(pts, setup, layout)
    out = _moved(setup.T_model_sensor.astype(np.float32), xyz, keep)
    if not with_intensity:
        return out
    scale = layout.intensity_scale
    inten = np.take(pts[:, 3], keep) * scale if pts.shape[1] > 3 else np.zeros(len(out))
    inten = np.clip(np.nan_to_num(inten, nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0)
    return np.column_stack([out, inten]).astype(np.float32)


def _moved(T: np.ndarray, xyz: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """float32 [M, 3]: the rows ``keep`` of ``xyz`` [N, 3] moved by the rigid transform T [4, 4],
    R p + t, column by column: the float32 operations of ``einsum("ij,nj->ni", R, p) + t`` in
    the same order (the same bits), several times faster than it or numpy's broadcasts over a
    3-wide last axis; not a BLAS matmul either: for tall [N, 3] x [3, 3] products a threaded
    BLAS spends more on waking threads than on the work (sim/world.py measured 10-50x on a
    loaded machine)."""
    cols = [np.take(xyz[:, j], keep) for j in range(3)]  # contiguous x, y, z of the kept rows
    out = np.empty((len(keep), 3), dtype=np.float32)
    for i in range(3):
        acc = cols[0] * T[i, 0]
        acc += cols[1] * T[i, 1]
        acc += cols[2] * T[i, 2]
        acc += T[i, 3]
        out[:, i] = acc
    return out


def _scaled_and_kept(
    pts: np.ndarray, setup: SensorSetup, layout: Layout
) -> tuple[np.ndarray, np.ndarray]:
    """float32 x, y, z [N, 3] in metres and the rows kept (finite, beyond ``min_range_m``)."""
    # float32 throughout: a 120 k-point scan moves in a few ms, rounding stays ~1e-5 m.
    xyz = pts[:, :3].astype(np.float32, copy=False)
    if layout.range_scale != 1.0:
        xyz = xyz * np.float32(layout.range_scale)
    with np.errstate(invalid="ignore", over="ignore"):
        r2 = np.einsum("ij,ij->i", xyz, xyz)  # NaN in a row makes r2 NaN, Inf makes it Inf
        keep = np.flatnonzero((r2 >= np.float32(setup.min_range_m**2)) & np.isfinite(r2))
    return xyz, keep


def layout_of(pts: np.ndarray, setup: SensorSetup, with_intensity: bool) -> Layout:
    """The layout :func:`to_model_frame` reads ``pts`` with ("auto" resolved as it does)."""
    name = setup.layout
    if with_intensity and name == "auto":
        name = infer_layout(pts[:, 3]) if pts.shape[1] > 3 else "sim"
    return LAYOUTS["sim" if name == "auto" else name]


def kept_rows(
    cloud: np.ndarray, setup: SensorSetup, with_intensity: bool = True
) -> np.ndarray:  # [M] int64
    """The rows of ``cloud`` that :func:`to_model_frame` keeps, in order (the same test)."""
    pts = np.asarray(cloud)
    return _scaled_and_kept(pts, setup, layout_of(pts, setup, with_intensity))[1]


def _move_boxes(boxes: np.ndarray, T: np.ndarray) -> np.ndarray:
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 7)
    out = b.copy()
    out[:, :3] = b[:, :3] @ T[:3, :3].T + T[:3, 3]
    heading = np.stack([np.cos(b[:, 6]), np.sin(b[:, 6]), np.zeros(len(b))], axis=1) @ T[:3, :3].T
    out[:, 6] = np.arctan2(heading[:, 1], heading[:, 0])
    return out


def boxes_to_sensor_frame(
    boxes: np.ndarray,  # [K, 7] in the model frame
    setup: SensorSetup,
) -> np.ndarray:  # [K, 7] in the lidar frame
    """Boxes moved from the model frame back to the lidar frame (module docstring)."""
    return _move_boxes(boxes, np.linalg.inv(setup.T_model_sensor))


def boxes_to_model_frame(
    boxes: np.ndarray,  # [K, 7] in the lidar frame
    setup: SensorSetup,
) -> np.ndarray:  # [K, 7] in the model frame
    """Boxes moved from the lidar frame into the model frame."""
    return _move_boxes(boxes, setup.T_model_sensor)
