"""The live parts of ``robomr bench serving``: real replicas over real HTTP.

- ``http_replay``: replays one arrival sequence against a replica process (``offload.replicas``)
  with an asyncio httpx load generator (requests sent at their arrival times, concurrently,
  each with the SLO as its deadline); per request: HTTP status and latency. The same arrivals
  go through the simulator, so the two can be compared (how well the simulation predicts).
- ``bridge_run``: scans at the lidar rate through the edge bridge (async, wall clock) to a
  replica that is killed halfway, and the same scans through the local detector node: per-frame
  latency local vs offloaded vs fallback, and frames lost (scans without detections).
"""

from __future__ import annotations

import asyncio
import secrets
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from offload.client import quiet_httpx
from offload.loadgen import Arrivals
from offload.replicas import LocalReplicas
from offload.serving.wire import CONTENT_TYPE, encode


def _token(folder: Path) -> tuple[str, Path]:
    token = secrets.token_urlsafe(24)
    path = folder / "token"
    path.touch(mode=0o600)
    path.write_text(token + "\n")
    return token, path


async def _replay(
    url: str, token: str, arr: Arrivals, bodies: list[bytes]
) -> list[tuple[int, float]]:
    n = len(bodies)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": CONTENT_TYPE}
    quiet_httpx()
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=64)
    async with httpx.AsyncClient(
        headers=headers, limits=limits, timeout=httpx.Timeout(30.0)
    ) as http:
        start = time.perf_counter()

        async def one(t: float, body: bytes) -> tuple[int, float]:
            await asyncio.sleep(max(t - (time.perf_counter() - start), 0.0))
            sent = time.perf_counter()
            try:
                resp = await http.post(url + "/v1/detect", content=body)
                return resp.status_code, time.perf_counter() - sent
            except httpx.HTTPError:
                return 0, float("inf")

        index = np.minimum((arr.size_rank * n).astype(int), n - 1)
        return await asyncio.gather(
            *(one(float(t), bodies[i]) for t, i in zip(arr.times_s, index, strict=True))
        )


def http_replay(
    policy: str,
    clouds: Sequence[np.ndarray],
    arr: Arrivals,
    slo_s: float,
    duration_s: float,
    static: tuple[float, ...] = (1, 0.0),
    memory_budget_mb: float = 512.0,
) -> dict[str, Any]:
    """Goodput and attainment of ``policy`` on a replica process for the arrivals ``arr``."""
    with tempfile.TemporaryDirectory() as tmp:
        token, path = _token(Path(tmp))
        args = ["--token-file", str(path), "--policy", policy, "--models", "detector"]
        args += ["--slo-ms", f"detector={slo_s * 1e3:.0f}", "--no-brownout"]
        args += ["--static-max-batch", str(int(static[0]))]
        args += ["--static-delay-ms", str(static[1] * 1e3)]
        if len(static) > 2 and static[2] > 0:  # queue timeout as a share of the SLO
            args += ["--static-timeout-ms", str(static[2] * slo_s * 1e3)]
        args += ["--memory-budget-mb", str(memory_budget_mb)]
        bodies = [
            encode({"deadline_ms": slo_s * 1e3}, {"points": c.astype(np.float32)}) for c in clouds
        ]
        with LocalReplicas(1, args, Path(tmp)) as replicas:
            results = asyncio.run(_replay(replicas.urls[0], token, arr, bodies))
    codes = np.array([c for c, _ in results])
    latency = np.array([lat if c == 200 else np.inf for c, lat in results])
    return {
        "requests": len(results),
        "goodput_hz": float(np.sum(latency <= slo_s)) / duration_s,
        "attainment": float(np.mean(latency <= slo_s)),
        "rejected_429": int(np.sum(codes == 429)),
        "p50_ms": float(np.percentile(latency, 50, method="higher") * 1e3),
        "p90_ms": float(np.percentile(latency, 90, method="higher") * 1e3),
    }


