"""The simulator's datasets as the detector reads them (format: docs/conventions.md).

Parsing and the dtype/shape checks of ``meta.json`` and the frame files are the simulator's own
(``sim.dataset.load_meta`` and ``sim.dataset.load_frame``: one reader of the format). This module
adds what the detector relies on: the dataset's classes equal ``CLASSES``, labels index into them,
boxes are finite with positive sizes, and meta.json's frame count matches the files. Frames are
read on demand, so a dataset larger than memory can be trained on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from perception.config import CLASSES
from perception.deskew import ScanMotion
from perception.errors import PerceptionError
from perception.sensor_input import SensorSetup
from sim.dataset import DatasetError as SimDatasetError
from sim.dataset import DatasetFrame as Frame
from sim.dataset import load_frame as sim_load_frame
from sim.dataset import load_meta

__all__ = ["DatasetError", "Frame", "SimDataset", "load_frame"]


class DatasetError(PerceptionError):
    """A dataset directory, its meta.json or one of its frame files is malformed."""


def load_frame(path: str | Path) -> Frame:
    """Reads and checks one frame file.

    Raises:
        DatasetError: unreadable file, missing or mis-shaped array (the simulator's checks),
            labels outside CLASSES, or non-finite / non-positive box sizes.
    """
    try:
        frame = sim_load_frame(path)
    except SimDatasetError as err:
        raise DatasetError(str(err)) from err
    labels, boxes = frame.labels, frame.boxes
    if len(labels) and (labels.min() < 0 or labels.max() >= len(CLASSES)):
        raise DatasetError(f"{path}: labels must be in [0, {len(CLASSES)}), got {labels.tolist()}")
    if not np.all(np.isfinite(boxes)) or np.any(boxes[:, 3:6] <= 0):
        raise DatasetError(f"{path}: boxes must be finite with positive sizes")
    return frame


class SimDataset:
    """The frames of a simulator dataset directory, read on demand.

    Raises:
        DatasetError: (at construction) bad meta.json, classes other than CLASSES, no frames, or
            a frame count that differs from meta.json's ``num_frames``.
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        try:
            self.meta: dict[str, Any] = load_meta(self.directory)
        except SimDatasetError as err:
            raise DatasetError(f"{err} (write a dataset with `robomr sim dataset`)") from err
        names = self.meta.get("classes")
        if names is not None and tuple(names) != CLASSES:
            raise DatasetError(f"{self.directory}: classes {names} differ from {list(CLASSES)}")
        self.frame_paths = sorted((self.directory / "frames").glob("*.npz"))
        if not self.frame_paths:
            raise DatasetError(f"{self.directory}/frames holds no .npz frame files")
        expected = self.meta.get("num_frames")
        if expected is not None and expected != len(self.frame_paths):
            raise DatasetError(
                f"{self.directory}: meta.json says {expected} frames, "
                f"{len(self.frame_paths)} found in frames/"
            )

    def __len__(self) -> int:
        return len(self.frame_paths)

    def __getitem__(self, index: int) -> Frame:
        return load_frame(self.frame_paths[index])

    def setup(self, frame: Frame) -> SensorSetup:
        """The lidar's mounting for a frame of this dataset: the frame's ``T_base_lidar``
        (datasets with varied sensors) or the dataset's one lidar height (meta.json)."""
        if frame.T_base_lidar is not None:
            return SensorSetup.from_transform(frame.T_base_lidar, layout="sim")
        height = self.meta.get("lidar_height_m") or 1.8
        return SensorSetup(height_m=float(height), layout="sim")

    def scan_motion(self, frame: Frame) -> ScanMotion | None:
        """How the lidar moved during the frame's scan, as the robot's odometry gives it: the
        frame's forward speed and yaw rate (datasets with varied sensors) over its lidar's scan
        period, starting at azimuth -pi and turning counter-clockwise (``sim.lidar``). None for
        a frame taken standing still (no rolling shutter to undo)."""
        if frame.ego_speed_mps == 0.0 and frame.ego_yaw_rate_radps == 0.0:
            return None
        lidar = self.meta.get("lidar")
        if frame.sensor >= 0:
            name = self.meta["variation"]["sensors"][frame.sensor]
            lidar = self.meta["sensors"][name]
        period = float((lidar or {}).get("scan_period_s", 0.1))
        return ScanMotion((frame.ego_speed_mps, 0.0, 0.0), frame.ego_yaw_rate_radps, period)
