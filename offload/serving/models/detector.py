"""The lidar detector as a served model (``POST /v1/detect``): a point cloud in, boxes out.

The full path calls exactly what the ``lidar_detector`` node calls, ``perception.detect.detect``
on a batch of clouds. The brownout path runs the same weights on a shorter range: the network is
fully convolutional, so a copy of it built for the grid of x, y in [-r, r) (``brownout_range_m``)
sees the same voxels near the sensor and skips the rest; its dense BEV stages, which dominate the
time on a CPU, shrink with the area, (2r / 80 m)^2 of the full grid. Boxes beyond r are lost:
that is the accuracy cost ``robomr bench serving`` measures (AP). Both paths run the dense neck
and head at ``precision`` (``perception.dense_layers``): float32 by default, as the node.

Request: array ``points`` float32 [N, C >= 3] (lidar frame, x, y, z[, intensity, ...]).
Response: ``boxes`` float64 [K, 7], ``labels`` int64 [K] (index into CLASSES), ``scores``
float32 [K], all boxes the model reports (its own score threshold); header ``classes``.
Cost: N points.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path as FilePath
from typing import TYPE_CHECKING, Any

import numpy as np

from offload.serving.model import MemoryModel, ModelError, Path, ServedModel
from offload.serving.wire import Message

if TYPE_CHECKING:
    from perception.config import Precision

# The voxel grid needs x/y cell counts that are multiples of 8 (perception.config): with 0.2 m
# voxels a half-range must be a multiple of 0.8 m.
_RANGE_QUANTUM_CELLS = 8


class DetectorModel(ServedModel):
    """The sparse-CNN detector (``perception``) with a shorter-range brownout path.

    Args:
        model: a loaded ``perception.model.Detector``.
        brownout_range_m: half-width of the brownout grid (m), < the model's range; None: 60%
            of it, rounded down to the grid (24 m for the shipped model's 40 m).
        max_points: largest cloud accepted (points).
        precision: the dense neck and head's arithmetic, ``detect``'s (float32, bfloat16 or
            auto: bfloat16 on a CPU with native bfloat16).

    Raises:
        ModelError: an unknown precision, or bfloat16 on a GPU.
    """

    name = "detector"
    route = "/v1/detect"
    unit = "points"
    has_brownout = True

    def __init__(
        self,
        model: Any,
        brownout_range_m: float | None = None,
        max_points: int = 400_000,
        precision: Precision = "float32",
    ) -> None:
        from perception.config import CLASSES
        from perception.dense_layers import PrecisionError, resolve_precision

        try:
            resolve_precision(precision, model.device)
        except PrecisionError as err:
            raise ModelError(str(err)) from err
        self.precision = precision
        self.model = model
        self.classes = CLASSES
        self.max_cost = max_points
        if brownout_range_m is None:
            brownout_range_m = default_brownout_range(model)
        self.short = _shorter_range(model, brownout_range_m)
        self.brownout_range_m = brownout_range_m
        self.version = f"detector-{sum(p.numel() for p in model.parameters())}p"

    @classmethod
    def from_options(
        cls,
        model_path: str = "",
        device: str = "cpu",
        brownout_range_m: float | None = None,
        max_points: int = 400_000,
        precision: Precision = "float32",
    ) -> DetectorModel:
        """Loads the weights (``model_path``; empty: the shipped ``models/detector.pt``).

        Raises:
            ModelError: the file is missing or incompatible.
        """
        from perception.checkpoint import ModelFileError, load_detector
        from perception.config import DEFAULT_MODEL_PATH, ConfigError

        path = FilePath(model_path) if model_path else DEFAULT_MODEL_PATH
        try:
            model = load_detector(path, device)
        except (ModelFileError, ConfigError) as err:
            raise ModelError(str(err)) from err
        return cls(model, brownout_range_m, max_points, precision)

    def parse(self, message: Message) -> np.ndarray:
        return message.array("points", "<f4", 2, (0, 3))  # [N, C]

    def cost(self, request: np.ndarray, path: Path) -> int:
        return max(1, len(request))

    def memory(self, path: Path) -> MemoryModel:
        return detector_memory(self.model if path == "full" else self.short)

    def run(self, batch: Sequence[np.ndarray], path: Path) -> list[Any]:
        from perception.detect import detect

        model = self.model if path == "full" else self.short
        return list(detect(model, list(batch), precision=self.precision))

    def encode(self, result: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        arrays = {
            "boxes": np.asarray(result.boxes, np.float64).reshape(-1, 7),
            "labels": np.asarray(result.labels, np.int64),
            "scores": np.asarray(result.scores, np.float32),
        }
        return {"classes": list(self.classes)}, arrays

    def example(self) -> np.ndarray:
        """A 32-beam scan (0.4 deg columns, 28.8k points) of flat ground 1.8 m below the sensor
        inside a round wall of 30 m radius: a real scan's spread of points over the grid."""
        elevation = np.deg2rad(np.linspace(-25.0, 15.0, 32))
        azimuth = np.deg2rad(np.arange(0.0, 360.0, 0.4))
        el, az = np.meshgrid(elevation, azimuth)
        ground = np.where(el < 0, 1.8 / np.tan(-np.minimum(el, -1e-3)), np.inf)
        r = np.minimum(ground, 30.0 / np.cos(el))  # [A, B] range to the first hit
        cloud = np.stack(
            [r * np.cos(el) * np.cos(az), r * np.cos(el) * np.sin(az), r * np.sin(el), r * 0], -1
        )
        return cloud.reshape(-1, 4).astype(np.float32)


def default_brownout_range(model: Any) -> float:
    """60% of the model's smallest x/y half-range, rounded down to the grid quantum (m)."""
    voxel = model.config.voxel
    lo_x, lo_y, _, hi_x, hi_y, _ = voxel.point_range_m
    quantum = voxel.voxel_size_m[0] * _RANGE_QUANTUM_CELLS / 2
    return max(1, int(0.6 * min(-lo_x, -lo_y, hi_x, hi_y) / quantum)) * quantum


def _shorter_range(model: Any, range_m: float) -> Any:
    """A copy of ``model`` (same weights) for the grid x, y in [-range_m, range_m).

    Raises:
        ModelError: ``range_m`` is not inside the model's range or not on the grid.
    """
    from perception.config import ConfigError
    from perception.model import Detector

    voxel = model.config.voxel
    lo_x, lo_y, lo_z, hi_x, hi_y, hi_z = voxel.point_range_m
    quantum = voxel.voxel_size_m[0] * _RANGE_QUANTUM_CELLS / 2
    if not 0 < range_m < min(-lo_x, -lo_y, hi_x, hi_y):
        raise ModelError(f"brownout_range_m={range_m} must be in (0, the model's range)")
    if abs(range_m / quantum - round(range_m / quantum)) > 1e-6:
        raise ModelError(f"brownout_range_m={range_m} must be a multiple of {quantum:g} m")
    try:
        config = replace(
            model.config,
            voxel=replace(voxel, point_range_m=(-range_m, -range_m, lo_z, range_m, range_m, hi_z)),
        )
    except ConfigError as err:
        raise ModelError(f"brownout_range_m={range_m}: {err}") from err
    short = Detector(config)
    short.load_state_dict(model.state_dict())
    return short.to(model.device).eval()


def detector_memory(model: Any) -> MemoryModel:
    """Activation bytes of one detector forward pass, from the tensor shapes (float32).

    Per request: the dense BEV stages on the H x W grid (backbone output folded over z, the
    neck's stride-4 and stride-8 maps, the head's branches). Per point: the input row and the
    sparse backbone's features of every layer at its voxel (an upper bound: at most one voxel
    per point, and inference frees most layers' outputs early).
    """
    from perception.backbone import layer_plan, output_shape

    cfg = model.config
    c, d, h, w = output_shape(cfg)
    bev, head = cfg.model.bev_channels, cfg.model.head_channels
    dense_channels = (
        c * d  # z-folded backbone output
        + 3 * bev  # reduce + two block convs
        + 3 * (2 * bev) / 4  # stride-8 branch (a quarter of the cells)
        + bev  # upsampled branch
        + 2 * bev  # concatenation
        + 3 * head  # shared + two branch convs
        + len(cfg.classes)
        + 9  # heat map and regression outputs
    )
    plan = layer_plan(cfg.voxel.num_features, cfg.model.backbone_channels)
    sparse_channels = sum(s.out_channels for s in plan)
    return MemoryModel(
        fixed_bytes_per_item=4.0 * dense_channels * h * w,
        bytes_per_unit=4.0 * (5 + cfg.voxel.num_features + sparse_channels),
    )
