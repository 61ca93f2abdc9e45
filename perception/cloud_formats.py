"""Parsers of self-describing point-cloud files: PCD (v0.7), PLY and numpy arrays.

Each returns float32 [N, 4] = x, y, z, intensity (0 where the file has no intensity field);
``perception.cloud_io`` is the public entry point (it also reads raw ``.bin`` scans).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from perception.errors import PerceptionError

INTENSITY_NAMES = ("intensity", "i", "reflectance", "remission", "reflectivity")
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


def _real(dtype: np.dtype) -> bool:
    """Integers, floats and bools: what a coordinate column may hold."""
    return dtype.kind == "b" or (
        np.issubdtype(dtype, np.number) and not np.issubdtype(dtype, np.complexfloating)
    )


def xyzi(path: Path, columns: dict[str, np.ndarray]) -> np.ndarray:
    """[N, 4] float32 from named 1-D columns; x, y, z required."""
    missing = [k for k in "xyz" if k not in columns]
    if missing:
        raise CloudFileError(f"{path}: no {'/'.join(missing)} field (fields: {sorted(columns)})")
    inten = next((columns[k] for k in INTENSITY_NAMES if k in columns), None)
    n = len(columns["x"])
    out = np.zeros((n, 4), dtype=np.float32)
    for j, (name, col) in enumerate(
        zip("xyzi", [columns[k] for k in "xyz"] + [inten], strict=True)
    ):
        if col is None:
            continue
        if len(col) != n or not (np.issubdtype(col.dtype, np.number) or col.dtype == bool):
            raise CloudFileError(f"{path}: field {name!r} is not one number per point")
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


def read_pcd(path: Path, raw: bytes) -> np.ndarray:
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
    if rows < 0 or min(counts, default=1) < 1:
        raise CloudFileError(f"{path}: PCD POINTS {rows} or COUNT {counts} out of range")
    bad = [(t, s) for t, s in zip(types, sizes, strict=True) if (t, s) not in _PCD_TYPES]
    if bad:
        raise CloudFileError(f"{path}: unsupported PCD TYPE/SIZE {bad}")
    first = np.cumsum([0, *counts[:-1]])  # column of each field's first element (ASCII)
    if mode == "ascii":
        table = _ascii_table(path, raw[offset:], rows, sum(counts))
        return xyzi(path, {n: table[:, c] for n, c in zip(names, first, strict=True)})
    if mode != "binary":
        raise CloudFileError(f"{path}: PCD DATA {mode!r} is not supported (use ascii or binary)")
    try:
        dtype = np.dtype(
            [
                (f"f{i}", "<" + _PCD_TYPES[(t, s)], (c,))
                for i, (t, s, c) in enumerate(zip(types, sizes, counts, strict=True))
            ]
        )
    except (ValueError, OverflowError, MemoryError) as err:
        raise CloudFileError(f"{path}: PCD field layout is impossible ({err})") from None
    table = _binary_table(path, raw, offset, dtype, rows)
    return xyzi(path, {n: table[f"f{i}"][:, 0] for i, n in enumerate(names)})


def _ply_header(path: Path, lines: list[list[str]]) -> tuple[str | None, list]:
    """(byte order or None for ASCII, [(element, count, properties)]) of a PLY header."""
    if lines[0] != ["ply"] or len(lines) < 2 or lines[1][0] != "format" or len(lines[1]) < 2:
        raise CloudFileError(f"{path}: not a PLY file (must start with 'ply' and 'format')")
    if lines[1][1] not in _PLY_FORMATS:
        raise CloudFileError(f"{path}: unsupported PLY format {lines[1][1]!r}")
    elements: list[tuple[str, int, list[list[str]]]] = []
    for t in lines[2:]:
        if t[0] == "element":
            if len(t) != 3 or not t[2].isdigit():
                raise CloudFileError(f"{path}: malformed PLY line {' '.join(t)!r}")
            elements.append((t[1], int(t[2]), []))
        elif t[0] == "property" and elements:
            if len(t) < 3 or (t[1] == "list" and len(t) < 5):
                raise CloudFileError(f"{path}: malformed PLY line {' '.join(t)!r}")
            elements[-1][2].append(t[1:])
    if not any(name == "vertex" for name, _, _ in elements):
        found = ", ".join(name for name, _, _ in elements) or "none"
        raise CloudFileError(f"{path}: PLY file has no 'vertex' element (elements: {found})")
    return _PLY_FORMATS[lines[1][1]], elements


def read_ply(path: Path, raw: bytes) -> np.ndarray:
    lines, offset = _header(path, raw, "end_header")
    order, elements = _ply_header(path, lines)
    skip_rows = skip_bytes = 0
    for name, count, props in elements:
        scalar = all(p[0] != "list" and p[0] in _PLY_TYPES for p in props)
        if name == "vertex":
            if not scalar:
                raise CloudFileError(f"{path}: PLY vertex has list or unknown property types")
            names = [p[1] for p in props]
            if len(set(names)) != len(names):
                raise CloudFileError(f"{path}: PLY vertex has duplicate properties {names}")
            if order is None:
                lines_after = raw[offset:].split(b"\n")[skip_rows : skip_rows + count]
                table = _ascii_table(path, b" ".join(lines_after), count, len(names))
                return xyzi(path, {n: table[:, i] for i, n in enumerate(names)})
            dtype = np.dtype([(p[1], order + _PLY_TYPES[p[0]]) for p in props])
            table = _binary_table(path, raw, offset + skip_bytes, dtype, count)
            return xyzi(path, {n: table[n] for n in names})
        if not scalar:
            raise CloudFileError(
                f"{path}: PLY element {name!r} with list properties comes "
                "before 'vertex'; cannot skip it"
            )
        skip_rows += count
        skip_bytes += count * sum(np.dtype(_PLY_TYPES[p[0]]).itemsize for p in props)
    raise AssertionError("unreachable: _ply_header checked for a vertex element")


def from_array(path: Path, arr: np.ndarray) -> np.ndarray:
    """[N, 4] float32 of a numeric [N, C >= 3] array or a structured array with x, y, z."""
    if arr.dtype.names:
        if arr.ndim != 1:
            raise CloudFileError(f"{path}: structured array must be 1-D, got {list(arr.shape)}")
        # a field with several elements per point (COUNT > 1) gives its first one
        try:
            cols = {n: np.asarray(arr[n]).reshape(len(arr), -1)[:, 0] for n in arr.dtype.names}
        except (ValueError, IndexError):
            raise CloudFileError(f"{path}: a field of the structured array is empty") from None
        return xyzi(path, cols)
    if arr.ndim != 2 or arr.shape[1] < 3 or not _real(arr.dtype):
        raise CloudFileError(
            f"{path}: array must be numeric [N, C >= 3], got {arr.dtype} {list(arr.shape)}"
        )
    out = np.zeros((len(arr), 4), dtype=np.float32)
    out[:, : min(4, arr.shape[1])] = arr[:, :4]
    return out
