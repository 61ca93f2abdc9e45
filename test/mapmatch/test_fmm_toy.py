"""FMM's example (test/data/mapmatch_toy): ``robomr mapmatch`` gives FMM's own result.

FMM ran ``fmm --network edges.shp --gps trips.shp -k 4 -r 0.4 -e 0.5`` in the data's units;
``--crs planar`` keeps those units, so the same options must give the same complete paths
and the same matched geometry text (FMM prints 12 significant digits; so do we).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mapmatch.loaders import load_shapefile
from mapmatch.ubodt import build_ubodt
from robomr_nodes.cli.main import main

TOY = Path(__file__).resolve().parents[1] / "data" / "mapmatch_toy"
FMM_ARGS = ["-k", "4", "-r", "0.4", "-e", "0.5", "--crs", "planar"]


def _rows(path: Path) -> dict[str, dict[str, str]]:
    lines = path.read_text().strip().split("\n")
    head = lines[0].split(";")
    return {r.split(";")[0]: dict(zip(head, r.split(";"), strict=True)) for r in lines[1:]}


def _run(tmp_path: Path, gps: str, *extra: str) -> dict[str, dict[str, str]]:
    out = tmp_path / "mr.txt"
    argv = ["mapmatch", "--network", str(TOY / "edges.shp"), "--gps", str(TOY / gps)]
    assert main([*argv, "--output", str(out), *FMM_ARGS, *extra]) == 0
    return _rows(out)


@pytest.mark.parametrize("method", ["lnsp", "hmm"])
@pytest.mark.parametrize(
    "gps, extra",
    [
        ("trips.csv", []),
        ("gps.csv", ["--gps_point"]),
        ("gps_timestamps.csv", ["--gps_point"]),
        ("trips.shp", []),
    ],
)
def test_matched_paths_equal_fmm_on_every_toy_trip(
    tmp_path: Path, method: str, gps: str, extra: list[str]
) -> None:
    fmm = _rows(TOY / "mr.txt")
    ours = _run(tmp_path, gps, "--method", method, *extra)
    assert set(ours) == set(fmm) == {"1", "2", "3"}
    for tid, row in fmm.items():
        assert ours[tid]["cpath"] == row["cpath"], f"trip {tid}"
        assert ours[tid]["mgeom"] == row["mgeom"], f"trip {tid}"


def test_nearest_edge_baseline_differs_from_fmm(tmp_path: Path) -> None:
    # The baseline is weak on purpose: snapping alone picks the wrong direction of two-way
    # streets, and the joined path loops back.
    fmm = _rows(TOY / "mr.txt")
    ours = _run(tmp_path, "trips.csv", "--method", "nearest")
    assert any(ours[t]["cpath"] != fmm[t]["cpath"] for t in fmm)


def test_output_fields_follow_fmm_order_and_tpath_splits_at_points(tmp_path: Path) -> None:
    rows = _run(tmp_path, "trips.csv", "--output_fields", "mgeom,tpath,opath,cpath,status")
    first = (tmp_path / "mr.txt").read_text().split("\n")[0]
    assert first == "id;opath;cpath;tpath;mgeom;status"
    r = rows["1"]
    assert r["opath"] == "2,2,13,14,23" and r["status"] == "ok"
    # tpath: the edges between consecutive points, "|"-separated, each ending on the next
    # point's edge.
    assert r["tpath"] == "2|2,5,13|13,14|14,23"


def test_unknown_output_field_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["mapmatch", "--network", str(TOY / "edges.shp"), "--gps", str(TOY / "trips.csv")]
    code = main([*argv, "--output", str(tmp_path / "o.txt"), "--output_fields", "cpath,speed"])
    assert code == 2 and "unknown output field(s) ['speed']" in capsys.readouterr().err


def test_ubodt_equals_fmms_table() -> None:
    net = load_shapefile(TOY / "edges.shp", crs="planar")
    ours = build_ubodt(net, 3.0)
    rows = [r.split(";") for r in (TOY / "ubodt.txt").read_text().split("\n")[1:] if r]
    # FMM numbers nodes in order of first appearance, as build_network does.
    fmm = {(int(r[0]), int(r[1])): float(r[5]) for r in rows}
    got = {divmod(int(k), ours.num_nodes): d for k, d in zip(ours.keys, ours.dist, strict=True)}
    assert set(got) == set(fmm)
    # Both sum the same float64 edge lengths; 1e-9 allows for a different summation order.
    assert max(abs(got[k] - fmm[k]) for k in fmm) < 1e-9


def test_ubodt_writes_fmms_csv_format(tmp_path: Path) -> None:
    net = load_shapefile(TOY / "edges.shp", crs="planar")
    ours = build_ubodt(net, 3.0)
    ours.save_fmm(tmp_path / "ubodt.txt", net)
    mine = (tmp_path / "ubodt.txt").read_text().strip().split("\n")
    fmm = (TOY / "ubodt.txt").read_text().strip().split("\n")
    assert mine[0] == fmm[0] == "source;target;next_n;prev_n;next_e;distance"
    # Same (source, target, distance) rows; next/prev hops may differ only between paths of
    # equal length (FMM's toy has such ties), so check that each row's hops are consistent.
    key = lambda r: (int(r[0]), int(r[1]), round(float(r[5]), 9))  # noqa: E731
    assert sorted(key(r.split(";")) for r in mine[1:]) == sorted(key(r.split(";")) for r in fmm[1:])
    for row in mine[1:]:
        s, _, nxt, prev, e0, d = row.split(";")
        assert int(net.source[int(e0)]) == int(s) and int(net.target[int(e0)]) == int(nxt)
        if int(prev) != int(s):
            assert ours.lookup(int(s), int(prev)) < float(d)


def test_geographic_toy_projected_to_utm_matches_the_same_paths(tmp_path: Path) -> None:
    # auto: the .prj says WGS 84, so the data go to UTM 31N (1 unit ~ 111 km); with radius,
    # error and UBODT bound in metres the paths are the same as in planar units.
    out = tmp_path / "mr.txt"
    argv = ["mapmatch", "--network", str(TOY / "edges.shp"), "--gps", str(TOY / "trips.csv")]
    args = ["-k", "4", "-r", "44500", "-e", "55600", "--delta", "400000"]
    assert main([*argv, "--output", str(out), *args]) == 0
    fmm, ours = _rows(TOY / "mr.txt"), _rows(out)
    assert all(ours[t]["cpath"] == fmm[t]["cpath"] for t in fmm)
    # The geometry comes back in degrees. Vertices are the network's own (exact up to the
    # UTM round trip); the projected end points differ because the foot of a perpendicular in
    # metres is not the one in degrees: about 3e-5 degrees over this 4-degree-wide map.
    x = np.array(ours["1"]["mgeom"][len("LINESTRING(") : -1].replace(",", " ").split(), float)
    y = np.array(fmm["1"]["mgeom"][len("LINESTRING(") : -1].replace(",", " ").split(), float)
    assert np.allclose(x, y, atol=1e-4)


def test_led_model_fitted_from_bus_routes_drives_lnsp(tmp_path: Path) -> None:
    # FMM's three trips as "buses" with FMM's own routes: fit an LED model, then match with it.
    led = tmp_path / "led.json"
    argv = ["mapmatch", "--network", str(TOY / "edges.shp"), "--crs", "planar"]
    fit = [*argv, "--gps", str(TOY / "trips.csv"), "--bus-routes", str(TOY / "mr.txt"),
           "-r", "0.4", "-e", "0.5", "--led-cell", "1.0"]  # fmt: skip
    assert main([*fit, "--output", str(led)]) == 0
    from mapmatch.led import LedModel

    model = LedModel.load(led)
    # The toy fixes lie 0.05-0.35 units off their routes: an RMS sigma of that order.
    assert 0.05 < model.global_sigma_m < 0.4
    rows = _run(tmp_path, "trips.csv", "--led", str(led))
    assert {t: r["cpath"] for t, r in rows.items()} == {
        t: r["cpath"] for t, r in _rows(TOY / "mr.txt").items()
    }
