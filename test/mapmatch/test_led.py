"""LED modelling: per-region sigmas recovered from bus trajectories, shrinkage, file round trip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mapmatch import synthetic as syn
from mapmatch.led import LedConfig, LedError, LedModel, fit_led


@pytest.fixture(scope="module")
def grid():
    net = syn.grid_network(np.random.default_rng(3), nx=10, ny=10, spacing_m=150.0)
    return net, syn.RouteMaker(net)


def _two_regions(net, west_m: float, east_m: float) -> syn.NoiseField:
    """West half of the map sigma ``west_m``, east half ``east_m`` (cells of half the map)."""
    lo, hi = net.bounds[:2] - 1.0, net.bounds[2:] + 1.0
    half = (hi[0] - lo[0]) / 2.0
    grid = np.array([[west_m, west_m], [east_m, east_m]])
    return syn.NoiseField((float(lo[0]), float(lo[1])), half, grid[:, :1].repeat(2, axis=1))


@pytest.mark.parametrize("west_m, east_m", [(5.0, 30.0), (40.0, 10.0)])
def test_led_recovers_known_per_region_sigmas(grid, west_m: float, east_m: float) -> None:
    net, rm = grid
    noise = _two_regions(net, west_m, east_m)
    rng = np.random.default_rng(7)
    fixes, routes = syn.bus_fleet(net, rm, noise, rng, routes=8, laps=3)
    led = fit_led(net, fixes, routes, LedConfig(cell_m=200.0, prior_points=0.0))
    # Cells well inside each half (one cell away from the border) with many fixes.
    lo = net.bounds[:2]
    width = net.bounds[2] - lo[0]
    xs = np.linspace(lo[0], net.bounds[2], 40)
    ys = np.linspace(lo[1], net.bounds[3], 40)
    pts = np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2)
    i, j, _ = led.cells(pts)
    many = led.count_grid[i, j] >= 60
    for side, truth in ((pts[:, 0] < lo[0] + 0.35 * width, west_m),
                        (pts[:, 0] > lo[0] + 0.65 * width, east_m)):  # fmt: skip
        est = led.sigma_at(pts[side & many])
        assert len(est) > 0
        # The distance to the route is |N(0, sigma)| only where the road is straight; near
        # junctions the nearest road may be a crossing one (shorter distance), and a cell
        # of >= 60 fixes has a relative standard error of about 1/sqrt(2 * 60) = 9%. So the
        # median cell is within 20% of the truth.
        assert abs(np.median(est) / truth - 1.0) < 0.2, (truth, np.median(est))


def test_cells_with_few_fixes_shrink_toward_the_global_sigma(grid) -> None:
    net, rm = grid
    noise = _two_regions(net, 5.0, 30.0)
    fixes, routes = syn.bus_fleet(net, rm, noise, np.random.default_rng(1), routes=8, laps=3)
    loose = fit_led(net, fixes, routes, LedConfig(cell_m=200.0, prior_points=0.0))
    tight = fit_led(net, fixes, routes, LedConfig(cell_m=200.0, prior_points=1e6))
    seen = loose.count_grid > 0
    # With a huge prior every cell is the global estimate; with none, cells keep their own.
    assert np.allclose(tight.sigma_grid[seen], tight.global_sigma_m, rtol=1e-3)
    assert np.ptp(loose.sigma_grid[seen]) > 10.0
    # Cells without a fix have the global sigma whatever the prior.
    assert np.allclose(loose.sigma_grid[~seen], loose.global_sigma_m)
    # The default prior puts a well-observed cell between its own estimate and the global.
    mid = fit_led(net, fixes, routes, LedConfig(cell_m=200.0))
    lo = np.minimum(loose.sigma_grid, loose.global_sigma_m) - 1e-9
    hi = np.maximum(loose.sigma_grid, loose.global_sigma_m) + 1e-9
    assert np.all((mid.sigma_grid >= lo) & (mid.sigma_grid <= hi))


def test_radius_uses_the_widest_neighbouring_sigma_and_its_clamp() -> None:
    cfg = LedConfig(cell_m=100.0, radius_sigmas=4.0, min_radius_m=15.0, max_radius_m=150.0)
    grid = np.array([[2.0, 2.0, 2.0], [2.0, 2.0, 50.0], [2.0, 2.0, 2.0]])
    led = LedModel(cfg, (0.0, 0.0), grid, np.ones_like(grid), 10.0)
    r = led.radius_at(np.array([[50.0, 50.0], [150.0, 150.0], [50.0, 150.0]]))
    # Cell (0, 0) has no 50 m neighbour: 4 * 2 = 8 -> clamped to 15; cells (1, 1) and (0, 1)
    # border (1, 2): 4 * 50 = 200 -> clamped to 150; the emission sigma stays the cell's own.
    assert r.tolist() == [15.0, 150.0, 150.0]
    assert led.sigma_at(np.array([[150.0, 150.0]])).tolist() == [2.0]


def test_led_model_file_round_trip(tmp_path: Path, grid) -> None:
    net, rm = grid
    noise = _two_regions(net, 5.0, 30.0)
    fixes, routes = syn.bus_fleet(net, rm, noise, np.random.default_rng(2), routes=3, laps=1)
    led = fit_led(net, fixes, routes)
    led.save(tmp_path / "led.json")
    back = LedModel.load(tmp_path / "led.json")
    pts = np.random.default_rng(0).uniform(net.bounds[:2], net.bounds[2:], (50, 2))
    assert np.array_equal(back.sigma_at(pts), led.sigma_at(pts))
    assert np.array_equal(back.radius_at(pts), led.radius_at(pts))


@pytest.mark.parametrize(
    "content, match",
    [("{", "cannot read LED model"), ('{"format": "other"}', "not a robomr LED model")],
)
def test_bad_led_files_are_clear_errors(tmp_path: Path, content: str, match: str) -> None:
    (tmp_path / "led.json").write_text(content)
    with pytest.raises(LedError, match=match):
        LedModel.load(tmp_path / "led.json")


@pytest.mark.parametrize("field, value", [("cell_m", 0.0), ("prior_points", -1.0)])
def test_led_config_bounds(field: str, value: float) -> None:
    with pytest.raises(LedError, match=field):
        LedConfig(**{field: value})
