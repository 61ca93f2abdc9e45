"""sensor_msgs/PointCloud2 <-> numpy structured arrays, with any field layout."""

from __future__ import annotations

from typing import Any

import numpy as np

from robomr_nodes.messages import new_message


class CloudError(ValueError):
    """A PointCloud2 whose fields, sizes or data do not agree, or a bad array to convert."""


# sensor_msgs/PointField datatype constants -> numpy base types
POINTFIELD_DTYPES: dict[int, str] = {
    1: "i1",
    2: "u1",
    3: "i2",
    4: "u2",
    5: "i4",
    6: "u4",
    7: "f4",
    8: "f8",
}
_DTYPE_TO_POINTFIELD = {np.dtype(v).str[1:]: k for k, v in POINTFIELD_DTYPES.items()}


def cloud_dtype(msg: Any) -> np.dtype:
    """The numpy dtype of one point of ``msg`` (offsets and padding as in the message).

    Raises:
        CloudError: unknown datatype, overlapping or out-of-step fields.
    """
    names, formats, offsets = [], [], []
    endian = ">" if msg.is_bigendian else "<"
    for f in msg.fields:
        if int(f.datatype) not in POINTFIELD_DTYPES:
            raise CloudError(f"field {f.name!r} has unknown PointField datatype {f.datatype}")
        base = np.dtype(endian + POINTFIELD_DTYPES[int(f.datatype)])
        count = max(int(f.count), 1)
        fmt = base if count == 1 else np.dtype((base, (count,)))
        if int(f.offset) + fmt.itemsize > int(msg.point_step):
            raise CloudError(
                f"field {f.name!r} (offset {f.offset}, {fmt.itemsize} bytes) exceeds "
                f"point_step {msg.point_step}"
            )
        names.append(f.name)
        formats.append(fmt)
        offsets.append(int(f.offset))
    if len(set(names)) != len(names):
        raise CloudError(f"duplicate field names in {names}")
    try:
        return np.dtype(
            {
                "names": names,
                "formats": formats,
                "offsets": offsets,
                "itemsize": int(msg.point_step),
            }
        )
    except ValueError as err:
        raise CloudError(f"inconsistent PointField layout: {err}") from err


def cloud_to_array(msg: Any) -> np.ndarray:
    """All points of a PointCloud2 as a structured array [height * width] (a copy).

    Raises:
        CloudError: the data is shorter than the declared size, or the layout is inconsistent.
    """
    dtype = cloud_dtype(msg)
    height, width = int(msg.height), int(msg.width)
    step, row_step = int(msg.point_step), int(msg.row_step)
    data = np.frombuffer(msg.data, dtype=np.uint8)
    if height * width == 0:
        return np.zeros(0, dtype=dtype)
    if step <= 0 or row_step < step * width:
        raise CloudError(f"row_step {row_step} < point_step {step} x width {width}")
    need = row_step * (height - 1) + step * width
    if data.size < need:
        raise CloudError(f"cloud data has {data.size} bytes, the header declares {need}")
    if row_step == step * width:
        return np.frombuffer(data[: step * width * height].tobytes(), dtype=dtype)
    rows = [data[r * row_step : r * row_step + step * width] for r in range(height)]
    return np.frombuffer(np.concatenate(rows).tobytes(), dtype=dtype)


def array_to_cloud(points: np.ndarray, header: Any, height: int = 1) -> Any:
    """A PointCloud2 of a structured array (each field a PointField; dense, little-endian).

    Raises:
        CloudError: not a structured array, or a field type PointField cannot hold.
    """
    if points.dtype.names is None:
        raise CloudError("array_to_cloud needs a structured array (see xyz_to_structured)")
    n = len(points)
    if height < 1 or n % height:
        raise CloudError(f"{n} points do not fill {height} rows")
    fields = []
    for name in points.dtype.names:
        ftype, offset = points.dtype.fields[name][:2]
        base, count = (
            (ftype.subdtype[0], int(np.prod(ftype.subdtype[1]))) if ftype.subdtype else (ftype, 1)
        )
        key = base.newbyteorder("<").str[1:]
        if key not in _DTYPE_TO_POINTFIELD:
            raise CloudError(f"field {name!r} has dtype {base} which PointField cannot hold")
        fields.append(
            new_message(
                "sensor_msgs/msg/PointField",
                name=name,
                offset=int(offset),
                datatype=_DTYPE_TO_POINTFIELD[key],
                count=count,
            )
        )
    little = points.astype(points.dtype.newbyteorder("<"), copy=False)
    data = np.frombuffer(np.ascontiguousarray(little).tobytes(), dtype=np.uint8)
    width = n // height
    has_nan = any(
        np.issubdtype(points.dtype[f].base, np.floating) and not np.all(np.isfinite(points[f]))
        for f in points.dtype.names
    )
    return new_message(
        "sensor_msgs/msg/PointCloud2",
        header=header,
        height=height,
        width=width,
        fields=fields,
        is_bigendian=False,
        point_step=points.dtype.itemsize,
        row_step=points.dtype.itemsize * width,
        data=data,
        is_dense=not has_nan,
    )


def xyz_to_structured(
    points: np.ndarray, names: tuple[str, ...] = ("x", "y", "z", "intensity", "ring")
) -> np.ndarray:
    """A structured array from a float array [N, C]; column i is named ``names[i]``.

    ``ring`` becomes uint16 (the Velodyne/Ouster convention); other columns float32.
    """
    pts = np.asarray(points)
    if pts.ndim != 2 or pts.shape[1] > len(names) or pts.shape[1] < 3:
        raise CloudError(f"points must be [N, 3..{len(names)}], got {list(pts.shape)}")
    cols = names[: pts.shape[1]]
    dtype = np.dtype([(c, np.uint16 if c == "ring" else np.float32) for c in cols])
    out = np.zeros(len(pts), dtype=dtype)
    for i, c in enumerate(cols):
        out[c] = pts[:, i]
    return out


def cloud_to_xyz(msg: Any, extra: tuple[str, ...] = ("intensity",)) -> np.ndarray:
    """Float32 [N, 3 + len(extra)]: x, y, z, then ``extra`` fields (0 where a field is absent).

    Raises:
        CloudError: the cloud has no x, y or z field, or its layout is broken.
    """
    arr = cloud_to_array(msg)
    names = arr.dtype.names or ()
    missing = [c for c in ("x", "y", "z") if c not in names]
    if missing:
        raise CloudError(f"cloud has no {missing} field(s); fields: {list(names)}")
    out = np.zeros((len(arr), 3 + len(extra)), dtype=np.float32)
    for i, name in enumerate(("x", "y", "z", *extra)):
        if name in names:
            out[:, i] = arr[name] if arr[name].ndim == 1 else arr[name][:, 0]
    return out
