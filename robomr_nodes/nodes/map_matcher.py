"""``map_matcher``: sparse GNSS fixes (or odometry) matched to a road network (``mapmatch/``).

Subscribes (reliable QoS, depth 50):

- ``fix`` (sensor_msgs/NavSatFix) when ``input`` is ``navsatfix``: lon/lat projected to the
  network's metric frame; fixes with ``status.status < 0`` (no fix) or non-finite values are
  dropped;
- ``odom`` (nav_msgs/Odometry) when ``input`` is ``odometry``: the pose's x, y taken as
  coordinates in the network's metric frame (the simulator's map frame for ``sim:`` networks).

Every ``match_period_s`` of node time, if new fixes came in, the last ``window_points`` fixes
are matched (LNSP by default; offline matching of the recent window) and it publishes, stamped
with the newest fix's stamp:

- ``mapmatch/path`` (nav_msgs/Path, frame ``frame_id``): the matched geometry, one pose per
  vertex, heading along the road;
- ``mapmatch/edges`` (std_msgs/Int64MultiArray): the matched edge ids (cpath, driving order);
- ``/diagnostics`` (diagnostic_msgs/DiagnosticArray, status ``map_matcher``): status, points,
  confidence, time.

A fix stamped earlier than the previous one is dropped with a warning; a window that cannot
be matched (too few fixes, none near a road) publishes only its status. The network comes
from ``network``: a .shp (FMM fields), .osm.pbf or .graphml file, or ``sim:SCENARIO`` for
the lanes of a simulator scenario.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from robomr_nodes.api import NodeHandle, RobomrNode
from robomr_nodes.convert.path import poses_to_path
from robomr_nodes.diagnostics import ERROR, OK, WARN, diagnostic_array
from robomr_nodes.messages import header, new_message, stamp_ns
from robomr_nodes.params import param
from robomr_nodes.runtime.entry import run_node


@dataclass(frozen=True)
class MapMatcherParams:
    network: str = param("sim:urban-clutter", "road network file, or sim:SCENARIO for its lanes")
    crs: str = param("auto", "working frame of a network file: auto, planar or a CRS string")
    input: str = param("navsatfix", "what to match", choices=("navsatfix", "odometry"))
    method: str = param("lnsp", "matcher", choices=("lnsp", "hmm", "nearest"))
    led_path: str = param("", "LNSP sub-region LED model (JSON); empty: sigma_m everywhere")
    sigma_m: float = param(10.0, "GNSS error sigma (m)", min_value=0.1, max_value=1e4)
    radius_m: float = param(50.0, "candidate search radius (m)", min_value=1.0, max_value=1e5)
    k: int = param(8, "candidates per fix", min_value=1, max_value=64)
    delta_m: float = param(3000.0, "UBODT bound (m)", min_value=10.0, max_value=1e6)
    window_points: int = param(200, "fixes kept and matched", min_value=2, max_value=100000)
    match_period_s: float = param(1.0, "matching period (s)", min_value=0.01, max_value=3600.0)
    frame_id: str = param("map", "frame of the published path")


def load_network(spec: str, crs: str) -> Any:
    """A ``mapmatch`` network from a file or ``sim:SCENARIO``."""
    from mapmatch.loaders import load_lanes
    from mapmatch.loaders import load_network as load_file

    if spec.startswith("sim:"):
        from sim import generate_scene

        scene = generate_scene(spec[4:])
        return load_lanes(scene.lanes, scene.street_x_range_m)
    return load_file(spec, crs=crs)


def path_poses(pieces: list[np.ndarray]) -> np.ndarray:
    """Poses [M, 3] (x, y, yaw) along polylines, yaw of each vertex's outgoing segment."""
    out = []
    for g in pieces:
        if len(g) < 2:
            continue
        d = np.diff(g, axis=0)
        yaw = np.arctan2(d[:, 1], d[:, 0])
        out.append(np.column_stack([g, np.append(yaw, yaw[-1])]))
    return np.concatenate(out) if out else np.zeros((0, 3))


