"""What a ros_gz_bridge ``parameter_bridge`` carries, read from its YAML ``config_file``.

The format is ros_gz_bridge's (gazebosim/ros_gz ``ros_gz_bridge/README.md``, "Configuring the
Bridge via YAML"): a list of maps with ``ros_topic_name`` / ``gz_topic_name`` (or
``topic_name`` for both), ``ros_type_name``, ``gz_type_name`` and ``direction``
(``BIDIRECTIONAL``, the default, ``GZ_TO_ROS`` or ``ROS_TO_GZ``). ROS names resolve in the bridge
node's namespace and remaps like any node's. The embedded backend cannot run the bridge; the
launch-graph test uses this to know which ROS topics Gazebo publishes and reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from robomr_nodes.runtime.names import apply_remaps

DIRECTIONS = ("BIDIRECTIONAL", "GZ_TO_ROS", "ROS_TO_GZ")


class BridgeConfigError(ValueError):
    """A bridge configuration file that is not a list of valid bridge entries."""


@dataclass(frozen=True)
class BridgedTopic:
    """One bridged topic as ROS sees it (fully qualified name)."""

    ros_topic: str
    ros_type: str
    gz_topic: str
    direction: str

    @property
    def to_ros(self) -> bool:
        """Gazebo publishes it into ROS."""
        return self.direction in ("BIDIRECTIONAL", "GZ_TO_ROS")

    @property
    def from_ros(self) -> bool:
        """ROS publishes it into Gazebo (the bridge subscribes)."""
        return self.direction in ("BIDIRECTIONAL", "ROS_TO_GZ")


def load_bridge_config(
    path: str | Path,
    namespace: str = "/",
    node_name: str = "parameter_bridge",
    remaps: list[tuple[str, str]] | None = None,
) -> list[BridgedTopic]:
    """The topics of a bridge config as the bridge node (namespace, remaps) would bridge them.

    Raises:
        BridgeConfigError: unreadable file, or an entry without names, types or with an
            unknown direction (the message names the file and the entry).
    """
    p = Path(path)
    try:
        entries = yaml.safe_load(p.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise BridgeConfigError(f"{p}: cannot read bridge config: {err}") from err
    if not isinstance(entries, list):
        raise BridgeConfigError(f"{p}: a bridge config is a YAML list of maps")
    topics = []
    for i, entry in enumerate(entries):
        where = f"{p}: entry {i}"
        if not isinstance(entry, dict):
            raise BridgeConfigError(f"{where}: expected a map")
        ros = entry.get("ros_topic_name", entry.get("topic_name"))
        gz = entry.get("gz_topic_name", entry.get("topic_name"))
        ros_type, direction = entry.get("ros_type_name"), entry.get("direction", DIRECTIONS[0])
        if not ros or not gz or not ros_type or not entry.get("gz_type_name"):
            raise BridgeConfigError(f"{where}: needs topic names and both type names")
        if direction not in DIRECTIONS:
            raise BridgeConfigError(f"{where}: direction {direction!r} not in {DIRECTIONS}")
        fq = apply_remaps(str(ros), namespace, node_name, remaps or [])
        topics.append(BridgedTopic(fq, str(ros_type), str(gz), direction))
    return topics
