"""Point-cloud files: round trips, foreign layouts, and malformed files."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from perception.cloud_io import CloudFileError, read_point_cloud, write_point_cloud
from perception.errors import PerceptionError

FORMATS = [
    (".bin", True),
    (".npy", True),
    (".npz", True),
    (".pcd", True),
    (".pcd", False),
    (".ply", True),
    (".ply", False),
]


def cloud(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 20, (n, 4)).astype(np.float32)


@pytest.mark.parametrize(("suffix", "binary"), FORMATS)
@pytest.mark.parametrize("n", [0, 1, 257])
def test_write_then_read_round_trips_exactly(tmp_path, suffix, binary, n):
    points = cloud(n)
    if n:
        points[0, 1] = np.nan  # NaN survives the file; detect() drops it later
    back = read_point_cloud(write_point_cloud(tmp_path / f"c{suffix}", points, binary=binary))
    assert back.dtype == np.float32 and back.shape == (n, 4)
    np.testing.assert_array_equal(back, points)


@pytest.mark.parametrize(("suffix", "binary"), FORMATS)
def test_three_column_clouds_get_zero_intensity(tmp_path, suffix, binary):
    points = cloud(5)[:, :3]
    back = read_point_cloud(write_point_cloud(tmp_path / f"c{suffix}", points, binary=binary))
    np.testing.assert_array_equal(back[:, :3], points)
    assert np.all(back[:, 3] == 0)


PCD_TYPES = [("F", 4, "<f4"), ("F", 8, "<f8"), ("U", 1, "u1"), ("I", 2, "<i2"), ("U", 4, "<u4")]


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    order=st.permutations(["x", "y", "z", "intensity", "rgb", "t"]),
    extra_type=st.sampled_from(PCD_TYPES),
    binary=st.booleans(),
    n=st.integers(0, 20),
    count_t=st.integers(1, 3),
)
def test_pcd_with_any_field_order_and_extra_fields(tmp_path, order, extra_type, binary, n, count_t):
    rng = np.random.default_rng(n)
    values = {k: rng.integers(-50, 50, n).astype(np.float32) for k in ("x", "y", "z")}
    values["intensity"] = rng.integers(0, 255, n).astype(np.float32)
    code, size, dtype = extra_type
    fields = {k: ("F", 4, "<f4", 1) for k in ("x", "y", "z", "intensity")}
    fields["rgb"] = (code, size, dtype, 1)
    fields["t"] = ("F", 8, "<f8", count_t)
    record = np.dtype([(k, fields[k][2], (fields[k][3],)) for k in order])
    table = np.zeros(n, dtype=record)
    for k in ("x", "y", "z", "intensity"):
        table[k][:, 0] = values[k]
    header = (
        f"VERSION .7\nFIELDS {' '.join(order)}\n"
        f"SIZE {' '.join(str(fields[k][1]) for k in order)}\n"
        f"TYPE {' '.join(fields[k][0] for k in order)}\n"
        f"COUNT {' '.join(str(fields[k][3]) for k in order)}\n"
        f"WIDTH {n}\nHEIGHT 1\nVIEWPOINT 0 0 0 1 0 0 0\nPOINTS {n}\n"
        f"DATA {'binary' if binary else 'ascii'}\n"
    )
    if binary:
        body = table.tobytes()
    else:
        body = "".join(
            " ".join(" ".join(str(v) for v in row[k]) for k in order) + "\n" for row in table
        ).encode()
    path = tmp_path / "foreign.pcd"
    path.write_bytes(header.encode() + body)
    back = read_point_cloud(path)
    expected = np.stack([values[k] for k in ("x", "y", "z", "intensity")], axis=1)
    np.testing.assert_array_equal(back, expected.reshape(n, 4))


@pytest.mark.parametrize("order", ["<", ">"])
def test_ply_binary_with_doubles_and_a_face_element_after_vertex(tmp_path, order):
    pts = np.array([[1.5, -2.0, 0.25], [3.0, 4.0, -1.0]])
    fmt = "binary_little_endian" if order == "<" else "binary_big_endian"
    header = (
        f"ply\nformat {fmt} 1.0\ncomment made by hand\nelement vertex 2\n"
        "property double x\nproperty double y\nproperty double z\nproperty uchar red\n"
        "element face 1\nproperty list uchar int vertex_indices\nend_header\n"
    )
    body = b"".join(struct.pack(order + "dddB", *p, 7) for p in pts)
    body += struct.pack(order + "Biii", 3, 0, 1, 0)
    (tmp_path / "m.ply").write_bytes(header.encode() + body)
    back = read_point_cloud(tmp_path / "m.ply")
    np.testing.assert_array_equal(back[:, :3], pts.astype(np.float32))
    assert np.all(back[:, 3] == 0)


def test_npy_structured_array_and_npz_simulator_frame(tmp_path):
    rec = np.zeros(3, dtype=[("intensity", "f4"), ("z", "f8"), ("y", "f4"), ("x", "f4")])
    rec["x"], rec["y"], rec["z"], rec["intensity"] = [1, 2, 3], [4, 5, 6], [7, 8, 9], 0.5
    np.save(tmp_path / "s.npy", rec)
    np.testing.assert_array_equal(read_point_cloud(tmp_path / "s.npy")[:, 0], [1, 2, 3])
    frame = cloud(4)
    np.savez(
        tmp_path / "f.npz",
        points=np.concatenate([frame, np.ones((4, 1), "f4")], 1),
        boxes=np.zeros((0, 7)),
    )
    np.testing.assert_array_equal(read_point_cloud(tmp_path / "f.npz"), frame)


MALFORMED = {
    "truncated.bin": b"\x00" * 17,
    "noxyz.pcd": b"FIELDS a b c\nSIZE 4 4 4\nTYPE F F F\nPOINTS 1\nDATA ascii\n1 2 3\n",
    "short.pcd": b"FIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nPOINTS 5\nDATA binary\n" + b"\0" * 20,
    "shortascii.pcd": b"FIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nPOINTS 2\nDATA ascii\n1 2 3\n",
    "text.pcd": b"FIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nPOINTS 1\nDATA ascii\n1 two 3\n",
    "lzf.pcd": b"FIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nPOINTS 1\nDATA binary_compressed\n",
    "nodata.pcd": b"FIELDS x y z\nSIZE 4 4 4\n",
    "mismatch.pcd": b"FIELDS x y z\nSIZE 4 4\nTYPE F F F\nPOINTS 1\nDATA ascii\n1 2 3\n",
    "badtype.pcd": b"FIELDS x y z\nSIZE 3 3 3\nTYPE F F F\nPOINTS 1\nDATA ascii\n1 2 3\n",
    "notply.ply": b"hello\nend_header\n",
    "novertex.ply": b"ply\nformat ascii 1.0\nelement face 0\nend_header\n",
    "shortvertex.ply": b"ply\nformat binary_little_endian 1.0\nelement vertex 3\n"
    b"property float x\nproperty float y\nproperty float z\nend_header\n\0\0",
    "listfirst.ply": b"ply\nformat binary_little_endian 1.0\nelement face 1\n"
    b"property list uchar int v\nelement vertex 0\nproperty float x\nend_header\n",
    "empty.npz": b"",
    "words.npy": b"\x93NUMPY garbage",
    "cloud.xyz": b"1 2 3\n",
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_files_raise_cloud_file_error(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(MALFORMED[name])
    with pytest.raises(CloudFileError, match=name.replace(".", r"\.")):
        read_point_cloud(path)
    assert issubclass(CloudFileError, PerceptionError)


@pytest.mark.parametrize("array", [np.zeros((3, 2)), np.zeros(5), np.array([["a", "b", "c"]])])
def test_npy_with_the_wrong_shape_is_rejected(tmp_path, array):
    np.save(tmp_path / "a.npy", array)
    with pytest.raises(CloudFileError, match="numeric"):
        read_point_cloud(tmp_path / "a.npy")


def test_missing_file_is_a_cloud_file_error(tmp_path):
    with pytest.raises(CloudFileError, match="cannot read"):
        read_point_cloud(tmp_path / "absent.pcd")
