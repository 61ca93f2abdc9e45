"""Static transforms from ``/tf_static`` (tf2_msgs/TFMessage), looked up by parent and child."""

from __future__ import annotations

from typing import Any

import numpy as np

from geometry.transforms import make_transform, quaternion_to_matrix


class StaticTransforms:
    """Keeps the newest static transform of every (parent, child) pair."""

    def __init__(self) -> None:
        self._edges: dict[tuple[str, str], np.ndarray] = {}

    def update(self, msg: Any) -> None:
        """Adds the transforms of a TFMessage (rosbags or rclpy)."""
        for t in msg.transforms:
            q, p = t.transform.rotation, t.transform.translation
            rot = quaternion_to_matrix(np.array([q.x, q.y, q.z, q.w]))
            self._edges[(t.header.frame_id, t.child_frame_id)] = make_transform(
                rot, np.array([p.x, p.y, p.z])
            )

    def lookup(self, parent: str, child: str) -> np.ndarray | None:
        """``T_parent_child`` [4, 4] if that transform was received, else None."""
        return self._edges.get((parent, child))
