"""Raw .bin scans: the KITTI/nuScenes layout is decided from the name, the size or the values,
given explicitly, or refused when it cannot be told (perception/cloud_io.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from perception.cloud_io import CloudFileError, CloudLayout, parse_fields, read_scan


def sweep(n: int = 64, seed: int = 0) -> np.ndarray:
    """A nuScenes-like sweep [n, 5]: ground and walls around a lidar 1.8 m up, intensity
    0..255, ring 0..31."""
    rng = np.random.default_rng(seed)
    xyz = rng.uniform([-40, -40, -1.9], [40, 40, 2.0], (n, 3))
    return np.column_stack([xyz, rng.integers(0, 256, n), rng.integers(0, 32, n)]).astype("<f4")


def write(path: Path, table: np.ndarray) -> Path:
    table.astype("<f4").tofile(path)
    return path


@pytest.mark.parametrize(
    ("name", "columns", "n", "layout", "how"),
    [
        ("s.pcd.bin", 5, 64, CloudLayout.NUSCENES, "file name"),  # 1280 B: also a multiple of 16
        ("s.bin", 5, 64, CloudLayout.NUSCENES, "content"),  # same bytes, renamed
        ("s.bin", 4, 80, CloudLayout.KITTI, "content"),  # 1280 B: also a multiple of 20
        ("s.bin", 4, 81, CloudLayout.KITTI, "file size"),  # 1296 B: only 16 divides
        ("s.bin", 5, 65, CloudLayout.NUSCENES, "file size"),  # 1300 B: only 20 divides
    ],
)
def test_layout_is_told_from_name_size_or_values(tmp_path, name, columns, n, layout, how):
    table = sweep(n)[:, :columns]
    scan = read_scan(write(tmp_path / name, table))
    assert (scan.layout, scan.how) == (layout, how)
    np.testing.assert_array_equal(scan.points, table[:, :4])


def test_a_nuscenes_sweep_is_never_read_as_kitti(tmp_path):
    """The misread of issue 12: 5 floats a point, a size that 16 also divides."""
    table = sweep(400)
    scan = read_scan(write(tmp_path / "sweep.bin", table))
    assert scan.layout is CloudLayout.NUSCENES and len(scan.points) == 400


@pytest.mark.parametrize(
    ("table", "why"),
    [
        (np.zeros((20, 4)), "fit both"),  # zeros are a valid ring and a valid intensity
        (np.random.default_rng(1).normal(0, 9, (20, 4)), "fit neither"),
    ],
)
def test_ambiguous_bin_is_refused_with_the_way_out(tmp_path, table, why):
    with pytest.raises(CloudFileError, match=f"ambiguous.*{why}.*--layout"):
        read_scan(write(tmp_path / "s.bin", table))


@pytest.mark.parametrize(("layout", "n"), [("kitti", 80), ("nuscenes", 64)])
def test_given_layout_wins(tmp_path, layout, n):
    scan = read_scan(write(tmp_path / "z.bin", np.zeros((20, 4))), layout=layout)
    assert scan.layout.value == layout and scan.how == "given" and len(scan.points) == n // 4


def test_fields_name_any_float_layout(tmp_path):
    table = sweep(10)
    path = write(tmp_path / "s.bin", table[:, [4, 0, 1, 2, 3]])  # ring first
    scan = read_scan(path, fields=parse_fields("_,x,y,z,intensity"))
    assert scan.layout is CloudLayout.FIELDS
    np.testing.assert_array_equal(scan.points, table[:, :4])


@pytest.mark.parametrize(
    ("name", "size", "kwargs", "message"),
    [
        ("t.bin", 17, {}, "multiple of neither 16"),
        ("t.pcd.bin", 36, {}, "truncated nuscenes"),
        ("t.bin", 20, {"layout": "kitti"}, "truncated kitti"),
        ("t.bin", 16, {"layout": "velodyne"}, "unknown .bin layout"),
        ("t.pcd", 16, {"layout": "kitti"}, "is for .bin"),
    ],
)
def test_bad_layout_requests_are_clear_errors(tmp_path, name, size, kwargs, message):
    (tmp_path / name).write_bytes(bytes(size))
    with pytest.raises(CloudFileError, match=message):
        read_scan(tmp_path / name, **kwargs)


@pytest.mark.parametrize(
    ("text", "message"), [("a,b,c", "needs x, y and z"), ("x,y,z,y", "twice"), ("x,,y,z", "empty")]
)
def test_bad_fields_are_refused(text, message):
    with pytest.raises(CloudFileError, match=message):
        parse_fields(text)