class MapMatcherNode(RobomrNode):
    NAME = "map_matcher"

    def __init__(self, handle: NodeHandle) -> None:
        super().__init__(handle)
        from mapmatch import build_ubodt, make_matcher
        from mapmatch.led import LedModel

        p = self.params = handle.declare_params(MapMatcherParams)
        self.net = load_network(p.network, p.crs)
        ubodt = build_ubodt(self.net, p.delta_m)
        led = LedModel.load(p.led_path) if p.led_path else None
        self.matcher = make_matcher(p.method, self.net, ubodt, p.sigma_m, p.radius_m, p.k, led)
        self.log.info(
            "%s on %d edges (%s), UBODT %d pairs",
            p.method,
            self.net.num_edges,
            p.network,
            len(ubodt),
        )
        self.fixes: deque[tuple[int, float, float]] = deque(maxlen=p.window_points)
        self._new = False
        self._path = handle.create_publisher("nav_msgs/msg/Path", "mapmatch/path", "reliable")
        self._edges = handle.create_publisher(
            "std_msgs/msg/Int64MultiArray", "mapmatch/edges", "reliable"
        )
        self._status = handle.create_publisher(
            "diagnostic_msgs/msg/DiagnosticArray", "/diagnostics"
        )
        if p.input == "navsatfix":
            handle.create_subscription(
                "sensor_msgs/msg/NavSatFix", "fix", self._on_fix, "reliable", 50
            )
        else:
            handle.create_subscription(
                "nav_msgs/msg/Odometry", "odom", self._on_odom, "reliable", 50
            )
        handle.create_timer(p.match_period_s, self._match)

    def _add(self, stamp: int, x: float, y: float) -> None:
        if not (np.isfinite(x) and np.isfinite(y)):
            self.log.warning("dropping a non-finite fix stamped %d", stamp)
            return
        if self.fixes and stamp < self.fixes[-1][0]:
            self.log.warning(
                "dropping a fix stamped %d, before the previous %d", stamp, self.fixes[-1][0]
            )
            return
        self.fixes.append((stamp, x, y))
        self._new = True

    def _on_fix(self, msg: Any) -> None:
        if msg.status.status < 0:
            return
        lon, lat = float(msg.longitude), float(msg.latitude)
        if not (np.isfinite(lon) and np.isfinite(lat)):
            self.log.warning("dropping a NavSatFix with non-finite lon/lat")
            return
        try:
            x, y = self.net.projection.lonlat_to_metric(np.array([[lon, lat]]))[0]
        except ValueError as err:
            self.log.error("cannot place lon/lat fixes on this network: %s", err)
            return
        self._add(stamp_ns(msg.header.stamp), float(x), float(y))

    def _on_odom(self, msg: Any) -> None:
        pos = msg.pose.pose.position
        self._add(stamp_ns(msg.header.stamp), float(pos.x), float(pos.y))

    def _match(self) -> None:
        if not self._new:
            return
        from mapmatch import Trajectory

        self._new = False
        arr = np.array(self.fixes, dtype=np.float64)
        stamp = int(self.fixes[-1][0])
        start = time.perf_counter()
        traj = Trajectory(0, arr[:, 1:], (arr[:, 0] - arr[0, 0]) * 1e-9)
        res = self.matcher.match(traj)
        hdr = header(stamp, self.params.frame_id)
        if res.matched:
            self._path.publish(poses_to_path(path_poses(res.mgeom), hdr))
            self._edges.publish(
                new_message(
                    "std_msgs/msg/Int64MultiArray", data=np.asarray(res.cpath, dtype=np.int64)
                )
            )
        self._status.publish(
            diagnostic_array(
                self.handle.now_ns(),
                "map_matcher",
                {
                    "status": res.status.value,
                    "points": len(arr),
                    "edges": len(res.cpath),
                    "mean_confidence": float(np.mean(res.confidence))
                    if len(res.confidence)
                    else 0.0,
                    "processing_ms": 1e3 * (time.perf_counter() - start),
                },
                level=OK if res.status.value == "ok" else WARN if res.matched else ERROR,
                message=res.message,
            )
        )


def main(args: list[str] | None = None) -> int:
    return run_node(MapMatcherNode, args)
