"""ament_python package `robomr`; also installs with plain pip into a virtualenv."""

from glob import glob
from os.path import isfile

from setuptools import find_packages, setup

PACKAGE = "robomr"
PYTHON_PACKAGES = [
    "robomr_nodes",
    "geometry",
    "perception",
    "planning",
    "gs_render",
    "sim",
    "offload",
    "bench",
    "mapmatch",
]

# One console script per node (ros2 run robomr <exec>), plus the `robomr` CLI.
# Keep in sync with robomr_nodes/registry.py (a test checks it).
NODE_EXECUTABLES = {
    "synthetic_cloud": "robomr_nodes.nodes.synthetic_cloud:main",
    "cloud_markers": "robomr_nodes.nodes.cloud_markers:main",
    "robomr_sim": "robomr_nodes.nodes.sim_node:main",
    "lidar_detector": "robomr_nodes.nodes.lidar_detector:main",
    "gsclo_scheduler": "robomr_nodes.nodes.gsclo_scheduler:main",
    "gs_render": "robomr_nodes.nodes.gs_render:main",
    "croa_planner": "robomr_nodes.nodes.croa_planner:main",
    "scene_publisher": "robomr_nodes.nodes.scene_publisher:main",
    "path_follower": "robomr_nodes.nodes.path_follower:main",
    "map_matcher": "robomr_nodes.nodes.map_matcher:main",
    "edge_bridge": "robomr_nodes.nodes.edge_bridge:main",
}


def _share(folder: str, pattern: str = "*") -> tuple[str, list[str]]:
    return (f"share/{PACKAGE}/{folder}", [p for p in glob(f"{folder}/{pattern}") if isfile(p)])


setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(
        include=[f"{p}" for p in PYTHON_PACKAGES] + [f"{p}.*" for p in PYTHON_PACKAGES]
    ),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        _share("launch", "*.yaml"),
        _share("config", "*.yaml"),
        _share("config/scenarios", "*.yaml"),
        _share("rviz", "*.rviz"),
        _share("models", "*"),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="robomr maintainers",
    maintainer_email="robomr@example.org",
    description="Motion-assisted lidar detection and robotic mixed reality on ROS 2.",
    license="Apache-2.0",
    python_requires=">=3.10",
    entry_points={
        "console_scripts": [f"{name} = {target}" for name, target in NODE_EXECUTABLES.items()]
        + ["robomr = robomr_nodes.cli.entry:main"],
    },
)
