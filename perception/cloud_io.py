"""Single lidar scans in files: KITTI ``.bin``, PCD, PLY, ``.npy`` and ``.npz``.

Every reader returns float32 [N, 4] = x, y, z, intensity (0 where the file has no intensity
field). Formats:
- ``.bin`` (KITTI velodyne): raw little-endian float32 records x, y, z, intensity;
- ``.pcd`` (PCL, v0.7): DATA ascii or binary, any field order, extra fields, any TYPE/SIZE,
  COUNT > 1 (the first element is used); ``binary_compressed`` is rejected with a clear error;
- ``.ply``: format ascii, binary_little_endian or binary_big_endian; the ``vertex`` element's
  x, y, z properties, other elements (faces, ...) skipped when they come after ``vertex`` or have
  no list properties;
- ``.npy``: a numeric [N, C >= 3] array or a structured array with x, y, z fields; ``.npz``: the
  array named ``points`` (a simulator frame file works as is) or the only array in the file.
Intensity is the first field named one of ``INTENSITY_NAMES``. A truncated or malformed file
raises :class:`CloudFileError` naming the file and the problem.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from perception.errors import PerceptionError

INTENSITY_NAMES = ("intensity", "i", "reflectance", "remission", "reflectivity")
SUFFIXES = (".bin", ".pcd", ".ply", ".npy", ".npz")
_PCD_TYPES = {
    ("F", 4): "f4",
    ("F", 8): "f8",
    ("I", 1): "i1",
    ("I", 2): "i2",
    ("I", 4): "i4",
    ("I", 8): "i8",
    ("U", 1): "u1",
    ("U", 2): "u2",
    ("U", 4): "u4",
    ("U", 8): "u8",
}
_PLY_TYPES = {
    "char": "i1",
    "int8": "i1",
    "uchar": "u1",
    "uint8": "u1",
    "short": "i2",
    "int16": "i2",
    "ushort": "u2",
    "uint16": "u2",
    "int": "i4",
    "int32": "i4",
    "uint": "u4",
    "uint32": "u4",
    "float": "f4",
    "float32": "f4",
    "double": "f8",
    "float64": "f8",
}
_PLY_FORMATS = {"ascii": None, "binary_little_endian": "<", "binary_big_endian": ">"}


class CloudFileError(PerceptionError):
    """A point-cloud file is missing, of an unknown type, truncated or malformed."""


def _xyzi(path: Path, columns: dict[str, np.ndarray]) -> np.ndarray:
    """[N, 4] float32 from named 1-D columns; x, y, z required."""
    missing = [k for k in "xyz" if k not in columns]
    if missing:
        raise CloudFileError(f"{path}: no {'/'.join(missing)} field (fields: {sorted(columns)})")
    inten = next((columns[k] for k in INTENSITY_NAMES if k in columns), None)
    n = len(columns["x"])
    out = np.zeros((n, 4), dtype=np.float32)
    for j, col in enumerate([columns["x"], columns["y"], columns["z"], inten]):
        if col is not None:
            out[:, j] = col
    return out


def _header(path: Path, raw: bytes, end_marker: str) -> tuple[list[list[str]], int]:
    """Tokenised header lines up to and including the line starting with ``end_marker``."""
    lines, offset = [], 0
    while True:
        end = raw.find(b"\n", offset)
        if end < 0:
            raise CloudFileError(f"{path}: header has no {end_marker!r} line")
        tokens = raw[offset:end].decode("ascii", errors="replace").split()
        offset = end + 1
        if tokens and not tokens[0].startswith(("#", "comment", "obj_info")):
            lines.append(tokens)
            if tokens[0].lower() == end_marker:
                return lines, offset


def _ascii_table(path: Path, text: bytes, rows: int, cols: int) -> np.ndarray:
    """[rows, cols] float64 from whitespace-separated text (extra trailing text ignored)."""
    try:
        values = np.array(text.split()[: rows * cols], dtype=np.float64)
    except ValueError as err:
        raise CloudFileError(f"{path}: non-numeric ASCII data ({err})") from err
    if len(values) < rows * cols:
        raise CloudFileError(
            f"{path}: truncated ASCII data: {len(values)} values, expected "
            f"{rows} points x {cols} values"
        )
    return values.reshape(rows, cols)


def _binary_table(path: Path, raw: bytes, offset: int, dtype: np.dtype, rows: int) -> np.ndarray:
    need = rows * dtype.itemsize
    if len(raw) - offset < need:
        raise CloudFileError(
            f"{path}: truncated binary data: {len(raw) - offset} bytes, "
            f"expected {need} ({rows} points x {dtype.itemsize} bytes)"
        )
    return np.frombuffer(raw, dtype=dtype, count=rows, offset=offset)


def _read_pcd(path: Path, raw: bytes) -> np.ndarray:
    lines, offset = _header(path, raw, "data")
    head = {t[0].upper(): t[1:] for t in lines}
    try:
        names = head["FIELDS"]
        sizes = [int(v) for v in head["SIZE"]]
        types = [v.upper() for v in head["TYPE"]]
        counts = [int(v) for v in head.get("COUNT", ["1"] * len(names))]
        rows = (
            int(head["POINTS"][0])
            if "POINTS" in head
            else (int(head["WIDTH"][0]) * int(head["HEIGHT"][0]))
        )
        mode = head["DATA"][0].lower()
    except (KeyError, IndexError, ValueError) as err:
        raise CloudFileError(f"{path}: malformed PCD header ({err!r} missing or invalid)") from err
    if not len(names) == len(sizes) == len(types) == len(counts):
        raise CloudFileError(f"{path}: PCD FIELDS/SIZE/TYPE/COUNT have different lengths")
    bad = [(t, s) for t, s in zip(types, sizes, strict=True) if (t, s) not in _PCD_TYPES]
    if bad:
        raise CloudFileError(f"{path}: unsupported PCD TYPE/SIZE {bad}")
    first = np.cumsum([0, *counts[:-1]])  # column of each field's first element (ASCII)
    if mode == "ascii":
        table = _ascii_table(path, raw[offset:], rows, sum(counts))
        return _xyzi(path, {n: table[:, c] for n, c in zip(names, first, strict=True)})
    if mode != "binary":
        raise CloudFileError(f"{path}: PCD DATA {mode!r} is not supported (use ascii or binary)")
    dtype = np.dtype(
        [
            (f"f{i}", "<" + _PCD_TYPES[(t, s)], (c,))
            for i, (t, s, c) in enumerate(zip(types, sizes, counts, strict=True))
        ]
    )
    table = _binary_table(path, raw, offset, dtype, rows)
    return _xyzi(path, {n: table[f"f{i}"][:, 0] for i, n in enumerate(names)})


def _read_ply(path: Path, raw: bytes) -> np.ndarray:
    lines, offset = _header(path, raw, "end_header")
    if lines[0] != ["ply"] or len(lines) < 2 or lines[1][0] != "format":
        raise CloudFileError(f"{path}: not a PLY file (must start with 'ply' and 'format')")
    if lines[1][1] not in _PLY_FORMATS:
        raise CloudFileError(f"{path}: unsupported PLY format {lines[1][1]!r}")
    order = _PLY_FORMATS[lines[1][1]]
    elements: list[tuple[str, int, list[list[str]]]] = []
    for t in lines[2:]:
        if t[0] == "element":
            elements.append((t[1], int(t[2]), []))
        elif t[0] == "property" and elements:
            elements[-1][2].append(t[1:])
    skip_rows = skip_bytes = 0
    for name, count, props in elements:
        scalar = all(p[0] != "list" and p[0] in _PLY_TYPES for p in props)
        if name == "vertex":
            if not scalar:
                raise CloudFileError(f"{path}: PLY vertex has list or unknown property types")
            names = [p[1] for p in props]
            if order is None:
                lines_after = raw[offset:].split(b"\n")[skip_rows : skip_rows + count]
                table = _ascii_table(path, b" ".join(lines_after), count, len(names))
                return _xyzi(path, {n: table[:, i] for i, n in enumerate(names)})
            dtype = np.dtype([(p[1], order + _PLY_TYPES[p[0]]) for p in props])
            table = _binary_table(path, raw, offset + skip_bytes, dtype, count)
            return _xyzi(path, {n: table[n] for n in names})
        if not scalar:
            raise CloudFileError(
                f"{path}: PLY element {name!r} with list properties comes "
                "before 'vertex'; cannot skip it"
            )
        skip_rows += count
        skip_bytes += count * sum(np.dtype(_PLY_TYPES[p[0]]).itemsize for p in props)
    raise CloudFileError(f"{path}: PLY file has no 'vertex' element")


def _from_array(path: Path, arr: np.ndarray) -> np.ndarray:
    if arr.dtype.names:
        return _xyzi(path, {n: np.asarray(arr[n]).reshape(-1) for n in arr.dtype.names})
    if arr.ndim != 2 or arr.shape[1] < 3 or not np.issubdtype(arr.dtype, np.number):
        raise CloudFileError(
            f"{path}: array must be numeric [N, C >= 3], got {arr.dtype} {list(arr.shape)}"
        )
    out = np.zeros((len(arr), 4), dtype=np.float32)
    out[:, : min(4, arr.shape[1])] = arr[:, :4]
    return out


def read_point_cloud(path: str | Path) -> np.ndarray:
    """Reads one scan as float32 [N, 4] (x, y, z, intensity); see the module docstring.

    Raises:
        CloudFileError: missing file, unknown suffix, truncated or malformed content.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise CloudFileError(
            f"{path}: unknown point-cloud suffix {suffix!r} (supported: {', '.join(SUFFIXES)})"
        )
    try:
        if suffix == ".npy":
            return _from_array(path, np.load(path, allow_pickle=False))
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as data:
                keys = list(data.keys())
                if "points" not in keys and len(keys) != 1:
                    raise CloudFileError(f"{path}: no 'points' array (arrays: {keys})")
                return _from_array(path, data["points" if "points" in keys else keys[0]])
        raw = path.read_bytes()
    except CloudFileError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise CloudFileError(f"{path}: cannot read ({err})") from err
    if suffix == ".bin":
        if len(raw) % 16:
            raise CloudFileError(
                f"{path}: truncated KITTI .bin: {len(raw)} bytes is not a "
                "multiple of 16 (float32 x, y, z, intensity)"
            )
        return np.frombuffer(raw, dtype="<f4").reshape(-1, 4).astype(np.float32)
    return _read_pcd(path, raw) if suffix == ".pcd" else _read_ply(path, raw)


