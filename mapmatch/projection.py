"""Coordinate frames for map matching: every computation runs in a metric, planar frame.

Networks and GNSS fixes come in geographic coordinates (lon/lat degrees), in a projected CRS,
or in plain planar units (FMM's toy data). :func:`choose_projection` picks the frame:

- ``"auto"``: a geographic CRS is projected to the UTM zone of the data (pyproj's
  ``query_utm_crs_info``); a projected CRS in metres is used as it is; a projected CRS in other
  units (US feet) goes to UTM as well; no CRS at all means planar units, used as they are.
- ``"planar"``: coordinates are used as they are, whatever the .prj says (what FMM does: its
  radius and GPS error are "in network data units").
- ``"EPSG:n"`` (or any pyproj CRS string): project to that CRS.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np


class ProjectionError(ValueError):
    """A CRS pyproj does not know, or coordinates outside their CRS's valid range."""


@dataclass(frozen=True)
class Projection:
    """Source coordinates <-> the metric working frame.

    Attributes:
        source: the source CRS as text (WKT or authority string); "" for planar units.
        metric: the working CRS as text; "" when the source is used as it is.
    """

    source: str = ""
    metric: str = ""
    _fwd: Any = field(default=None, repr=False, compare=False)
    _inv: Any = field(default=None, repr=False, compare=False)

    @property
    def identity(self) -> bool:
        return self._fwd is None

    def to_metric(self, xy: np.ndarray) -> np.ndarray:
        """Source coordinates [N, 2] -> metric [N, 2]."""
        xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        if self._fwd is None:
            return xy.copy()
        x, y = self._fwd.transform(xy[:, 0], xy[:, 1])
        return np.column_stack([x, y])

    def from_metric(self, xy: np.ndarray) -> np.ndarray:
        """Metric coordinates [N, 2] -> source [N, 2]."""
        xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        if self._inv is None:
            return xy.copy()
        x, y = self._inv.transform(xy[:, 0], xy[:, 1])
        return np.column_stack([x, y])

    def lonlat_to_metric(self, lonlat: np.ndarray) -> np.ndarray:
        """WGS84 lon/lat [N, 2] -> metric [N, 2] (NavSatFix input).

        Raises:
            ProjectionError: the working frame is planar units with no CRS to tie it to.
        """
        crs = self.metric or self.source
        if not crs:
            raise ProjectionError(
                "the network has planar coordinates without a CRS; lon/lat fixes cannot be "
                "placed on it (give the network a CRS, or a local origin)"
            )
        lonlat = np.asarray(lonlat, dtype=np.float64).reshape(-1, 2)
        t = _from_wgs84(crs)
        if len(lonlat) == 1:  # pyproj's point path wants plain floats
            return np.array([t.transform(float(lonlat[0, 0]), float(lonlat[0, 1]))])
        x, y = t.transform(lonlat[:, 0], lonlat[:, 1])
        return np.column_stack([x, y])


@lru_cache(maxsize=16)
def _from_wgs84(crs: str) -> Any:
    from pyproj import Transformer

    return Transformer.from_crs("EPSG:4326", crs, always_xy=True)


def planar() -> Projection:
    return Projection()


def _crs(text: str) -> Any:
    from pyproj import CRS
    from pyproj.exceptions import CRSError

    try:
        return CRS.from_user_input(text)
    except CRSError as err:
        raise ProjectionError(f"unknown CRS {text[:80]!r}: {err}") from None


def _utm_for(crs: Any, xy: np.ndarray) -> Any:
    from pyproj import CRS, Transformer
    from pyproj.aoi import AreaOfInterest
    from pyproj.database import query_utm_crs_info

    lonlat = xy
    if not crs.is_geographic:
        t = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
        lon, lat = t.transform(xy[:, 0], xy[:, 1])
        lonlat = np.column_stack([lon, lat])
    lo, hi = np.nanmin(lonlat, axis=0), np.nanmax(lonlat, axis=0)
    infos = query_utm_crs_info(
        datum_name="WGS 84",
        area_of_interest=AreaOfInterest(float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])),
    )
    if not infos:
        raise ProjectionError(f"no UTM zone covers lon/lat {lo}..{hi}")
    # The zone containing the centre (query returns every zone the box touches).
    centre = 0.5 * (lo + hi)
    zone = int((centre[0] + 180.0) // 6.0) + 1
    want = f"{zone}{'N' if centre[1] >= 0 else 'S'}"
    best = next((i for i in infos if i.name.endswith(want)), infos[0])
    return CRS.from_epsg(int(best.code))


def check_geographic_range(xy: np.ndarray, what: str) -> None:
    """Raise if lon/lat values [N, 2] are outside [-180, 180] x [-90, 90]."""
    bad = (np.abs(xy[:, 0]) > 180.0) | (np.abs(xy[:, 1]) > 90.0)
    if np.any(bad):
        i = int(np.argmax(bad))
        raise ProjectionError(
            f"{what} declares a geographic CRS but has coordinate {xy[i].tolist()} outside "
            "lon [-180, 180] / lat [-90, 90]: the .prj and the data disagree (wrong CRS?)"
        )


def choose_projection(source_crs: str, sample_xy: np.ndarray, mode: str = "auto") -> Projection:
    """The working frame for data in ``source_crs`` (text; "" = none) with sample points [N, 2].

    Raises:
        ProjectionError: unknown CRS, or coordinates outside a geographic CRS's range.
    """
    from pyproj import Transformer

    sample = np.asarray(sample_xy, dtype=np.float64).reshape(-1, 2)
    sample = sample[np.all(np.isfinite(sample), axis=1)]
    if mode == "planar" or (mode == "auto" and not source_crs):
        return Projection(source=source_crs if mode != "planar" else "")
    if not source_crs:
        raise ProjectionError(f"--crs {mode} needs the data's own CRS (a .prj), and it has none")
    src = _crs(source_crs)
    if src.is_geographic:
        check_geographic_range(sample, "the data")
    if mode == "auto":
        unit = src.axis_info[0].unit_name if src.axis_info else ""
        if not src.is_geographic and unit in ("metre", "meter"):
            return Projection(source=src.to_wkt())
        if len(sample) == 0:
            raise ProjectionError("cannot choose a UTM zone without any finite coordinate")
        dst = _utm_for(src, sample)
    else:
        dst = _crs(mode)
    fwd = Transformer.from_crs(src, dst, always_xy=True)
    inv = Transformer.from_crs(dst, src, always_xy=True)
    return Projection(source=src.to_wkt(), metric=dst.to_wkt(), _fwd=fwd, _inv=inv)
