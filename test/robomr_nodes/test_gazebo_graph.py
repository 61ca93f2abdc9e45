"""The Gazebo branch of launch/robomr.launch.yaml (use_gazebo:=true), without Gazebo.

Gazebo and ros_gz_bridge cannot run here; the bridge's topics come from its real config file
(config/gz_bridge.yaml, read as ros_gz_bridge reads it) and stand in the graph as publishers.
Checked: every input of every node has a publisher, the bridge carries odometry, TF, camera,
cmd_vel and the clock under the names the exported world uses, the scene publisher sends what
the simulator would, and the path follower drives a DiffDrive-like robot along a path.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from robomr_nodes.api import NodeHandle, RobomrNode
from robomr_nodes.convert.detections import detections_to_boxes
from robomr_nodes.convert.path import poses_to_path
from robomr_nodes.convert.tf import odometry
from robomr_nodes.demo.run import QUICK_PARAMS
from robomr_nodes.gz_bridge import BridgeConfigError, BridgedTopic, load_bridge_config
from robomr_nodes.launch_yaml import LaunchPlan, load_launch
from robomr_nodes.messages import header, new_message, serialize, time_msg
from robomr_nodes.nodes.path_follower import PathFollowerNode
from robomr_nodes.nodes.scene_publisher import ScenePublisherNode
from robomr_nodes.nodes.sim_node import SimNode
from robomr_nodes.params import ParamOverride
from robomr_nodes.runner import RunOptions, build_executor
from robomr_nodes.runtime.executor import EmbeddedExecutor
from sim.sdf_robot import GZ_TOPICS

REPO = Path(__file__).resolve().parents[2]


def _gazebo_plan(namespace: str = "robomr") -> tuple[LaunchPlan, list[BridgedTopic]]:
    plan = load_launch(
        REPO / "launch" / "robomr.launch.yaml", {"use_gazebo": "true", "namespace": namespace}
    )
    (bridge,) = [n for n in plan.foreign if n.package == "ros_gz_bridge"]
    config = bridge.params["config_file"].value
    return plan, load_bridge_config(config, bridge.namespace, bridge.name, bridge.remaps)


@pytest.fixture(scope="module")
def gazebo_graph() -> tuple[EmbeddedExecutor, list[BridgedTopic]]:
    plan, bridged = _gazebo_plan()
    for spec in plan.nodes:
        for name, value in QUICK_PARAMS.get(spec.name, {}).items():
            spec.params[name] = ParamOverride(value, "test: a coarse map")
    executor = build_executor(plan.nodes, RunOptions())
    for topic in bridged:
        if topic.to_ros:  # Gazebo's side of the bridge publishes these
            executor.create_injector(topic.ros_type, topic.ros_topic, node="/robomr/gz_bridge")
    return executor, bridged


def test_every_node_input_has_a_publisher(gazebo_graph: tuple) -> None:
    executor, bridged = gazebo_graph
    topics = executor.topics()
    unfed = sorted(t for t, i in topics.items() if i.subscribers and not i.publishers)
    assert unfed == []
    # and what the bridge sends into Gazebo is published by a node
    into_gazebo = [t.ros_topic for t in bridged if t.from_ros]
    assert into_gazebo and all(topics[t].publishers for t in into_gazebo)


def test_bridge_carries_odometry_tf_camera_cmd_vel_and_clock(gazebo_graph: tuple) -> None:
    _, bridged = gazebo_graph
    by_topic = {t.ros_topic: t for t in bridged}
    expected = {
        "/robomr/points": "sensor_msgs/msg/PointCloud2",
        "/robomr/odom": "nav_msgs/msg/Odometry",
        "/tf": "tf2_msgs/msg/TFMessage",
        "/robomr/camera/image": "sensor_msgs/msg/Image",
        "/robomr/camera/camera_info": "sensor_msgs/msg/CameraInfo",
        "/robomr/cmd_vel": "geometry_msgs/msg/Twist",
        "/clock": "rosgraph_msgs/msg/Clock",
    }
    assert {t: by_topic[t].ros_type for t in expected} == expected
    assert by_topic["/robomr/cmd_vel"].direction == "ROS_TO_GZ"


def test_bridge_uses_the_gazebo_topics_of_the_exported_world() -> None:
    _, bridged = _gazebo_plan()
    gz = {t.gz_topic for t in bridged}
    # gz-sensors: a gpu_lidar's cloud is "<topic>/points"; a camera's info is "<dir>/camera_info"
    image_dir = GZ_TOPICS["image"].rsplit("/", 1)[0]
    assert {
        GZ_TOPICS["odom"],
        GZ_TOPICS["tf"],
        GZ_TOPICS["cmd_vel"],
        GZ_TOPICS["image"],
        f"{GZ_TOPICS['points']}/points",
        f"{image_dir}/camera_info",
        "/clock",
    } == gz


def test_gazebo_is_the_only_clock_and_every_robomr_node_follows_it(gazebo_graph: tuple) -> None:
    executor, _ = gazebo_graph
    assert executor.topics()["/clock"].publishers == ["/robomr/gz_bridge"]
    assert all(node.handle.clock.use_sim_time for node in executor.nodes.values())


def test_bridge_topics_follow_the_namespace() -> None:
    _, bridged = _gazebo_plan("robot2")
    names = {t.ros_topic for t in bridged}
    assert {"/robot2/odom", "/robot2/cmd_vel", "/tf", "/clock"} <= names


@pytest.mark.parametrize(
    ("text", "message"),
    [("{a: 1}", "YAML list"), ("- {ros_topic_name: a}", "type names"), ("- 3", "expected a map")],
)
def test_bad_bridge_configs_are_clear_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bridge.yaml"
    path.write_text(text)
    with pytest.raises(BridgeConfigError, match=message):
        load_bridge_config(path)


def _static_outputs(node_cls: type[RobomrNode], params: dict[str, Any]) -> dict[str, Any]:
    ex = EmbeddedExecutor()
    got: dict[str, Any] = {}
    ex.add_tap(lambda topic, _ty, _s, msg, _q: got.setdefault(topic, msg))
    overrides = {k: ParamOverride(v, "test") for k, v in params.items()}
    ex.add_node(node_cls, namespace="robomr", params=overrides)
    return got


def test_scene_publisher_sends_what_the_simulator_sends() -> None:
    small = {"camera_width_px": 32, "camera_height_px": 24, "lidar_beams": 16}
    sim = _static_outputs(SimNode, {"scenario": "occluded-target", **small})
    scene = _static_outputs(ScenePublisherNode, {"scenario": "occluded-target"})
    for topic, ty in (("/robomr/map/obstacles", "vision_msgs/msg/Detection3DArray"),
                      ("/robomr/target_request", "geometry_msgs/msg/PoseStamped")):  # fmt: skip
        assert serialize(scene[topic], ty) == serialize(sim[topic], ty)  # same scene and seeds
    tf = {t.child_frame_id: t for t in scene["/tf_static"].transforms}
    sim_tf = {t.child_frame_id: t for t in sim["/tf_static"].transforms}
    for child in ("lidar", "camera_optical"):
        ty = "geometry_msgs/msg/TransformStamped"
        assert serialize(tf[child], ty) == serialize(sim_tf[child], ty)
    node = ScenePublisherNode  # map -> odom: Gazebo's odometry starts at the spawn pose
    x, y, _ = _scene_start("occluded-target")
    assert (tf["odom"].header.frame_id, tf["odom"].transform.translation.x) == ("map", x)
    assert tf["odom"].transform.translation.y == y and node.NAME == "scene_publisher"
    assert len(detections_to_boxes(scene["/robomr/map/obstacles"])) > 0


def _scene_start(scenario: str) -> tuple[float, float, float]:
    from sim import load_or_generate

    return tuple(load_or_generate(scenario).ego_start)


class DiffDriveStandIn(RobomrNode):
    """What Gazebo does for the follower: integrates cmd_vel (unicycle), publishes odom from
    the start pose and /clock, at 100 Hz of its own time."""

    NAME = "diff_drive"

    def __init__(self, handle: NodeHandle) -> None:
        super().__init__(handle)
        self.x = self.y = self.yaw = self.v = self.w = 0.0
        self.commands = 0
        self._clock = handle.create_publisher("rosgraph_msgs/msg/Clock", "/clock")
        self._odom = handle.create_publisher("nav_msgs/msg/Odometry", "odom")
        handle.create_subscription("geometry_msgs/msg/Twist", "cmd_vel", self._on_cmd)
        handle.create_timer(0.01, self._step)

    def _on_cmd(self, msg: Any) -> None:
        self.v, self.w, self.commands = msg.linear.x, msg.angular.z, self.commands + 1

    def _step(self) -> None:
        now = self.handle.now_ns()
        self.yaw += self.w * 0.01
        self.x += self.v * math.cos(self.yaw) * 0.01
        self.y += self.v * math.sin(self.yaw) * 0.01
        self._clock.publish(new_message("rosgraph_msgs/msg/Clock", clock=time_msg(now)))
        self._odom.publish(odometry(self.x, self.y, self.yaw, self.v, 0.0, self.w, now, "odom"))


def test_path_follower_drives_a_diff_drive_robot_to_the_end_of_the_path() -> None:
    ex = EmbeddedExecutor()
    drive = ex.add_node(DiffDriveStandIn, namespace="robomr")
    ex.add_node(PathFollowerNode, namespace="robomr",
                params={"use_sim_time": ParamOverride(True, "test")})  # fmt: skip
    static = ex.create_injector("tf2_msgs/msg/TFMessage", "/tf_static", "latched")
    path = ex.create_injector("nav_msgs/msg/Path", "/robomr/croa/path")
    # map -> odom: the robot starts at (10, 5) facing +x; the path runs 20 m along it, then left
    from geometry.transforms import pose_to_transform
    from robomr_nodes.convert.tf import tf_message, transform_stamped

    static.publish(
        tf_message([transform_stamped(pose_to_transform(10, 5, 0, 0), "map", "odom", 0)])
    )
    poses = np.array([[10.0 + i, 5.0 + max(0, i - 12) * 0.5, 0.0] for i in range(21)])
    ex.schedule(
        ex.now_ns() + 50_000_000, lambda: path.publish(poses_to_path(poses, header(0, "map")))
    )
    ex.spin(duration_s=25.0)
    assert drive.commands > 100
    end = np.array([10.0 + drive.x, 5.0 + drive.y])  # odom -> map
    assert np.linalg.norm(end - poses[-1, :2]) < 1.5  # goal tolerance + braking
    assert abs(drive.v) < 0.3  # stopped at the end
