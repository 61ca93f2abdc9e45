"""The static, latched data of a scene: what the simulator and Gazebo's scene publisher send once.

- ``/tf_static``: ``map -> odom`` (REP 105; the identity for the built-in simulator, whose
  odometry does not drift, and the spawn pose in Gazebo, where DiffDrive's odometry starts at
  zero), ``base_link -> lidar`` and ``base_link -> camera_optical`` (the ``RobotConfig`` mounts);
- ``map/obstacles``: vision_msgs/Detection3DArray of the static map (buildings, poles, trees,
  clutter; no vehicles) in ``map``;
- ``target_request``: geometry_msgs/PoseStamped, where the operator asks the robot to look: the
  scene's target with ``target_noise_m`` of error (one draw from ``rng``).
"""

from __future__ import annotations

import numpy as np

from robomr_nodes.api import NodeHandle
from robomr_nodes.convert.detections import BoxList, boxes_to_detections
from robomr_nodes.convert.path import pose_stamped
from robomr_nodes.convert.tf import tf_message, transform_stamped
from robomr_nodes.messages import header
from sim import BicycleRobot
from sim.scene import Scene

VEHICLE_KINDS = ("car", "van", "truck", "bus")


def static_map(scene: Scene) -> BoxList:
    """The scene's obstacles that are not vehicles (the map a robot would have)."""
    boxes, names = scene.obstacle_boxes()
    kinds = [scene.objects[scene.index(n)].kind for n in names]
    keep = [i for i, k in enumerate(kinds) if k not in VEHICLE_KINDS]
    return BoxList(
        boxes[keep], [kinds[i] for i in keep], np.ones(len(keep)), [names[i] for i in keep]
    )


def publish_scene_static(
    handle: NodeHandle,
    scene: Scene,
    robot: BicycleRobot,
    T_map_odom: np.ndarray,  # [4, 4]
    rng: np.random.Generator,
    target_noise_m: float,
    map_frame: str = "map",
    odom_frame: str = "odom",
) -> None:
    """Publishes the scene's static data once, on latched publishers of ``handle``."""
    now = handle.now_ns()
    transforms = [
        transform_stamped(T_map_odom, map_frame, odom_frame, now),
        transform_stamped(robot.T_base_lidar(), "base_link", "lidar", now),
        transform_stamped(robot.T_base_camera_optical(), "base_link", "camera_optical", now),
    ]
    handle.create_publisher("tf2_msgs/msg/TFMessage", "/tf_static", "latched").publish(
        tf_message(transforms)
    )
    obstacles = boxes_to_detections(static_map(scene), header(now, map_frame))
    handle.create_publisher("vision_msgs/msg/Detection3DArray", "map/obstacles", "latched").publish(
        obstacles
    )
    target = np.asarray(scene.objects[scene.target_index].box, dtype=np.float64)
    noise = rng.normal(0.0, target_noise_m / np.sqrt(2), 2)
    request = pose_stamped(target[0] + noise[0], target[1] + noise[1], target[6], now, map_frame)
    handle.create_publisher("geometry_msgs/msg/PoseStamped", "target_request", "latched").publish(
        request
    )
