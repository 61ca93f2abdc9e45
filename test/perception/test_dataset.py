"""The simulator dataset reader and the synthetic writer that stands in for the simulator."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from geometry.boxes import points_in_boxes
from perception.dataset import DatasetError, SimDataset, load_frame
from perception.synthetic import SyntheticConfig, SyntheticError, synthetic_frame
from sim.dataset import FRAME_ARRAYS


def test_reads_every_frame_with_the_documented_fields(synthetic_dataset):
    ds = SimDataset(synthetic_dataset)
    assert len(ds) == 4 and ds.meta["format"] == "robomr-sim-dataset"
    frame = ds[0]
    assert frame.path.name == "000000.npz" and frame.points.shape[1] == 5
    assert frame.points.dtype == np.float32 and frame.boxes.shape == (len(frame.labels), 7)
    assert frame.T_world_lidar.shape == (4, 4) and -1 <= frame.target_index < len(frame.boxes)


def test_synthetic_ground_truth_is_consistent_with_its_points():
    frame = synthetic_frame(0, SyntheticConfig(vehicles=(5, 5), obstacles=(3, 3)))
    hit = np.bincount(
        frame["point_object"][frame["point_object"] >= 0], minlength=len(frame["boxes"])
    )
    np.testing.assert_array_equal(hit, frame["num_points"])
    # Points attributed to a box lie in it (2 cm range noise: grow the box by 10 cm).
    owner = points_in_boxes(frame["points"], frame["boxes"], margin_m=0.1)
    on_object = frame["point_object"] >= 0
    np.testing.assert_array_equal(owner[on_object], frame["point_object"][on_object])
    assert np.all((frame["occlusion"] >= 0) & (frame["occlusion"] <= 1))
    assert np.all(frame["occlusion"][frame["num_points"] == 0] == 1.0)


def test_synthetic_frames_are_reproducible_from_the_seed():
    a, b = synthetic_frame(3, SyntheticConfig(seed=5)), synthetic_frame(3, SyntheticConfig(seed=5))
    for key in FRAME_ARRAYS:
        np.testing.assert_array_equal(a[key], b[key])
    assert not np.array_equal(a["boxes"], synthetic_frame(3, SyntheticConfig(seed=6))["boxes"])


@pytest.mark.parametrize(
    "kwargs",
    [{"num_frames": 0}, {"beams": 1}, {"vehicles": (3, 1)}, {"elevation_deg": (10.0, -10.0)}],
)
def test_synthetic_config_rejects_out_of_bounds_values(kwargs):
    with pytest.raises(SyntheticError, match=next(iter(kwargs))):
        SyntheticConfig(**kwargs)


@pytest.fixture
def dataset_copy(synthetic_dataset, tmp_path):
    return shutil.copytree(synthetic_dataset, tmp_path / "copy")


@pytest.mark.parametrize(
    ("meta", "message"),
    [
        (None, r"meta\.json"),
        ("{not json", "not valid JSON"),
        ({"format": "kitti", "version": 1}, "robomr-sim-dataset"),
        ({"format": "robomr-sim-dataset", "version": 2}, "version"),
        ({"format": "robomr-sim-dataset", "version": 1, "classes": ["car"]}, "classes"),
    ],
)
def test_bad_meta_json_is_rejected(dataset_copy, meta, message):
    path = dataset_copy / "meta.json"
    if meta is None:
        path.unlink()
    else:
        path.write_text(meta if isinstance(meta, str) else json.dumps(meta))
    with pytest.raises(DatasetError, match=message):
        SimDataset(dataset_copy)


def test_a_frame_count_other_than_meta_json_says_is_rejected(dataset_copy):
    sorted((dataset_copy / "frames").glob("*.npz"))[-1].unlink()
    with pytest.raises(DatasetError, match="4 frames, 3 found"):
        SimDataset(dataset_copy)


def test_a_dataset_without_frames_is_rejected(dataset_copy):
    for f in (dataset_copy / "frames").glob("*.npz"):
        f.unlink()
    with pytest.raises(DatasetError, match=r"no \.npz"):
        SimDataset(dataset_copy)


def _rewrite(path, **changes):
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    arrays.update(changes)
    for key in [k for k, v in changes.items() if v is None]:
        del arrays[key]
    np.savez(path, **arrays)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"boxes": None}, "missing array 'boxes'"),
        ({"points": np.zeros((3, 4), np.float32)}, "points has shape"),
        ({"labels": np.zeros(99, np.int32)}, "labels has shape"),
        ({"T_world_lidar": np.eye(3)}, "T_world_lidar"),
        ({"target_index": np.int32(10_000)}, "target_index"),
    ],
)
def test_malformed_frames_name_the_field(dataset_copy, changes, message):
    path = sorted((dataset_copy / "frames").glob("*.npz"))[0]
    _rewrite(path, **changes)
    with pytest.raises(DatasetError, match=message):
        load_frame(path)


def test_bad_labels_and_sizes_are_rejected(dataset_copy):
    path = sorted((dataset_copy / "frames").glob("*.npz"))[0]
    with np.load(path) as data:
        labels, boxes = data["labels"].copy(), data["boxes"].copy()
    labels[0] = 7
    _rewrite(path, labels=labels)
    with pytest.raises(DatasetError, match="labels"):
        load_frame(path)
    boxes[0, 3] = -1.0
    _rewrite(path, labels=np.zeros_like(labels), boxes=boxes)
    with pytest.raises(DatasetError, match="positive sizes"):
        load_frame(path)


def test_a_corrupt_frame_file_is_a_dataset_error(dataset_copy):
    path = sorted((dataset_copy / "frames").glob("*.npz"))[0]
    path.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(DatasetError, match="not a valid"):
        load_frame(path)
