"""The map_matcher node: odometry on the simulator's lanes, NavSatFix on a geographic
network, and the fixes it must drop."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from robomr_nodes.convert.path import path_to_poses
from robomr_nodes.diagnostics import diagnostic_values
from robomr_nodes.messages import header, new_message
from robomr_nodes.nodes.map_matcher import MapMatcherNode, path_poses
from robomr_nodes.params import ParamOverride
from robomr_nodes.runtime.executor import EmbeddedExecutor

TOY = Path(__file__).resolve().parents[1] / "data" / "mapmatch_toy" / "edges.shp"


def _node(**params: Any) -> tuple[EmbeddedExecutor, dict[str, list]]:
    ex = EmbeddedExecutor()
    got: dict[str, list] = {}
    ex.add_tap(lambda t, _ty, _s, m, _q: got.setdefault(t, []).append(m))
    ex.add_node(MapMatcherNode, params={k: ParamOverride(v, "test") for k, v in params.items()})
    return ex, got


def _odom(stamp: int, x: float, y: float) -> Any:
    pose = new_message(
        "geometry_msgs/msg/PoseWithCovariance",
        pose=new_message(
            "geometry_msgs/msg/Pose",
            position=new_message("geometry_msgs/msg/Point", x=x, y=y, z=0.0),
            orientation=new_message("geometry_msgs/msg/Quaternion", w=1.0),
        ),
    )
    return new_message("nav_msgs/msg/Odometry", header=header(stamp, "map"), pose=pose)


def _fix(stamp: int, lon: float, lat: float, status: int = 0) -> Any:
    return new_message(
        "sensor_msgs/msg/NavSatFix",
        header=header(stamp, "gps"),
        status=new_message("sensor_msgs/msg/NavSatStatus", status=status),
        latitude=lat,
        longitude=lon,
    )


def _feed(ex: EmbeddedExecutor, typename: str, topic: str, msgs: list[Any], dt_ns: int) -> None:
    pub = ex.create_injector(typename, topic, "reliable")
    for i, m in enumerate(msgs):
        ex.schedule(ex.now_ns() + (i + 1) * dt_ns, lambda m=m: pub.publish(m))
    ex.spin(duration_s=(len(msgs) + 3) * dt_ns * 1e-9)


def test_odometry_on_simulator_lanes_gives_a_path_along_the_lane() -> None:
    from sim import generate_scene

    scene = generate_scene("urban-clutter")
    lane = next(ln for ln in scene.lanes if ln.kind == "driving" and ln.direction > 0)
    ex, got = _node(network="sim:urban-clutter", input="odometry", sigma_m=1.0, radius_m=5.0,
                    match_period_s=1.0)  # fmt: skip
    xs = np.linspace(5.0, 60.0, 12)
    msgs = [_odom(int((k + 1) * 1e9), float(x), lane.center_y_m + 0.3) for k, x in enumerate(xs)]
    _feed(ex, "nav_msgs/msg/Odometry", "/odom", msgs, 1_000_000_000)
    path = got["/mapmatch/path"][-1]
    poses, _ = path_to_poses(path)
    assert path.header.frame_id == "map" and path.header.stamp.sec == 12
    # Along the lane's centre line, heading +x, covering the driven stretch.
    assert np.allclose(poses[:, 1], lane.center_y_m) and np.allclose(poses[:, 2], 0.0)
    assert poses[0, 0] <= xs[0] + 1.0 and poses[-1, 0] >= xs[-1] - 1.0
    edges = got["/mapmatch/edges"][-1].data
    assert len(edges) >= 3
    status = diagnostic_values(got["/diagnostics"][-1])["map_matcher"]
    assert status["status"] == "ok" and status["points"] == "12"


def test_navsatfix_on_a_geographic_network_and_dropped_fixes() -> None:
    # FMM's toy network read as real WGS 84 (auto: UTM 31N): the road x = 2 deg from
    # lat 0 to 1 deg (edge 2 northwards, then edge 5).
    ex, got = _node(network=str(TOY), input="navsatfix", sigma_m=500.0, radius_m=3000.0,
                    delta_m=400000.0, match_period_s=1.0)  # fmt: skip
    fixes = [_fix(int((k + 1) * 1e9), 2.001, 0.2 + 0.2 * k) for k in range(6)]
    fixes.insert(2, _fix(int(2.5e9), 2.5, 0.5, status=-1))  # no fix: ignored
    fixes.insert(4, _fix(int(1.5e9), 2.0, 0.3))  # older than the last: dropped
    fixes.append(_fix(int(9e9), float("nan"), 0.5))  # not finite: dropped
    _feed(ex, "sensor_msgs/msg/NavSatFix", "/fix", fixes, 1_000_000_000)
    edges = got["/mapmatch/edges"][-1].data.tolist()
    assert edges == [2, 5]  # north along x = 2 (FMM's ids), past the node at (2, 1)
    status = diagnostic_values(got["/diagnostics"][-1])["map_matcher"]
    assert status["points"] == "6" and status["status"] == "ok"


def test_too_few_fixes_publish_only_a_status() -> None:
    ex, got = _node(network="sim:urban-clutter", input="odometry", sigma_m=1.0, radius_m=5.0)
    _feed(ex, "nav_msgs/msg/Odometry", "/odom", [_odom(1_000_000_000, 5.0, -1.75)], 10**9)
    assert "/mapmatch/path" not in got
    (status,) = got["/diagnostics"]
    assert diagnostic_values(status)["map_matcher"]["status"] == "too_few_points"
    assert status.status[0].level == 2 and "need at least 2" in status.status[0].message


def test_path_poses_head_along_each_piece() -> None:
    poses = path_poses([np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 2.0]])])
    assert np.allclose(poses[:, 2], [0.0, np.pi / 2, np.pi / 2])


def test_bad_network_parameter_fails_at_start_with_the_reason() -> None:
    with pytest.raises(ValueError, match="unknown network format"):
        _node(network="/nonexistent/roads.txt")
