"""``scene_publisher``: the static data of a scene for Gazebo, where no built-in simulator runs.

With ``use_gazebo:=true`` Gazebo simulates the world exported by ``robomr sim export-sdf`` and
ros_gz_bridge carries its sensors, odometry and clock; this node reads the same scene (the
scenario and seed the world was exported from, or a scene file) and publishes, latched, what
the built-in simulator would (``robomr_nodes/scene_static.py``): ``/tf_static`` with
``map -> odom`` (the robot's spawn pose: Gazebo's DiffDrive odometry starts at zero there) and
the sensor mounts, ``map/obstacles`` and ``target_request``. Nothing else; no timers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geometry.transforms import pose_to_transform
from robomr_nodes.api import NodeHandle, RobomrNode
from robomr_nodes.params import param
from robomr_nodes.runtime.entry import run_node
from robomr_nodes.scene_static import publish_scene_static
from sim import BicycleRobot, RobotState, load_or_generate


@dataclass(frozen=True)
class ScenePublisherParams:
    scenario: str = param("urban-clutter", "scenario name, scenario file or scene file")
    seed: int = param(-1, "scenario seed (-1: the scenario's default)", min_value=-1)
    target_prior_noise_m: float = param(
        1.0, "error of the target request position (m)", min_value=0.0, max_value=20.0
    )
    sensor_seed: int = param(
        0, "seed of the target prior (the simulator's sensor_seed)", min_value=0
    )
    map_frame: str = param("map", "world frame id")
    odom_frame: str = param("odom", "odometry frame id of Gazebo's DiffDrive")


class ScenePublisherNode(RobomrNode):
    NAME = "scene_publisher"

    def __init__(self, handle: NodeHandle) -> None:
        super().__init__(handle)
        p = self.params = handle.declare_params(ScenePublisherParams)
        self.scene = load_or_generate(p.scenario, None if p.seed < 0 else p.seed)
        x, y, yaw = self.scene.ego_start
        robot = BicycleRobot(state=RobotState(x, y, yaw))  # the exported robot's mounts
        T_map_odom = pose_to_transform(x, y, 0.0, yaw)  # odometry starts at the spawn pose
        rng = np.random.default_rng(p.sensor_seed)
        publish_scene_static(handle, self.scene, robot, T_map_odom, rng,
                             p.target_prior_noise_m, p.map_frame, p.odom_frame)  # fmt: skip
        self.log.info("published the static data of %s (%d objects)", p.scenario,
                      len(self.scene.objects))  # fmt: skip


def main(args: list[str] | None = None) -> int:
    return run_node(ScenePublisherNode, args)
