"""Dataset writer and reader: format of docs/conventions.md, byte reproducibility, errors."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from sim.dataset import (
    FRAME_ARRAYS,
    DatasetError,
    iter_dataset,
    load_frame,
    load_meta,
    write_dataset,
    write_npz,
)
from sim.lidar import LidarConfig
from sim.materials import CLASSES

SMALL_LIDAR = LidarConfig(beams=16, azimuth_resolution_deg=1.0)  # fast: 5,760 rays a frame


def digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ds") / "a"
    return write_dataset(
        out, 3, scenario="occluded-target", seed=11, lidar=SMALL_LIDAR, frames_per_scene=2
    )


def test_frames_read_back_with_the_documented_arrays(dataset) -> None:
    frames = list(iter_dataset(dataset))
    assert [f.path.name for f in frames] == ["000000.npz", "000001.npz", "000002.npz"]
    for f in frames:
        n, m = len(f.points), len(f.boxes)
        assert f.points.dtype == np.float32 and f.points.shape == (n, 5)
        assert f.boxes.dtype == np.float32 and f.boxes.shape == (m, 7) and m > 5
        assert set(np.unique(f.labels)) <= set(range(len(CLASSES)))
        assert np.array_equal(
            f.num_points, np.bincount(f.point_object[f.point_object >= 0], minlength=m)
        )
        assert np.all((f.occlusion >= 0) & (f.occlusion <= 1))
        assert f.T_world_lidar.dtype == np.float64 and f.T_world_lidar.shape == (4, 4)
        assert 0 <= f.target_index < m and CLASSES[f.labels[f.target_index]] == "car"


def test_first_frame_of_a_scene_is_the_occluded_start_view(dataset) -> None:
    meta = load_meta(dataset)
    first = load_frame(dataset / "frames" / "000000.npz")
    lo, hi = meta["scenario_config"]["target_occlusion_range"]
    assert lo <= first.occlusion[first.target_index] <= hi
    assert (
        meta["num_frames"] == 3
        and meta["classes"] == list(CLASSES)
        and meta["lidar"]["beams"] == 16
    )
    assert len(meta["scene_seeds"]) == 2  # frames_per_scene=2: frames 0-1, then 2


def test_same_seed_writes_identical_bytes_other_seed_differs(dataset, tmp_path) -> None:
    again = write_dataset(
        tmp_path / "b",
        3,
        scenario="occluded-target",
        seed=11,
        lidar=SMALL_LIDAR,
        frames_per_scene=2,
    )
    assert digest(again) == digest(dataset)
    other = write_dataset(tmp_path / "c", 1, scenario="occluded-target", seed=12, lidar=SMALL_LIDAR)
    assert digest(other)["frames/000000.npz"] != digest(dataset)["frames/000000.npz"]


def test_writing_into_a_used_directory_is_refused(dataset) -> None:
    with pytest.raises(DatasetError, match="not empty"):
        write_dataset(dataset, 1, lidar=SMALL_LIDAR)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"frames": 0}, "frames"),
        ({"frames": 2, "frames_per_scene": 0}, "frames_per_scene"),
        ({"frames": 1, "seed": -1}, "seed"),
    ],
)
def test_bad_arguments_are_refused_naming_the_field(tmp_path, kwargs, field) -> None:
    with pytest.raises(DatasetError, match=field):
        write_dataset(tmp_path / "x", lidar=SMALL_LIDAR, **kwargs)


def _good_arrays(dataset: Path) -> dict[str, np.ndarray]:
    with np.load(dataset / "frames" / "000000.npz") as npz:
        return {k: npz[k] for k in FRAME_ARRAYS}


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda a: a.pop("boxes"), "missing array 'boxes'"),
        (lambda a: a.update(points=a["points"].astype(np.float64)), "points must be float32"),
        (lambda a: a.update(labels=a["labels"][:-1]), "labels has shape"),
        (lambda a: a.update(target_index=np.array(999, dtype=np.int32)), "target_index=999"),
    ],
)
def test_malformed_frames_raise_dataset_error_naming_the_problem(
    dataset, tmp_path, mutate, message
) -> None:
    arrays = _good_arrays(dataset)
    mutate(arrays)
    write_npz(tmp_path / "bad.npz", arrays)
    with pytest.raises(DatasetError, match=message):
        load_frame(tmp_path / "bad.npz")


def test_missing_or_corrupt_files_raise_dataset_error(dataset, tmp_path) -> None:
    with pytest.raises(DatasetError, match="cannot read"):
        load_frame(tmp_path / "nope.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(DatasetError, match=r"not a valid \.npz"):
        load_frame(tmp_path / "junk.npz")
    with pytest.raises(DatasetError, match=r"meta\.json"):
        load_meta(tmp_path)
    (tmp_path / "meta.json").write_text(
        json.dumps({"format": "robomr-sim-dataset", "version": 1, "num_frames": 5})
    )
    with pytest.raises(DatasetError, match="says 5 frames"):
        list(iter_dataset(tmp_path))


def test_npz_writer_uses_fixed_timestamps(tmp_path) -> None:
    write_npz(tmp_path / "a.npz", {"x": np.arange(3)})
    with zipfile.ZipFile(tmp_path / "a.npz") as zf:
        assert {i.date_time for i in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}
    assert np.array_equal(np.load(tmp_path / "a.npz")["x"], np.arange(3))


def test_varied_datasets_mix_sensors_and_carry_the_mounting(tmp_path) -> None:
    from sim.variation import Variation

    variation = Variation(sensors=("vlp16", "os1-64"), height_range_m=(0.9, 1.1))
    a = write_dataset(tmp_path / "a", 4, seed=5, frames_per_scene=2, variation=variation)
    b = write_dataset(tmp_path / "b", 4, seed=5, frames_per_scene=2, variation=variation)
    meta = load_meta(a)
    assert meta["lidar"] is None and sorted(meta["sensors"]) == ["os1-64", "vlp16"]
    frames = list(iter_dataset(a))
    for f in frames:
        assert f.T_base_lidar is not None and 0.9 <= f.T_base_lidar[2, 3] <= 1.1
        assert f.sensor in (0, 1) and f.body is not None and len(f.body) == len(f.boxes)
        rings = int(f.points[:, 4].max()) + 1
        assert rings <= (16 if f.sensor == 0 else 64)
    files_a, files_b = sorted((a / "frames").iterdir()), sorted((b / "frames").iterdir())
    for fa, fb in zip(files_a, files_b, strict=True):
        assert fa.read_bytes() == fb.read_bytes()  # a seed fixes the bytes
