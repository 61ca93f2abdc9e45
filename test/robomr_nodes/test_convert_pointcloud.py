"""PointCloud2 <-> structured arrays with arbitrary field layouts (property tests)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from robomr_nodes.convert.pointcloud import (
    CloudError,
    array_to_cloud,
    cloud_to_array,
    cloud_to_xyz,
    xyz_to_structured,
)
from robomr_nodes.messages import deserialize, header, new_message, serialize

BASE_TYPES = ["f4", "f8", "u1", "i1", "u2", "i2", "u4", "i4"]


@st.composite
def layouts(draw: st.DrawFn) -> tuple[np.dtype, bool]:
    """A random point layout: x/y/z plus extra fields, shuffled, padded, either endianness."""
    names = [
        "x",
        "y",
        "z",
        *draw(st.lists(st.sampled_from(["intensity", "ring", "t", "normal", "rgb"]), unique=True)),
    ]
    names = draw(st.permutations(names))
    big = draw(st.booleans())
    end = ">" if big else "<"
    fields, offset = [], 0
    for name in names:
        base = "f4" if name in "xyz" else draw(st.sampled_from(BASE_TYPES))
        count = 3 if name == "normal" else 1
        offset += draw(st.integers(0, 3))  # padding between fields
        fields.append(
            (name, np.dtype((end + base, (count,))) if count > 1 else np.dtype(end + base), offset)
        )
        offset += np.dtype(base).itemsize * count
    itemsize = offset + draw(st.integers(0, 8))  # padding at the end of each point
    return np.dtype(
        {
            "names": [f[0] for f in fields],
            "formats": [f[1] for f in fields],
            "offsets": [f[2] for f in fields],
            "itemsize": itemsize,
        }
    ), big


def _random_points(dtype: np.dtype, n: int, rng: np.random.Generator) -> np.ndarray:
    pts = np.zeros(n, dtype=dtype)
    for name in dtype.names:
        base = dtype[name].base
        shape = pts[name].shape
        if np.issubdtype(base, np.floating):
            pts[name] = rng.normal(size=shape) * 50
        else:
            info = np.iinfo(base)
            pts[name] = rng.integers(info.min, info.max, size=shape, endpoint=True)
    return pts


def _message_of(points: np.ndarray, big: bool, height: int = 1) -> object:
    """A PointCloud2 with exactly the given layout (array_to_cloud always writes dense LE)."""
    fields = []
    codes = {"i1": 1, "u1": 2, "i2": 3, "u2": 4, "i4": 5, "u4": 6, "f4": 7, "f8": 8}
    for name in points.dtype.names:
        ftype, offset = points.dtype.fields[name][:2]
        base, count = (ftype.subdtype[0], ftype.subdtype[1][0]) if ftype.subdtype else (ftype, 1)
        fields.append(
            new_message(
                "sensor_msgs/msg/PointField",
                name=name,
                offset=offset,
                datatype=codes[base.str[1:]],
                count=count,
            )
        )
    width = len(points) // height
    return new_message(
        "sensor_msgs/msg/PointCloud2",
        header=header(1, "lidar"),
        height=height,
        width=width,
        fields=fields,
        is_bigendian=big,
        point_step=points.dtype.itemsize,
        row_step=points.dtype.itemsize * width,
        data=np.frombuffer(points.tobytes(), dtype=np.uint8),
        is_dense=True,
    )


@settings(max_examples=60, deadline=None)
@given(layout=layouts(), n=st.integers(0, 50), seed=st.integers(0, 2**31))
def test_any_layout_reads_back_exactly(layout: tuple[np.dtype, bool], n: int, seed: int) -> None:
    dtype, big = layout
    points = _random_points(dtype, n, np.random.default_rng(seed))
    msg = _message_of(points, big)
    # through CDR too: what a subscriber on another process would receive
    msg = deserialize(serialize(msg, "sensor_msgs/msg/PointCloud2"), "sensor_msgs/msg/PointCloud2")
    back = cloud_to_array(msg)
    for name in dtype.names:
        np.testing.assert_array_equal(back[name], points[name])  # bit-exact: no arithmetic
    xyz = cloud_to_xyz(msg, extra=("intensity", "absent"))
    np.testing.assert_array_equal(xyz[:, 0], points["x"].astype(np.float32))
    assert np.all(xyz[:, 4] == 0.0)  # missing extra field reads as 0
    # and re-encoding with array_to_cloud (dense little-endian) keeps every value
    again = cloud_to_array(array_to_cloud(back, header(1, "lidar")))
    for name in dtype.names:
        np.testing.assert_array_equal(again[name], points[name])


def test_row_padding_is_skipped() -> None:
    pts = xyz_to_structured(np.arange(12, dtype=np.float32).reshape(4, 3))
    msg = _message_of(pts, False, height=2)
    step = pts.dtype.itemsize
    padded = np.concatenate(
        [
            np.frombuffer(pts[:2].tobytes(), np.uint8),
            np.zeros(5, np.uint8),
            np.frombuffer(pts[2:].tobytes(), np.uint8),
            np.zeros(5, np.uint8),
        ]
    )
    msg.row_step = 2 * step + 5
    msg.data = padded
    np.testing.assert_array_equal(cloud_to_xyz(msg, extra=()), pts.view(np.float32).reshape(4, 3))


def test_truncated_data_is_an_error_not_a_short_cloud() -> None:
    msg = array_to_cloud(xyz_to_structured(np.ones((10, 4), np.float32)), header(1, "l"))
    msg.data = msg.data[:-3]
    with pytest.raises(CloudError, match="declares"):
        cloud_to_array(msg)


def test_cloud_without_xyz_is_an_error() -> None:
    pts = np.zeros(3, dtype=[("intensity", "f4")])
    with pytest.raises(CloudError, match=r"no \['x', 'y', 'z'\] field"):
        cloud_to_xyz(array_to_cloud(pts, header(1, "l")))


def test_empty_cloud_reads_as_zero_points() -> None:
    msg = array_to_cloud(xyz_to_structured(np.zeros((0, 3), np.float32)), header(1, "l"))
    assert cloud_to_xyz(msg).shape == (0, 4)


def test_nan_points_mark_the_cloud_not_dense() -> None:
    pts = np.ones((3, 3), np.float32)
    pts[1, 2] = np.nan
    assert array_to_cloud(xyz_to_structured(pts), header(1, "l")).is_dense is False


def test_unknown_datatype_and_overflowing_field_are_errors() -> None:
    msg = array_to_cloud(xyz_to_structured(np.ones((2, 3), np.float32)), header(1, "l"))
    msg.fields[0].datatype = 42
    with pytest.raises(CloudError, match="unknown PointField datatype 42"):
        cloud_to_array(msg)
    msg.fields[0].datatype = 8  # float64 at offset 0 is fine, but z at offset 8 + 8 > 12
    msg.fields[2].datatype = 8
    with pytest.raises(CloudError, match="exceeds point_step"):
        cloud_to_array(msg)
