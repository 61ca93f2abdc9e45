"""FMM's file formats (github.com/cyang-kth/fmm): GPS input and match-result output.

Input (FMM's ``--gps`` with its column options):

- trajectory CSV (``;``-separated): ``id;geom[;timestamp]``, geom a WKT LINESTRING, timestamp
  comma-separated seconds;
- point CSV (``--gps_point``): ``id;x;y[;timestamp]``, one fix per row, rows of a trajectory
  consecutive and in time order;
- a polyline shapefile of trajectories (field ``id``).

Output (FMM's ``CSVMatchResultWriter``): header ``id`` plus the chosen fields in FMM's order
opath, error, offset, pgeom, cpath, tpath, mgeom, length; default ``cpath,mgeom`` as FMM. A
trajectory that matched nothing writes empty fields, as FMM does; ``status`` (an extension)
says why.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np

from mapmatch.result import MatchResult

FIELD_ORDER = ("opath", "error", "offset", "pgeom", "cpath", "tpath", "mgeom", "length")
EXTENSIONS = ("status", "confidence")
DEFAULT_FIELDS = ("cpath", "mgeom")


class FmmIoError(ValueError):
    """A GPS file that cannot be read, a missing column, or an unknown output field."""


@dataclass(frozen=True)
class RawTrajectory:
    """One trajectory as read: source coordinates [N, 2], timestamps [N] or None, and an
    error message when the row could not be parsed (then ``xy`` is empty)."""

    traj_id: int
    xy: np.ndarray
    t_s: np.ndarray | None
    error: str = ""


def _open_csv(path: Path) -> tuple[TextIO, csv.DictReader]:
    try:
        f = path.open(newline="")
    except OSError as err:
        raise FmmIoError(f"cannot read {path}: {err.strerror or err}") from None
    return f, csv.DictReader(f, delimiter=";")


def _need(reader: csv.DictReader, path: Path, *cols: str) -> None:
    names = reader.fieldnames or []
    for c in cols:
        if c not in names:
            raise FmmIoError(f"{path}: no column {c!r}; columns: {names}")


def _parse_id(value: str, path: Path, line: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise FmmIoError(f"{path}:{line}: trajectory id {value!r} is not an integer") from None


def read_trajectory_csv(
    path: str | Path, id_col: str = "id", geom_col: str = "geom", time_col: str = "timestamp"
) -> list[RawTrajectory]:
    """FMM's trajectory CSV. Rows whose WKT or timestamps do not parse come back with
    ``error`` set (the file goes on)."""
    import shapely

    p = Path(path)
    f, reader = _open_csv(p)
    with f:
        _need(reader, p, id_col, geom_col)
        out = []
        for line, row in enumerate(reader, start=2):
            tid = _parse_id(row[id_col], p, line)
            try:
                geom = shapely.from_wkt(row[geom_col])
                if geom.geom_type != "LineString":
                    raise ValueError(f"a {geom.geom_type}, not a LINESTRING")
                xy = np.asarray(geom.coords, dtype=np.float64)[:, :2].reshape(-1, 2)
            except (shapely.errors.GEOSException, ValueError, TypeError) as err:
                out.append(RawTrajectory(tid, np.zeros((0, 2)), None, f"bad geometry: {err}"))
                continue
            t = None
            text = (row.get(time_col) or "").strip()
            if text:
                try:
                    t = np.array([float(v) for v in text.split(",")])
                except ValueError:
                    out.append(RawTrajectory(tid, xy, None, f"bad timestamps {text[:40]!r}"))
                    continue
            out.append(RawTrajectory(tid, xy, t))
    return out


def read_point_csv(
    path: str | Path,
    id_col: str = "id",
    x_col: str = "x",
    y_col: str = "y",
    time_col: str = "timestamp",
) -> list[RawTrajectory]:
    """FMM's point CSV: consecutive rows with one id form a trajectory. A row with a
    non-numeric coordinate marks its trajectory with ``error``."""
    p = Path(path)
    f, reader = _open_csv(p)
    groups: list[tuple[int, list, list, str]] = []
    with f:
        _need(reader, p, id_col, x_col, y_col)
        has_t = time_col in (reader.fieldnames or [])
        for line, row in enumerate(reader, start=2):
            tid = _parse_id(row[id_col], p, line)
            if not groups or groups[-1][0] != tid:
                groups.append((tid, [], [], ""))
            try:
                xy = (float(row[x_col]), float(row[y_col]))
                t = float(row[time_col]) if has_t else np.nan
            except (TypeError, ValueError):
                g = groups[-1]
                groups[-1] = (g[0], g[1], g[2], g[3] or f"line {line}: non-numeric value")
                continue
            groups[-1][1].append(xy)
            groups[-1][2].append(t)
    out = []
    for tid, xy, t, err in groups:
        arr = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        out.append(RawTrajectory(tid, arr, np.asarray(t) if has_t else None, err))
    return out


def read_trajectory_shapefile(path: str | Path, id_col: str = "id") -> list[RawTrajectory]:
    import shapefile

    p = Path(path)
    try:
        reader = shapefile.Reader(str(p))
    except (shapefile.ShapefileException, OSError) as err:
        raise FmmIoError(f"cannot read shapefile {p}: {err}") from None
    with reader:
        names = [fl[0] for fl in reader.fields[1:]]
        if id_col not in names:
            raise FmmIoError(f"{p}: no field {id_col!r}; fields: {names}")
        return [
            RawTrajectory(
                _parse_id(sr.record.as_dict()[id_col], p, k),
                np.asarray(sr.shape.points, dtype=np.float64).reshape(-1, 2),
                None,
            )
            for k, sr in enumerate(reader.iterShapeRecords())
        ]


def parse_fields(text: str | None) -> tuple[str, ...]:
    """FMM's ``--output_fields`` (comma list; ``all``); None -> FMM's default cpath,mgeom.

    Raises:
        FmmIoError: an unknown field.
    """
    if text is None:
        return DEFAULT_FIELDS
    want = {f.strip() for f in text.split(",") if f.strip()}
    known = set(FIELD_ORDER) | set(EXTENSIONS) | {"all"}
    bad = sorted(want - known)
    if bad:
        raise FmmIoError(f"unknown output field(s) {bad}; known: {sorted(known)}")
    if "all" in want:
        want |= set(FIELD_ORDER)
    return tuple(f for f in (*FIELD_ORDER, *EXTENSIONS) if f in want)


def _num(v: float) -> str:
    return f"{float(v):.12g}"


def _wkt(pieces: list[np.ndarray]) -> str:
    if not pieces:
        return ""
    parts = ["(" + ",".join(f"{_num(x)} {_num(y)}" for x, y in g) + ")" for g in pieces]
    return (
        "LINESTRING" + parts[0] if len(parts) == 1 else "MULTILINESTRING(" + ",".join(parts) + ")"
    )


def format_result(r: MatchResult, fields: tuple[str, ...], to_source, edge_len: dict) -> str:
    """One output line; ``to_source`` maps metric xy [N, 2] back to the input's coordinates,
    ``edge_len`` edge id -> length (for the ``length`` field)."""
    ok = r.matched
    cols = [str(r.traj_id)]
    for f in fields:
        if f == "status":
            cols.append(r.status.value)
        elif not ok:
            cols.append("")
        elif f == "opath":
            cols.append(",".join(str(int(e)) for e in r.opath))
        elif f == "error":
            cols.append(",".join(_num(v) for v in r.error_m))
        elif f == "offset":
            cols.append(",".join(_num(v) for v in r.offset_m))
        elif f == "pgeom":
            xy = r.matched_xy[np.all(np.isfinite(r.matched_xy), axis=1)]
            cols.append(_wkt([to_source(xy)]))
        elif f == "cpath":
            cols.append(",".join(str(int(e)) for e in r.cpath))
        elif f == "tpath":
            idx = r.indices
            cols.append(
                "|".join(
                    ",".join(str(int(e)) for e in r.cpath[idx[j] : idx[j + 1] + 1])
                    for j in range(len(idx) - 1)
                )
            )
        elif f == "mgeom":
            cols.append(_wkt([to_source(g) for g in r.mgeom]))
        elif f == "length":
            cols.append(",".join(_num(edge_len[int(e)]) for e in r.opath if e >= 0))
        elif f == "confidence":
            cols.append(",".join(f"{v:.4f}" for v in r.confidence))
    return ";".join(cols)


def write_results(
    path: str | Path, results: list[MatchResult], fields, to_source, edge_len
) -> None:
    """FMM's result CSV.

    Raises:
        FmmIoError: the file cannot be written.
    """
    lines = [";".join(("id", *fields))]
    lines += [format_result(r, fields, to_source, edge_len) for r in results]
    try:
        Path(path).write_text("\n".join(lines) + "\n")
    except OSError as err:
        raise FmmIoError(f"cannot write {path}: {err.strerror or err}") from None
