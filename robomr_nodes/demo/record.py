"""What the demo keeps of a run for its summary: a tap that collects decoded messages."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

# Topics kept in full, relative to the namespace. Clouds: only the first and the newest.
KEPT = (
    "ground_truth",
    "detections",
    "odom",
    "croa/path",
    "gsclo/decision",
    "camera/image",
    "gs/image",
    "map/obstacles",
    "target_request",
)
DIAGNOSTICS = "/diagnostics"  # every node's status (REP: where rqt_runtime_monitor reads), kept
CLOUDS = "points"


@dataclass
class RunRecord:
    """Messages of one run by relative topic, each as (node time ns, message)."""

    namespace: str = "/robomr"
    messages: dict[str, list[tuple[int, Any]]] = field(default_factory=lambda: defaultdict(list))
    first_cloud: tuple[int, Any] | None = None
    last_cloud: tuple[int, Any] | None = None

    def tap(self, topic: str, _typename: str, stamp: int, msg: Any, _qos: Any) -> None:
        prefix = self.namespace.rstrip("/") + "/"
        if topic == DIAGNOSTICS:
            self.messages[topic].append((stamp, msg))
        if not topic.startswith(prefix):
            return
        relative = topic[len(prefix) :]
        if relative == CLOUDS:
            if self.first_cloud is None:
                self.first_cloud = (stamp, msg)
            self.last_cloud = (stamp, msg)
        elif relative in KEPT:
            self.messages[relative].append((stamp, msg))

    def last(self, topic: str) -> Any | None:
        items = self.messages.get(topic)
        return items[-1][1] if items else None

    def first(self, topic: str) -> Any | None:
        items = self.messages.get(topic)
        return items[0][1] if items else None
