"""Configuration of the lidar detector: voxel grid, network widths and post-processing.

All configs are frozen dataclasses validated in ``__post_init__``; a bad value raises
:class:`ConfigError` naming the field, the value and the limit. ``DetectorConfig`` is stored in
every model file (``perception.checkpoint``) and rebuilt from it with :func:`config_from_dict`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from perception.errors import PerceptionError

if TYPE_CHECKING:
    import torch

# Class names the detector reports, in label-index order (docs/conventions.md).
CLASSES: tuple[str, ...] = ("car", "van", "truck", "bus")

# The shipped model: models/detector.pt at the repository (package source) root.
DEFAULT_MODEL_PATH = Path(__file__).resolve().parent.parent / "models" / "detector.pt"

# The sparse backbone downsamples x and y twice by 2: one BEV cell is 4 x 4 voxels.
BEV_STRIDE = 4

BackboneKind = Literal["sparse", "dense"]

# Arithmetic of the dense neck and head at inference (``perception.dense_layers``).
Precision = Literal["auto", "float32", "bfloat16"]
PRECISIONS: tuple[str, ...] = ("auto", "float32", "bfloat16")


class ConfigError(PerceptionError):
    """A detector configuration value is out of its bounds."""


def _require(ok: bool, name: str, value: object, limit: str) -> None:
    if not ok:
        raise ConfigError(f"{name}={value!r} is invalid: {limit}")


@dataclass(frozen=True)
class VoxelConfig:
    """The voxel grid the point cloud is binned into (lidar frame)."""

    # Voxel edge (x, y, z) in metres; each > 0 and dividing the range below.
    voxel_size_m: tuple[float, float, float] = (0.2, 0.2, 0.2)
    # Point-cloud range (x_min, y_min, z_min, x_max, y_max, z_max) in metres, in the model
    # frame (origin on the ground below the lidar, z up; perception.sensor_input): z in
    # [-2, 4) m holds bus roofs and the road 40 m away on a 5 % grade. Max > min.
    point_range_m: tuple[float, float, float, float, float, float] = (
        -40.0, -40.0, -2.0, 40.0, 40.0, 4.0,
    )  # fmt: skip
    # Points averaged per voxel (the first ones in input order), >= 1.
    max_points_per_voxel: int = 5
    # Voxels kept per cloud (the first ones in input order), >= 1.
    max_voxels: int = 80_000
    # Whether the 4th column (intensity) is a voxel feature. Off by default: intensity scales
    # differ between sensors (0..1 vs 0..255) and the simulator's, so geometry alone is used.
    use_intensity: bool = False

    def __post_init__(self) -> None:
        _require(len(self.voxel_size_m) == 3, "voxel_size_m", self.voxel_size_m, "3 values")
        _require(len(self.point_range_m) == 6, "point_range_m", self.point_range_m, "6 values")
        for i, size in enumerate(self.voxel_size_m):
            _require(math.isfinite(size) and size > 0, "voxel_size_m", self.voxel_size_m, "> 0")
            extent = self.point_range_m[i + 3] - self.point_range_m[i]
            _require(
                math.isfinite(extent) and extent > 0,
                "point_range_m",
                self.point_range_m,
                "max must exceed min on every axis",
            )
            cells = extent / size
            _require(
                abs(cells - round(cells)) < 1e-6,
                "voxel_size_m",
                self.voxel_size_m,
                f"must divide the range extent {extent} m on axis {'xyz'[i]}",
            )
        nx, ny, nz = self.grid_size
        _require(
            nx % (2 * BEV_STRIDE) == 0 and ny % (2 * BEV_STRIDE) == 0,
            "point_range_m",
            self.point_range_m,
            f"x and y cell counts must be multiples of {2 * BEV_STRIDE}",
        )
        _require(
            nz >= 12,
            "point_range_m",
            self.point_range_m,
            "at least 12 voxels in z (the backbone halves z twice, then needs 3 for its last "
            "z convolution)",
        )
        _require(
            self.max_points_per_voxel >= 1,
            "max_points_per_voxel",
            self.max_points_per_voxel,
            ">= 1",
        )
        _require(self.max_voxels >= 1, "max_voxels", self.max_voxels, ">= 1")

    @property
    def grid_size(self) -> tuple[int, int, int]:
        """Cells (nx, ny, nz) of the voxel grid."""
        return tuple(  # type: ignore[return-value]
            round((self.point_range_m[i + 3] - self.point_range_m[i]) / self.voxel_size_m[i])
            for i in range(3)
        )

    @property
    def num_features(self) -> int:
        """Channels of a voxel feature: mean x, y, z (and mean intensity)."""
        return 4 if self.use_intensity else 3


@dataclass(frozen=True)
class ModelConfig:
    """Widths of the network (see docs/perception.md for the tensor shapes)."""

    # "sparse": spconv backbone; "dense": the same layers as torch Conv3d (ablation).
    backbone: BackboneKind = "sparse"
    # Channels of the three 3D stages (full, 1/2 and 1/4 resolution), each >= 1. The last
    # stage's submanifold convolution dominates the backbone's cost (quadratic in channels).
    backbone_channels: tuple[int, int, int] = (16, 24, 32)
    # Channels of the BEV neck at stride 4 (the stride-8 branch has twice as many), >= 1.
    bev_channels: int = 32
    # Channels of the shared convolution of the centre head, >= 1.
    head_channels: int = 32

    def __post_init__(self) -> None:
        _require(
            self.backbone in ("sparse", "dense"), "backbone", self.backbone, "'sparse' or 'dense'"
        )
        _require(
            len(self.backbone_channels) == 3 and min(self.backbone_channels) >= 1,
            "backbone_channels",
            self.backbone_channels,
            "3 values >= 1",
        )
        _require(self.bev_channels >= 1, "bev_channels", self.bev_channels, ">= 1")
        _require(self.head_channels >= 1, "head_channels", self.head_channels, ">= 1")


@dataclass(frozen=True)
class PostprocessConfig:
    """Turning heat-map peaks into boxes."""

    # Minimum detection score in [0, 1).
    score_threshold: float = 0.1
    # Class-agnostic rotated BEV NMS IoU in (0, 1]; None disables it (max-pool NMS only).
    nms_iou_threshold: float | None = 0.2
    # Heat-map peaks kept per frame before NMS, >= 1.
    max_detections: int = 100
    # Side of the max-pool window that finds peaks, odd >= 1 (cells).
    peak_pool_cells: int = 3

    def __post_init__(self) -> None:
        _require(
            0.0 <= self.score_threshold < 1.0, "score_threshold", self.score_threshold, "in [0, 1)"
        )
        if self.nms_iou_threshold is not None:
            _require(
                0.0 < self.nms_iou_threshold <= 1.0,
                "nms_iou_threshold",
                self.nms_iou_threshold,
                "in (0, 1] or None",
            )
        _require(self.max_detections >= 1, "max_detections", self.max_detections, ">= 1")
        _require(
            self.peak_pool_cells >= 1 and self.peak_pool_cells % 2 == 1,
            "peak_pool_cells",
            self.peak_pool_cells,
            "odd and >= 1",
        )


@dataclass(frozen=True)
class FrameConfig:
    """The model frame and the sensor a cloud comes from when the caller says nothing."""

    # Height of the lidar above the ground assumed when a cloud comes without a sensor setup
    # (m), in [0, 10]: the simulator's robot carries its lidar at 1.8 m.
    default_sensor_height_m: float = 1.8
    # Returns closer than this to the lidar are dropped (the robot's own body), in [0, 10] m:
    # 2.5 m holds the whole footprint of a car-sized robot with a central lidar (the
    # simulator's 4.5 x 1.9 m robot: half-diagonal 2.44 m; nuScenes' 4.1 x 1.7 m car: 2.2 m).
    min_range_m: float = 2.5

    def __post_init__(self) -> None:
        _require(
            math.isfinite(self.default_sensor_height_m)
            and 0.0 <= self.default_sensor_height_m <= 10.0,
            "default_sensor_height_m",
            self.default_sensor_height_m,
            "in [0, 10]",
        )
        _require(
            math.isfinite(self.min_range_m) and 0.0 <= self.min_range_m <= 10.0,
            "min_range_m",
            self.min_range_m,
            "in [0, 10]",
        )


@dataclass(frozen=True)
class DetectorConfig:
    """Everything needed to rebuild a detector; stored in the model file."""

    voxel: VoxelConfig = field(default_factory=VoxelConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    postprocess: PostprocessConfig = field(default_factory=PostprocessConfig)
    frame: FrameConfig = field(default_factory=FrameConfig)
    # Class names in label order; must equal CLASSES (the node and evaluation rely on it).
    classes: tuple[str, ...] = CLASSES

    def __post_init__(self) -> None:
        _require(tuple(self.classes) == CLASSES, "classes", self.classes, f"must be {CLASSES}")

    @property
    def bev_shape(self) -> tuple[int, int]:
        """(rows H, columns W) of the BEV maps: rows follow y, columns follow x."""
        nx, ny, _ = self.voxel.grid_size
        return ny // BEV_STRIDE, nx // BEV_STRIDE

    @property
    def bev_cell_m(self) -> tuple[float, float]:
        """BEV cell edge (x, y) in metres."""
        return (self.voxel.voxel_size_m[0] * BEV_STRIDE, self.voxel.voxel_size_m[1] * BEV_STRIDE)


def config_to_dict(config: DetectorConfig) -> dict[str, Any]:
    """Plain-dict form (JSON- and torch.load(weights_only=True)-safe)."""
    return asdict(config)


def config_from_dict(data: dict[str, Any]) -> DetectorConfig:
    """Rebuilds a :class:`DetectorConfig` from :func:`config_to_dict` output.

    Raises:
        ConfigError: a section or key is unknown or missing, or a value is out of bounds.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"detector config must be a mapping, got {type(data).__name__}")
    sections = {
        "voxel": VoxelConfig,
        "model": ModelConfig,
        "postprocess": PostprocessConfig,
        "frame": FrameConfig,
    }
    unknown = set(data) - {*sections, "classes"}
    if unknown:
        raise ConfigError(f"unknown detector config keys {sorted(unknown)}")
    kwargs: dict[str, Any] = {}
    for name, cls in sections.items():
        section = data.get(name)
        if not isinstance(section, dict):
            raise ConfigError(f"detector config section {name!r} is missing or not a mapping")
        known = {f.name for f in fields(cls)}
        if set(section) != known:
            raise ConfigError(
                f"config section {name!r}: keys {sorted(section)} differ from "
                f"the expected {sorted(known)}"
            )
        kwargs[name] = cls(
            **{k: tuple(v) if isinstance(v, list) else v for k, v in section.items()}
        )
    return DetectorConfig(**kwargs, classes=tuple(data.get("classes", ())))


def resolve_device(name: str) -> torch.device:
    """The torch device for ``name``: "auto" (CUDA when available, else CPU), "cpu", "cuda[:N]".

    Raises:
        ConfigError: unknown name, or a CUDA device on a machine without CUDA.
    """
    import torch  # local: the configs above stay importable without torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as err:
        raise ConfigError(f"device={name!r} is invalid: use 'auto', 'cpu' or 'cuda[:N]'") from err
    if device.type not in ("cpu", "cuda"):
        raise ConfigError(f"device={name!r} is invalid: use 'auto', 'cpu' or 'cuda[:N]'")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device={name!r} is invalid: CUDA is not available on this machine")
    return device