def write_point_cloud(path: str | Path, points: np.ndarray, binary: bool = True) -> Path:
    """Writes x, y, z, intensity of ``points`` [N, 3 or more] (intensity 0 for 3 columns).

    ``binary`` selects binary or ASCII data for PCD and PLY. Returns the path.

    Raises:
        CloudFileError: unknown suffix, or ``points`` is not [N, >= 3].
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise CloudFileError(f"{path}: unknown point-cloud suffix {suffix!r}")
    arr = _from_array(path, np.asarray(points))  # [N, 4] float32
    if suffix == ".bin":
        path.write_bytes(arr.astype("<f4").tobytes())
    elif suffix == ".npy":
        np.save(path, arr)
    elif suffix == ".npz":
        np.savez(path, points=arr)
    else:
        n, mode = len(arr), "binary" if binary else "ascii"
        if suffix == ".pcd":
            head = (
                "# .PCD v0.7 - Point Cloud Data file format\nVERSION 0.7\n"
                "FIELDS x y z intensity\nSIZE 4 4 4 4\nTYPE F F F F\nCOUNT 1 1 1 1\n"
                f"WIDTH {n}\nHEIGHT 1\nVIEWPOINT 0 0 0 1 0 0 0\nPOINTS {n}\nDATA {mode}\n"
            )
        else:
            fmt = "binary_little_endian" if binary else "ascii"
            head = (
                f"ply\nformat {fmt} 1.0\nelement vertex {n}\nproperty float x\n"
                "property float y\nproperty float z\nproperty float intensity\nend_header\n"
            )
        body = (
            arr.astype("<f4").tobytes()
            if binary
            else "".join(f"{x!r} {y!r} {z!r} {i!r}\n" for x, y, z, i in arr.tolist()).encode()
        )
        path.write_bytes(head.encode("ascii") + body)
    return path
