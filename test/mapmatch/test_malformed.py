"""Bad input gets a clear per-trajectory status (or a one-line CLI error), never a crash."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import shapefile

from mapmatch import HmmMatcher, LedModel, LnspMatcher, NearestMatcher, Status, Trajectory
from mapmatch.loaders import load_shapefile
from mapmatch.network import EdgeInput, NetworkError, build_network
from mapmatch.ubodt import build_ubodt
from robomr_nodes.cli.main import main

TOY = Path(__file__).resolve().parents[1] / "data" / "mapmatch_toy"


def _matchers(net, ubodt):
    return [
        LnspMatcher(net, ubodt, LedModel.uniform(10.0, 50.0)),
        HmmMatcher(net, ubodt, sigma_m=10.0, beta_m=50.0, radius_m=50.0),
        NearestMatcher(net, ubodt, radius_m=50.0),
    ]


ROAD = np.array([[10.0, 2.0], [200.0, -3.0], [400.0, 1.0]])


@pytest.mark.parametrize(
    "traj, status, words",
    [
        (Trajectory(1, np.zeros((0, 2))), Status.EMPTY, "no point"),
        (Trajectory(2, ROAD[:1]), Status.TOO_FEW_POINTS, "need at least 2"),
        (Trajectory(3, ROAD + 5000.0), Status.NO_CANDIDATES, "another CRS"),
        (Trajectory(4, ROAD, np.array([0.0, 20.0, 10.0])), Status.INVALID, "go backwards"),
        (Trajectory(5, np.array([[0.0, 0.0], [np.nan, 1.0]])), Status.INVALID, "not finite"),
        (Trajectory(6, ROAD, np.array([0.0, 1.0])), Status.INVALID, "2 timestamps for 3"),
        (Trajectory(7, np.array([[1.0, 2.0, 3.0]])), Status.INVALID, "[N, 2]"),
    ],
)
def test_unmatchable_trajectories_get_a_clear_status(ladder, traj, status, words) -> None:
    net, ubodt = ladder
    for m in _matchers(net, ubodt):
        (res,) = m.match_many([traj])
        assert res.status == status and words in res.message, (m.name, res.message)
        assert not res.matched and len(res.cpath) == 0


def test_one_bad_trajectory_does_not_spoil_the_others(ladder) -> None:
    net, ubodt = ladder
    good = Trajectory(1, ROAD, np.array([0.0, 20.0, 40.0]))
    bad = Trajectory(2, ROAD, np.array([0.0, 20.0, 10.0]))
    for m in _matchers(net, ubodt):
        a, b, c = m.match_many([good, bad, good])
        assert a.status == c.status == Status.OK and b.status == Status.INVALID
        assert a.cpath.tolist() == c.cpath.tolist()


def test_fixes_far_from_any_road_are_dropped_and_reported(ladder) -> None:
    net, ubodt = ladder
    xy = np.vstack([ROAD[:2], [[300.0, 900.0]], ROAD[2:]])
    for m in _matchers(net, ubodt):
        res = m.match(Trajectory(1, xy))
        assert res.status == Status.PARTIAL and "1 of 4 points" in res.message
        assert res.opath[2] == -1 and np.isnan(res.error_m[2]) and res.confidence[2] == 0.0
        assert np.all(res.opath[[0, 1, 3]] >= 0)


def test_disconnected_pieces_break_the_path_and_say_so() -> None:
    # Two separate roads 1 km apart: no route joins them.
    a = [EdgeInput(1, 1, 2, np.array([[0.0, 0.0], [100.0, 0.0]]))]
    b = [EdgeInput(2, 3, 4, np.array([[1000.0, 0.0], [1100.0, 0.0]]))]
    net = build_network(a + b)
    xy = np.array([[10.0, 1.0], [60.0, 1.0], [1010.0, 1.0], [1060.0, 1.0]])
    res = HmmMatcher(net, build_ubodt(net, 5000.0), 5.0, 50.0, 20.0).match(Trajectory(1, xy))
    assert res.status == Status.PARTIAL and "no route between 1 pair" in res.message
    assert res.breaks == [1] and res.cpath.tolist() == [1, 2] and len(res.mgeom) == 2


def test_broken_edges_are_skipped_and_an_all_broken_network_is_an_error(caplog) -> None:
    ok = EdgeInput(1, 1, 2, np.array([[0.0, 0.0], [10.0, 0.0]]))
    nan = EdgeInput(2, 2, 3, np.array([[10.0, 0.0], [np.nan, 5.0]]))
    dot = EdgeInput(3, 3, 4, np.array([[5.0, 5.0], [5.0, 5.0]]))
    net = build_network([ok, nan, dot])
    assert net.edge_ids.tolist() == [1] and "skipped 2 edge(s)" in caplog.text
    with pytest.raises(NetworkError, match="no usable edge"):
        build_network([nan, dot])
    with pytest.raises(NetworkError, match="edge id 1 appears more than once"):
        build_network([ok, ok])


def _write_shp(path: Path, lines: list, fields=("id", "source", "target"), prj: str = "") -> None:
    with shapefile.Writer(str(path), shapeType=shapefile.POLYLINE) as w:
        for f in fields:
            w.field(f, "N")
        for k, line in enumerate(lines):
            w.line([line])
            w.record(k + 1, k + 1, k + 2)
    if prj:
        path.with_suffix(".prj").write_text(prj)


def test_network_file_problems_are_one_line_cli_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gps = TOY / "trips.csv"
    cases = [
        ("missing.shp", None, "cannot read shapefile"),
        ("nofield.shp", ("id", "from", "to"), "no field 'source'"),
        ("badcrs.shp", "prj", "outside lon [-180, 180]"),
    ]
    wgs84 = (TOY / "edges.prj").read_text()
    for name, fields, words in cases:
        path = tmp_path / name
        if fields == "prj":
            _write_shp(path, [[[500000.0, 6e6], [500100.0, 6e6]]], prj=wgs84)
        elif fields:
            _write_shp(path, [[[0.0, 0.0], [1.0, 0.0]]], fields=fields)
        code = main(["mapmatch", "--network", str(path), "--gps", str(gps),
                     "--output", str(tmp_path / "o.txt")])  # fmt: skip
        err = capsys.readouterr().err
        assert code == 2 and words in err and "Traceback" not in err, err


def test_bad_rows_in_a_gps_file_are_invalid_trajectories(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gps = tmp_path / "trips.csv"
    rows = (TOY / "trips.csv").read_text().strip().split("\n")
    gps.write_text("\n".join([*rows, "4;LINESTRING(1 2, 3", "5;POINT(1 2)"]) + "\n")
    out = tmp_path / "mr.txt"
    argv = ["mapmatch", "--network", str(TOY / "edges.shp"), "--gps", str(gps), "--crs", "planar"]
    assert main([*argv, "--output", str(out), "-k", "4", "-r", "0.4", "-e", "0.5",
                 "--output_fields", "cpath,status"]) == 0  # fmt: skip
    lines = out.read_text().strip().split("\n")
    assert lines[1:4] == ["1;2,5,13,14,23;ok", "2;25,4,3,5,17,19;ok", "3;8,11,13,18,20,24;ok"]
    assert lines[4:] == ["4;;invalid", "5;;invalid"]
    printed = capsys.readouterr().out
    assert "trajectory 4: invalid: bad geometry" in printed and "not a LINESTRING" in printed


def test_gps_in_another_crs_than_the_network_is_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A projected network (metres) and fixes in lon/lat: nothing is near a road.
    net_path = tmp_path / "net.shp"
    _write_shp(net_path, [[[500000.0, 6.0e6], [500500.0, 6.0e6]]])
    gps = tmp_path / "gps.csv"
    gps.write_text("id;x;y\n1;24.94;60.17\n1;24.95;60.17\n")
    out = tmp_path / "mr.txt"
    assert main(["mapmatch", "--network", str(net_path), "--gps", str(gps), "--gps_point",
                 "--output", str(out), "--output_fields", "cpath,status"]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert out.read_text().split("\n")[1] == "1;;no_candidates"
    assert "another CRS" in printed and "outside the network's extent" in printed


def test_shapefile_fields_can_be_renamed_like_fmm(tmp_path: Path) -> None:
    path = tmp_path / "net.shp"
    _write_shp(path, [[[0.0, 0.0], [100.0, 0.0]], [[100.0, 0.0], [200.0, 0.0]]],
               fields=("eid", "u", "v"))  # fmt: skip
    net = load_shapefile(path, "eid", "u", "v")
    assert net.edge_ids.tolist() == [1, 2] and net.edge_between(2, 3) == 2