def bridge_run(
    clouds: Sequence[np.ndarray],
    rate_hz: float,
    kill_after: int | None,
    deadline_ms: float = 250.0,
) -> dict[str, Any]:
    """Scans at ``rate_hz`` through the edge bridge (async, wall clock) to a replica killed
    after ``kill_after`` scans, or (``kill_after`` None) through the local ``lidar_detector``.
    Returns per-frame latency (ms, scan publish to detections publish) split by how the frame
    was served, and the frames lost (scans that never got detections)."""
    from robomr_nodes.runtime.executor import EmbeddedExecutor

    with tempfile.TemporaryDirectory() as tmp:
        _, token_path = _token(Path(tmp))
        replicas = None
        if kill_after is not None:
            args = ["--token-file", str(token_path), "--models", "detector", "--no-brownout"]
            replicas = LocalReplicas(1, args, Path(tmp))
            replicas.start()
        try:
            ex = EmbeddedExecutor("wall")
            probe = _LatencyTap()
            ex.add_tap(probe.tap)
            node = _detector_node(ex, replicas, token_path, deadline_ms)
            _schedule_scans(ex, clouds, rate_hz, replicas, kill_after)
            timeout = time.perf_counter() + len(clouds) / rate_hz + 60.0
            ex.spin(until=lambda: len(probe.done) >= len(clouds) or time.perf_counter() > timeout)
            ex.shutdown()
            stats = node.stats["detect"].values() if replicas is not None else {}
        finally:
            if replicas is not None:
                replicas.stop()
    by_kind: dict[str, list[float]] = {"local": [], "offloaded": [], "fallback": []}
    for stamp, (t_done, kind) in probe.done.items():
        if stamp in probe.sent:
            by_kind[kind].append(1e3 * (t_done - probe.sent[stamp]))
    return {
        "frames": len(clouds),
        "frames_lost": len(clouds) - len(probe.done),
        "latency_ms": by_kind,
        "offloaded": stats.get("offloaded", 0),
        "fallbacks": stats.get("fallbacks", 0),
        "dropped": stats.get("dropped", 0),
    }


class _LatencyTap:
    """Wall time of each scan's publish and of its detections, with how they were made."""

    def __init__(self) -> None:
        self.sent: dict[int, float] = {}
        self.done: dict[int, tuple[float, str]] = {}
        self._last: int | None = None

    def tap(self, topic: str, _ty: str, _t: int, msg: Any, _q: Any) -> None:
        from robomr_nodes.diagnostics import diagnostic_values
        from robomr_nodes.messages import stamp_ns

        if topic == "/points":
            self.sent[stamp_ns(msg.header.stamp)] = time.perf_counter()
        elif topic == "/detections":
            self._last = stamp_ns(msg.header.stamp)
            self.done[self._last] = (time.perf_counter(), "local")
        elif topic == "/diagnostics" and self._last is not None:
            # the bridge's per-frame status follows the frame's detections
            values = diagnostic_values(msg).get("edge_bridge/detect")
            if values is not None:
                kind = "offloaded" if values.get("offloaded") == "True" else "fallback"
                self.done[self._last] = (self.done[self._last][0], kind)


def _detector_node(
    ex: Any, replicas: LocalReplicas | None, token_path: Path, deadline_ms: float
) -> Any:
    from robomr_nodes.nodes.edge_bridge import EdgeBridgeNode
    from robomr_nodes.nodes.lidar_detector import LidarDetectorNode
    from robomr_nodes.params import ParamOverride

    if replicas is None:
        return ex.add_node(LidarDetectorNode)
    params = {
        "service_url": replicas.urls[0],
        "token_file": str(token_path),
        "mode": "async",
        "deadline_ms": deadline_ms,
    }
    return ex.add_node(
        EdgeBridgeNode, params={k: ParamOverride(v, "bench") for k, v in params.items()}
    )


def _schedule_scans(
    ex: Any,
    clouds: Sequence[np.ndarray],
    rate_hz: float,
    replicas: LocalReplicas | None,
    kill_after: int | None,
) -> None:
    from robomr_nodes.convert.pointcloud import array_to_cloud, xyz_to_structured
    from robomr_nodes.messages import header

    pub = ex.create_injector("sensor_msgs/msg/PointCloud2", "/points", "sensor_data")
    t0 = ex.now_ns()
    for i, cloud in enumerate(clouds):
        points = xyz_to_structured(np.ascontiguousarray(cloud[:, :4], dtype=np.float32))
        msg = array_to_cloud(points, header(10**9 * (i + 1), "lidar"))
        at = t0 + round(i / rate_hz * 1e9)
        ex.schedule(at, lambda m=msg: pub.publish(m))
        if replicas is not None and i == kill_after:
            ex.schedule(at, replicas.kill)
