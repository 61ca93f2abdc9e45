"""End-to-end latency per frame through the graph, measured on the embedded backend.

Every output of the pipeline carries its sensor frame's stamp (detections keep the cloud's,
the operator view keeps the camera image's), and on sim time the planner stamps its path with
the detection time, which is the scan's stamp. A tap records the wall time of the first publish
of each (topic, stamp); a stage's latency is the wall time from the sensor message to the
output with the same stamp. Callbacks take no sim time, so these are the processing times the
robot would see on one core, excluding transport.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from robomr_nodes.diagnostics import diagnostic_array
from robomr_nodes.messages import stamp_ns
from robomr_nodes.runtime.executor import EmbeddedExecutor

# stage name -> (sensor topic, output topic), relative to the namespace
STAGES: dict[str, tuple[str, str]] = {
    "scan_to_detections": ("points", "detections"),
    "scan_to_path": ("points", "croa/path"),
    "image_to_upload_decision": ("camera/image", "gsclo/operator_view"),
}


@dataclass
class LatencyMonitor:
    """Records publish wall times and publishes stage latencies as diagnostics.

    Attributes:
        namespace: namespace of the graph (topics of STAGES are relative to it).
        publish_period_s: node time between ``<namespace>/latency`` diagnostics.
    """

    namespace: str = "/robomr"
    publish_period_s: float = 1.0
    _first_publish: dict[tuple[str, int], int] = field(default_factory=dict)
    _reported: int = 0

    def topic(self, relative: str) -> str:
        return f"{self.namespace.rstrip('/')}/{relative}"

    def tap(self, topic: str, _typename: str, _stamp: int, msg: Any, _qos: Any) -> None:
        hdr = getattr(msg, "header", None)
        if hdr is not None:
            self._first_publish.setdefault((topic, stamp_ns(hdr.stamp)), time.perf_counter_ns())

    def attach_publisher(self, executor: EmbeddedExecutor) -> None:
        """Publishes ``<namespace>/latency`` diagnostics every ``publish_period_s`` (the tap
        :meth:`tap` must be attached to the executor too)."""
        pub = executor.create_injector(
            "diagnostic_msgs/msg/DiagnosticArray", self.topic("latency"), node="latency_monitor"
        )

        def report() -> None:
            values = {}
            for name, lat in self.latencies_ms().items():
                if len(lat):
                    values[f"{name}_p50_ms"] = float(np.percentile(lat, 50))
                    values[f"{name}_p90_ms"] = float(np.percentile(lat, 90))
                    values[f"{name}_frames"] = len(lat)
            pub.publish(diagnostic_array(executor.now_ns(), "latency", values))

        executor.add_timer("latency_monitor", self.publish_period_s, report)

    def latencies_ms(self) -> dict[str, np.ndarray]:
        """Stage -> latencies [frames] (ms) of every frame that reached the stage's output."""
        out = {}
        for name, (src, dst) in STAGES.items():
            src_t, dst_t = self.topic(src), self.topic(dst)
            lat = [
                (t - self._first_publish[(src_t, s)]) / 1e6
                for (topic, s), t in self._first_publish.items()
                if topic == dst_t and (src_t, s) in self._first_publish
            ]
            out[name] = np.asarray(lat, dtype=np.float64)
        return out
