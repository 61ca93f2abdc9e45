"""Single lidar scans in files: raw ``.bin`` (KITTI, nuScenes, or named fields), PCD, PLY,
``.npy`` and ``.npz``.

:func:`read_scan` returns a :class:`ScanFile`: float32 points [N, 4] = x, y, z, intensity (0
where the file has no intensity field) with the layout they were read with (``layout``,
``fields``, and ``how`` it was decided), so that callers can treat sensors differently (KITTI
intensity is 0..1, nuScenes 0..255). :func:`read_point_cloud` returns the points alone.

Formats:
- ``.bin``: raw little-endian float32 records without a header. Layouts: KITTI (x, y, z,
  intensity: 16 bytes a point) and nuScenes (x, y, z, intensity, ring: 20 bytes). The layout is
  decided, in order, by an explicit ``layout``/``fields``; the nuScenes name ``*.pcd.bin``; the
  file size (a multiple of 16 or of 20 bytes only); and when both fit, the content: a nuScenes
  ring column holds integers 0..255, a real intensity column is never negative. When the
  content fits both or neither, reading is refused (:class:`CloudFileError` asks for
  ``layout``) instead of guessing: a 5-float scan read as 4 floats gives garbage boxes.
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

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import numpy as np

from perception.cloud_formats import (
    INTENSITY_NAMES,
    CloudFileError,
    from_array,
    read_pcd,
    read_ply,
    xyzi,
)

__all__ = [
    "INTENSITY_NAMES",
    "LAYOUT_FIELDS",
    "SUFFIXES",
    "CloudFileError",
    "CloudLayout",
    "ScanFile",
    "parse_fields",
    "read_point_cloud",
    "read_scan",
    "write_point_cloud",
]

SUFFIXES = (".bin", ".pcd", ".ply", ".npy", ".npz")


class CloudLayout(Enum):
    """How the values of a scan file were laid out."""

    KITTI = "kitti"  # .bin: float32 x, y, z, intensity (intensity 0..1)
    NUSCENES = "nuscenes"  # .bin: float32 x, y, z, intensity (0..255), ring
    FIELDS = "fields"  # .bin: float32 columns named by the caller
    HEADER = "header"  # PCD, PLY, npy, npz: the file names its own fields


LAYOUT_FIELDS: dict[CloudLayout, tuple[str, ...]] = {
    CloudLayout.KITTI: ("x", "y", "z", "intensity"),
    CloudLayout.NUSCENES: ("x", "y", "z", "intensity", "ring"),
}


@dataclass(frozen=True)
class ScanFile:
    """A scan read from a file.

    Attributes:
        path: the file.
        points: float32 [N, 4] x, y, z (m), intensity (the file's own scale).
        layout: how the values were laid out.
        fields: the file's fields in order (for ``.bin``: one float32 each).
        how: how the layout was decided ("given", "file name", "file size", "content",
            "header").
    """

    path: Path
    points: np.ndarray  # [N, 4]
    layout: CloudLayout
    fields: tuple[str, ...]
    how: str


def parse_fields(text: str) -> tuple[str, ...]:
    """``"x,y,z,intensity,ring"`` -> field names (``_`` for a column to ignore).

    Raises:
        CloudFileError: no x, y or z, a repeated name, or an empty name.
    """
    names = tuple(n.strip() for n in text.split(","))
    if any(not n for n in names):
        raise CloudFileError(f"--fields {text!r}: empty field name")
    missing = [k for k in "xyz" if k not in names]
    if missing:
        raise CloudFileError(f"--fields {text!r}: needs x, y and z (missing {missing})")
    named = [n for n in names if n != "_"]
    if len(set(named)) != len(named):
        raise CloudFileError(f"--fields {text!r}: a field is named twice")
    return names


def _ring_like(col: np.ndarray) -> bool:
    return bool(np.all((col >= 0) & (col <= 255) & (col == np.round(col))))


def _fits(layout: CloudLayout, table: np.ndarray) -> bool | None:
    """Whether finite rows look like ``layout`` (None: no finite row to judge)."""
    rows = table[np.all(np.isfinite(table), axis=1)]
    if not len(rows):
        return None
    plausible = bool(np.all(np.abs(rows[:, :3]) < 1e4) and np.all(rows[:, 3] >= 0))
    if layout is CloudLayout.NUSCENES:
        return plausible and _ring_like(rows[:, 4])
    return plausible


def _bin_layout(path: Path, raw: bytes) -> tuple[CloudLayout, str]:
    """The layout of a ``.bin`` file with no layout given (module docstring)."""
    if path.name.lower().endswith(".pcd.bin"):
        return CloudLayout.NUSCENES, "file name"
    sizes = {CloudLayout.KITTI: 16, CloudLayout.NUSCENES: 20}
    fitting = [lay for lay, size in sizes.items() if len(raw) % size == 0]
    if not fitting:
        raise CloudFileError(
            f"{path}: {len(raw)} bytes is a multiple of neither 16 (KITTI: x, y, z, intensity) "
            "nor 20 (nuScenes: ..., ring) bytes: truncated, or give the layout (--fields)"
        )
    if len(fitting) == 1:
        return fitting[0], "file size"
    verdict = {
        lay: _fits(lay, np.frombuffer(raw, "<f4").reshape(-1, sizes[lay] // 4)) for lay in fitting
    }
    fit = [lay for lay, ok in verdict.items() if ok]
    if len(fit) == 1:
        return fit[0], "content"
    if all(ok is None for ok in verdict.values()):  # no finite value at all: no point usable
        return CloudLayout.KITTI, "content (no finite values)"
    which = "both" if fit else "neither"
    raise CloudFileError(
        f"{path}: ambiguous .bin layout: {len(raw)} bytes fit both KITTI (4 floats a point) and "
        f"nuScenes (5 floats, the 5th a ring number), and the values fit {which}; give the "
        "layout (--layout kitti|nuscenes or --fields x,y,z,...)"
    )


def _read_bin(
    path: Path, raw: bytes, layout: CloudLayout | None, fields: Sequence[str] | None
) -> ScanFile:
    how = "given"
    if fields is not None:
        layout = CloudLayout.FIELDS
    elif layout is None:
        layout, how = _bin_layout(path, raw)
    names = tuple(fields) if fields is not None else LAYOUT_FIELDS[layout]
    step = 4 * len(names)
    if len(raw) % step:
        raise CloudFileError(
            f"{path}: truncated {layout.value} .bin: {len(raw)} bytes is not a multiple of "
            f"{step} (float32 {', '.join(names)})"
        )
    table = np.frombuffer(raw, dtype="<f4").reshape(-1, len(names))
    columns = {n: table[:, i] for i, n in enumerate(names) if n != "_"}
    return ScanFile(path, xyzi(path, columns), layout, names, how)


def read_scan(
    path: str | Path, layout: CloudLayout | str | None = None, fields: Sequence[str] | None = None
) -> ScanFile:
    """Reads one scan; see the module docstring.

    Args:
        path: the file (suffix selects the format).
        layout: for ``.bin``: ``"kitti"`` or ``"nuscenes"``; None decides (module docstring).
        fields: for ``.bin``: the float32 columns in order (overrides ``layout``).

    Raises:
        CloudFileError: missing file, unknown suffix or layout, an ambiguous ``.bin`` layout,
            a layout given for a format that names its fields, truncated or malformed content.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise CloudFileError(
            f"{path}: unknown point-cloud suffix {suffix!r} (supported: {', '.join(SUFFIXES)})"
        )
    if isinstance(layout, str):
        known = [lay.value for lay in LAYOUT_FIELDS]
        if layout not in known:
            raise CloudFileError(f"unknown .bin layout {layout!r}; known: {known}")
        layout = CloudLayout(layout)
    if suffix != ".bin" and (layout is not None or fields is not None):
        raise CloudFileError(
            f"{path}: {suffix} files name their fields; --layout/--fields is for .bin"
        )
    if fields is not None:
        fields = parse_fields(",".join(fields))
    if suffix in (".npy", ".npz"):
        return _named(path, from_array(path, _load_array(path)))
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise CloudFileError(f"{path}: cannot read ({err.strerror or err})") from err
    if suffix == ".bin":
        return _read_bin(path, raw, layout, fields)
    return _named(path, read_pcd(path, raw) if suffix == ".pcd" else read_ply(path, raw))


def _load_array(path: Path) -> np.ndarray:
    """The array of a ``.npy`` file, or the ``points`` (or only) array of a ``.npz`` file."""
    try:
        if path.suffix.lower() == ".npy":
            return np.load(path, allow_pickle=False)
        with np.load(path, allow_pickle=False) as data:
            keys = list(data.keys())
            if "points" not in keys and len(keys) != 1:
                raise CloudFileError(f"{path}: no 'points' array (arrays: {keys})")
            return data["points" if "points" in keys else keys[0]]
    except CloudFileError:
        raise
    except OSError as err:
        raise CloudFileError(f"{path}: cannot read ({err.strerror or err})") from err
    except Exception as err:  # numpy's readers raise many types (ValueError, SyntaxError,
        # tokenize.TokenError, zipfile.BadZipFile, EOFError) for a damaged file
        first = (str(err).splitlines() or [""])[0][:120]
        raise CloudFileError(f"{path}: cannot read ({type(err).__name__}: {first})") from err


def _named(path: Path, points: np.ndarray) -> ScanFile:
    return ScanFile(path, points, CloudLayout.HEADER, ("x", "y", "z", "intensity"), "header")


def read_point_cloud(
    path: str | Path, layout: CloudLayout | str | None = None, fields: Sequence[str] | None = None
) -> np.ndarray:
    """The points of :func:`read_scan`: float32 [N, 4] (x, y, z, intensity)."""
    return read_scan(path, layout, fields).points


def write_point_cloud(path: str | Path, points: np.ndarray, binary: bool = True) -> Path:
    """Writes x, y, z, intensity of ``points`` [N, 3 or more] (intensity 0 for 3 columns).

    ``binary`` selects binary or ASCII data for PCD and PLY; ``.bin`` is KITTI layout. Returns
    the path.

    Raises:
        CloudFileError: unknown suffix, or ``points`` is not [N, >= 3].
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise CloudFileError(f"{path}: unknown point-cloud suffix {suffix!r}")
    arr = from_array(path, np.asarray(points))  # [N, 4] float32
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
