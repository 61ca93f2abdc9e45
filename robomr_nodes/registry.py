"""Node executables -> node classes, for the embedded backend (``robomr launch``).

The same names are console scripts in setup.py (``ros2 run robomr <exec>``); a test keeps the
two lists equal.
"""

from __future__ import annotations

import importlib

from robomr_nodes.api import RobomrNode

NODE_CLASSES: dict[str, str] = {
    "synthetic_cloud": "robomr_nodes.nodes.synthetic_cloud:SyntheticCloudNode",
    "cloud_markers": "robomr_nodes.nodes.cloud_markers:CloudMarkersNode",
    "robomr_sim": "robomr_nodes.nodes.sim_node:SimNode",
    "lidar_detector": "robomr_nodes.nodes.lidar_detector:LidarDetectorNode",
    "gsclo_scheduler": "robomr_nodes.nodes.gsclo_scheduler:GscloSchedulerNode",
    "gs_render": "robomr_nodes.nodes.gs_render:GsRenderNode",
    "croa_planner": "robomr_nodes.nodes.croa_planner:CroaPlannerNode",
    "scene_publisher": "robomr_nodes.nodes.scene_publisher:ScenePublisherNode",
    "path_follower": "robomr_nodes.nodes.path_follower:PathFollowerNode",
    "map_matcher": "robomr_nodes.nodes.map_matcher:MapMatcherNode",
    "edge_bridge": "robomr_nodes.nodes.edge_bridge:EdgeBridgeNode",
}


class RegistryError(LookupError):
    """No robomr node has that executable name."""


def load_node_class(executable: str) -> type[RobomrNode]:
    """The node class behind an executable name.

    Raises:
        RegistryError: unknown executable.
    """
    if executable not in NODE_CLASSES:
        raise RegistryError(
            f"robomr has no node executable {executable!r}; known: {sorted(NODE_CLASSES)}"
        )
    module, cls = NODE_CLASSES[executable].split(":")
    return getattr(importlib.import_module(module), cls)
