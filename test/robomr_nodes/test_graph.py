"""The shipped graph (launch/robomr.launch.yaml): every topic connected, all shown in RViz."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from robomr_nodes.demo.run import DemoOptions, demo_plan
from robomr_nodes.runner import RunOptions, build_executor
from robomr_nodes.runtime.executor import TopicInfo

REPO = Path(__file__).resolve().parents[2]
# RViz has no display for vision_msgs without a plugin: those topics are drawn as markers.
NOT_VISUAL = (
    "vision_msgs/",
    "diagnostic_msgs/",
    "tf2_msgs/",
    "rosgraph_msgs/",
    "sensor_msgs/msg/CameraInfo",
)


@pytest.fixture(scope="module")
def topics(tmp_path_factory: pytest.TempPathFactory) -> dict[str, TopicInfo]:
    """Every node of the shipped launch file constructed (quick sensor settings)."""
    plan = demo_plan(DemoOptions(out=tmp_path_factory.mktemp("graph"), quick=True))
    return build_executor(plan.nodes, RunOptions()).topics()


@pytest.fixture(scope="module")
def interface() -> dict[str, dict[str, str]]:
    return yaml.safe_load((REPO / "launch" / "robomr.graph.yaml").read_text())


def test_every_published_topic_is_read_inside_the_graph_or_declared(topics, interface) -> None:
    dangling = sorted(
        t
        for t, i in topics.items()
        if i.publishers and not i.subscribers and t not in interface["outputs"]
    )
    assert dangling == [], "published but never read: declare them in launch/robomr.graph.yaml"


def test_every_subscribed_topic_has_a_publisher_or_is_declared(topics, interface) -> None:
    unfed = sorted(
        t
        for t, i in topics.items()
        if i.subscribers and not i.publishers and t not in interface["inputs"]
    )
    assert unfed == []


def test_declared_interface_topics_exist(topics, interface) -> None:
    stale = sorted((set(interface["outputs"]) | set(interface["inputs"])) - set(topics))
    assert stale == []


def test_rviz_config_shows_every_visual_topic(topics) -> None:
    rviz = yaml.safe_load((REPO / "rviz" / "robomr.rviz").read_text())
    shown = {d["Topic"]["Value"] for d in rviz["Visualization Manager"]["Displays"] if "Topic" in d}
    visual = {t for t, i in topics.items() if not i.typename.startswith(NOT_VISUAL)}
    assert visual - shown == set(), "add an RViz display for these topics"
