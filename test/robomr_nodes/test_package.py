"""The ROS 2 package files: package.xml, setup.py entry points, launch/config/rviz files."""

from __future__ import annotations

import ast
import importlib
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from robomr_nodes.registry import NODE_CLASSES, load_node_class

REPO = Path(__file__).resolve().parents[2]


def _setup_node_executables() -> dict[str, str]:
    tree = ast.parse((REPO / "setup.py").read_text())
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Assign)
            and getattr(node.targets[0], "id", "") == "NODE_EXECUTABLES"
        ):
            return ast.literal_eval(node.value)
    raise AssertionError("setup.py has no NODE_EXECUTABLES")


def test_package_xml_is_format_3_ament_python_with_the_runtime_dependencies() -> None:
    root = ET.parse(REPO / "package.xml").getroot()
    assert root.get("format") == "3" and root.findtext("name") == "robomr"
    assert root.find("export/build_type").text == "ament_python"
    deps = {e.text for e in root.findall("exec_depend")}
    assert {
        "rclpy",
        "sensor_msgs",
        "vision_msgs",
        "nav_msgs",
        "visualization_msgs",
        "tf2_ros",
        "launch_ros",
        "ros2launch",
    } <= deps
    assert (REPO / "resource" / "robomr").exists()


def test_every_node_has_a_console_script_and_a_registry_entry() -> None:
    scripts = _setup_node_executables()
    assert set(scripts) == set(NODE_CLASSES)
    for exe, target in scripts.items():
        module, func = target.split(":")
        assert callable(getattr(importlib.import_module(module), func)), exe
        assert load_node_class(exe).__module__ == module


@pytest.mark.parametrize("exe", sorted(NODE_CLASSES))
def test_node_main_without_rclpy_explains_how_to_run(
    exe: str, capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        import rclpy  # noqa: F401

        pytest.skip("rclpy is installed: main() would start a real ROS 2 node")
    except ImportError:
        pass
    module, func = _setup_node_executables()[exe].split(":")
    assert getattr(importlib.import_module(module), func)([]) == 1
    assert "robomr launch" in capsys.readouterr().err


def test_config_file_is_valid_ros_parameters() -> None:
    doc = yaml.safe_load((REPO / "config" / "robomr.yaml").read_text())
    assert all("ros__parameters" in section for section in doc.values())
