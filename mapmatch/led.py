"""Localisation-error distribution (LED) per city sub-region, learned from fixed-route vehicles
(LNSP, arXiv 2505.23123, Sec. "LED modelling").

Buses drive known routes, so the distance from each of their fixes to the route is a sample
of the localisation error there. The city is cut into square cells of ``cell_m``; in each
cell the across-road error is modelled as zero-mean Gaussian with per-axis sigma, so the
distance d of a fix to a (locally straight) road is half-normal and

    sigma_cell^2 = mean(d^2)                      (maximum likelihood)

(the mean of squares, not a median: a cell that straddles open sky and a canyon must get the
canyon's tail into its radius).

Cells with few fixes are shrunk toward the global estimate, in log space (a scale
parameter; ``prior_points`` pseudo-fixes at the global sigma):

    log sigma = (n * log sigma_cell + prior_points * log sigma_global) / (n + prior_points)

Each cell's emission is N(d; 0, sigma); its candidate search radius is ``radius_sigmas``
times the largest sigma of the cell and its neighbours (clamped), since a fix near a border
may come from the next region. Cells without a fix use the global sigma.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import shapely

from mapmatch.network import RoadNetwork


class LedError(ValueError):
    """A bad LED setting, no training fix, or an unreadable model file."""


@dataclass(frozen=True)
class LedConfig:
    """Attributes:
    cell_m: side of a sub-region cell (m), > 0.
    prior_points: shrinkage strength, pseudo-fixes at the global sigma, >= 0.
    radius_sigmas: candidate radius in sigmas, > 0.
    min_radius_m, max_radius_m: clamp of the radius (m), 0 < min <= max.
    min_sigma_m: floor of any sigma (m), > 0 (fixes snapped onto the road give d = 0).
    """

    cell_m: float = 250.0
    prior_points: float = 20.0
    radius_sigmas: float = 4.0
    min_radius_m: float = 15.0
    max_radius_m: float = 300.0
    min_sigma_m: float = 1.0

    def __post_init__(self) -> None:
        for name in ("cell_m", "radius_sigmas", "min_radius_m", "min_sigma_m"):
            if not getattr(self, name) > 0:
                raise LedError(f"{name} must be > 0, got {getattr(self, name)}")
        if not self.prior_points >= 0:
            raise LedError(f"prior_points must be >= 0, got {self.prior_points}")
        if not self.max_radius_m >= self.min_radius_m:
            raise LedError(f"max_radius_m {self.max_radius_m} < min_radius_m {self.min_radius_m}")


@dataclass(frozen=True)
class LedModel:
    """Per-cell sigma over a grid anchored at ``origin`` (m).

    Attributes:
        sigma_grid: shrunk sigma per cell [nx, ny] (m); count_grid: training fixes per cell.
        global_sigma_m: the all-city estimate (m).
    """

    config: LedConfig
    origin: tuple[float, float]
    sigma_grid: np.ndarray
    count_grid: np.ndarray
    global_sigma_m: float

    @staticmethod
    def uniform(sigma_m: float, radius_m: float | None = None) -> LedModel:
        """One sigma everywhere (no training data); radius ``radius_m`` or 4 sigma."""
        r = radius_m if radius_m is not None else 4.0 * sigma_m
        cfg = LedConfig(
            cell_m=1e12,
            radius_sigmas=r / sigma_m,
            min_radius_m=min(r, 1e-9 + r),
            max_radius_m=r,
            min_sigma_m=min(sigma_m, 1.0),
        )
        return LedModel(cfg, (0.0, 0.0), np.zeros((0, 0)), np.zeros((0, 0)), float(sigma_m))

    def cells(self, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        ij = np.floor((xy - np.asarray(self.origin)) / self.config.cell_m).astype(np.int64)
        nx, ny = self.sigma_grid.shape
        inside = (ij[:, 0] >= 0) & (ij[:, 0] < nx) & (ij[:, 1] >= 0) & (ij[:, 1] < ny)
        return np.clip(ij[:, 0], 0, max(nx - 1, 0)), np.clip(ij[:, 1], 0, max(ny - 1, 0)), inside

    def sigma_at(self, xy: np.ndarray) -> np.ndarray:
        """Sigma (m) of the sub-region of each point [N, 2] -> [N]."""
        xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        if self.sigma_grid.size == 0:
            return np.full(len(xy), self.global_sigma_m)
        i, j, inside = self.cells(xy)
        return np.where(inside, self.sigma_grid[i, j], self.global_sigma_m)

    def wide_sigma_at(self, xy: np.ndarray) -> np.ndarray:
        """The largest sigma (m) of each point's cell and its 8 neighbours [N]: a fix near a
        cell border may come from the next region, so radii and outlier tests use this."""
        xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        if self.sigma_grid.size == 0:
            return np.full(len(xy), self.global_sigma_m)
        i, j, inside = self.cells(xy)
        return np.where(inside, self._wide_grid[i, j], self.global_sigma_m)

    @cached_property
    def _wide_grid(self) -> np.ndarray:
        from scipy.ndimage import maximum_filter

        return maximum_filter(self.sigma_grid, size=3, mode="nearest")

    def radius_at(self, xy: np.ndarray) -> np.ndarray:
        """Candidate search radius (m) per point [N]: radius_sigmas x the wide sigma."""
        c = self.config
        return np.clip(c.radius_sigmas * self.wide_sigma_at(xy), c.min_radius_m, c.max_radius_m)

    def to_json(self) -> dict:
        return {
            "format": "robomr-led",
            "version": 1,
            "config": asdict(self.config),
            "origin": list(self.origin),
            "sigma_grid": self.sigma_grid.tolist(),
            "count_grid": self.count_grid.tolist(),
            "global_sigma_m": self.global_sigma_m,
        }

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json()) + "\n")

    @staticmethod
    def load(path: str | Path) -> LedModel:
        """Raises: LedError: unreadable or not a robomr LED file."""
        try:
            d = json.loads(Path(path).read_text())
            if d.get("format") != "robomr-led":
                raise LedError(f"{path} is not a robomr LED model (format {d.get('format')!r})")
            return LedModel(
                LedConfig(**d["config"]),
                (float(d["origin"][0]), float(d["origin"][1])),
                _grid(d["sigma_grid"]),
                _grid(d["count_grid"]),
                float(d["global_sigma_m"]),
            )
        except (OSError, json.JSONDecodeError, KeyError, TypeError) as err:
            raise LedError(f"cannot read LED model {path}: {err}") from None


def _grid(rows: list) -> np.ndarray:
    return np.asarray(rows, dtype=np.float64).reshape(len(rows), -1) if rows else np.zeros((0, 0))


def route_distances(network: RoadNetwork, xy: np.ndarray, route_edges: np.ndarray) -> np.ndarray:
    """Distance (m) of each fix [N, 2] to the polyline of a known route (edge indices)."""
    segs = np.concatenate(
        [np.arange(network.seg_ptr[e], network.seg_ptr[e + 1]) for e in route_edges]
    )
    lines = shapely.multilinestrings(
        shapely.linestrings(np.stack([network.seg_a[segs], network.seg_b[segs]], axis=1))
    )
    return shapely.distance(shapely.points(xy), lines)


def fit_led(
    network: RoadNetwork,
    fixes: list[np.ndarray],
    routes: list[np.ndarray],
    config: LedConfig | None = None,
) -> LedModel:
    """LED model from fixed-route trajectories: ``fixes[i]`` [n_i, 2] (m) were recorded on
    route ``routes[i]`` (edge indices).

    Raises:
        LedError: no fix, or lists of different lengths.
    """
    cfg = config or LedConfig()
    if len(fixes) != len(routes):
        raise LedError(f"{len(fixes)} trajectories but {len(routes)} routes")
    xy = [np.asarray(f, dtype=np.float64).reshape(-1, 2) for f in fixes]
    if not xy or sum(len(f) for f in xy) == 0:
        raise LedError("no training fix")
    d = np.concatenate([route_distances(network, f, r) for f, r in zip(xy, routes, strict=True)])
    pts = np.concatenate(xy)
    floor = cfg.min_sigma_m
    g = max(float(np.sqrt(np.mean(d**2))), floor)
    lo = network.bounds[:2] - cfg.cell_m
    hi = network.bounds[2:] + cfg.cell_m
    shape = np.maximum(np.ceil((hi - lo) / cfg.cell_m).astype(np.int64), 1)
    ij = np.floor((pts - lo) / cfg.cell_m).astype(np.int64)
    ok = np.all((ij >= 0) & (ij < shape), axis=1)
    flat = ij[ok, 0] * shape[1] + ij[ok, 1]
    counts = np.bincount(flat, minlength=int(shape.prod())).astype(np.float64)
    cell_sigma = np.full(int(shape.prod()), g)
    order = np.argsort(flat, kind="stable")
    sd, sf = d[ok][order], flat[order]
    starts = np.searchsorted(sf, np.arange(len(counts)))
    for c in np.nonzero(counts)[0]:
        cell_sigma[c] = np.sqrt(np.mean(sd[starts[c] : starts[c] + int(counts[c])] ** 2))
    cell_sigma = np.maximum(cell_sigma, floor)
    log_s = (counts * np.log(cell_sigma) + cfg.prior_points * np.log(g)) / np.maximum(
        counts + cfg.prior_points, 1e-12
    )
    sigma = np.where(counts > 0, np.exp(log_s), g).reshape(shape)
    return LedModel(cfg, (float(lo[0]), float(lo[1])), sigma, counts.reshape(shape), g)
