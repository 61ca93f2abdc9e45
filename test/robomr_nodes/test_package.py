"""The ROS 2 package files: package.xml, setup.py entry points, launch/config/rviz files."""

from __future__ import annotations

import ast
import importlib
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from robomr_nodes.registry import NODE_CLASSES, load_node_class

REPO = Path(__file__).resolve().parents[2]
PYTHON_PACKAGES = (
    "robomr_nodes",
    "geometry",
    "perception",
    "planning",
    "gs_render",
    "sim",
    "mapmatch",
    "offload",
    "bench",
)  # fmt: skip  (setup.py installs these)
# Python modules -> rosdep keys (rosdistro rosdep/python.yaml; ROS 2 packages by their name)
ROSDEP = {
    "numpy": "python3-numpy",
    "scipy": "python3-scipy",
    "matplotlib": "python3-matplotlib",
    "yaml": "python3-yaml",
    "tqdm": "python3-tqdm",
    "PIL": "python3-pil",
    "psutil": "python3-psutil",
    "shapely": "python3-shapely",
    "pyproj": "python3-pyproj",
    "networkx": "python3-networkx",
    "rclpy": "rclpy",
    "rcl_interfaces": "rcl_interfaces",
    "rosidl_runtime_py": "rosidl_runtime_py",
}
TEST_ROSDEP = {"pytest": "python3-pytest", "hypothesis": "python3-hypothesis"}
# Python modules without a rosdep key -> their pip distribution (requirements-ros.txt)
PIP = {
    "torch": "torch",
    "spconv": "spconv",
    "open3d": "open3d-cpu",
    "cvxpy": "cvxpy",
    "gsplat": "gsplat",
    "rosbags": "rosbags",
    "mcap": "mcap",
    "mcap_ros2": "mcap-ros2-support",
    "fastapi": "fastapi",
    "uvicorn": "uvicorn",
    "httpx": "httpx",
    "prometheus_client": "prometheus_client",
    "kubernetes": "kubernetes",
    "kubernetes_validate": "kubernetes-validate",
    "lightgbm": "lightgbm",
    "redis": "redis",
    "shapefile": "pyshp",
    "pyrosm": "pyrosm",
    "leuvenmapmatching": "leuvenmapmatching",
    "numba": "numba",
    "tokenizers": "tokenizers",
    "safetensors": "safetensors",
    "transformers": "transformers",
    "openai": "openai",
}
AMENT_LINTERS = {"ament_flake8", "ament_pep257", "ament_xmllint"}  # test_ament_lint.py
LAUNCHED_COMMANDS = {"gz": "ros_gz_sim"}  # `executable: cmd:` programs -> their package
FIRST_PARTY = {
    *PYTHON_PACKAGES,
    "test",
    "scripts",
    *(f.stem for f in (REPO / "scripts").glob("*.py")),
}


def _imports(files: list[Path]) -> set[str]:
    """Top-level third-party modules imported by ``files``."""
    found = set()
    for f in files:
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.Import):
                found |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names) - FIRST_PARTY


def _package_files() -> list[Path]:
    return [f for pkg in PYTHON_PACKAGES for f in sorted((REPO / pkg).rglob("*.py"))]


def _test_files() -> list[Path]:
    return sorted((REPO / "test").rglob("*.py")) + sorted((REPO / "scripts").glob("*.py"))


def _keys(modules: set[str], table: dict[str, str]) -> set[str]:
    unmapped = modules - set(table) - set(PIP) - set(ROSDEP) - set(TEST_ROSDEP)
    assert not unmapped, f"map {sorted(unmapped)} to a rosdep key or pip name in this test"
    return {table[m] for m in modules if m in table}


def _message_packages() -> set[str]:
    """Packages of every ROS type named in the code (``sensor_msgs/msg/Image``)."""
    pattern = re.compile(r"[\"']([a-z0-9_]+)/(?:msg|srv|action)/[A-Z][A-Za-z0-9]*[\"']")
    return {m for f in _package_files() for m in pattern.findall(f.read_text())}


def _launched_packages() -> set[str]:
    """ROS packages the launch files start (``node: pkg:``, known commands) and run with."""
    found = {"launch_ros", "ros2launch"}  # ros2 launch of YAML launch files
    for f in (REPO / "launch").glob("*.launch.yaml"):
        text = f.read_text()
        found |= set(re.findall(r"^\s*pkg:\s*([a-z0-9_]+)", text, flags=re.M))
        for cmd, pkg in LAUNCHED_COMMANDS.items():
            if re.search(rf"cmd:\s*{cmd}\b", text):
                found.add(pkg)
    return found - {"robomr"}


def _requirement_names(path: Path) -> set[str]:
    names = set()
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith(("#", "-")):
            names.add(re.split(r"[=<>!~ ;\[]", line.strip(), maxsplit=1)[0].lower())
    return names


def _setup_node_executables() -> dict[str, str]:
    tree = ast.parse((REPO / "setup.py").read_text())
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Assign)
            and getattr(node.targets[0], "id", "") == "NODE_EXECUTABLES"
        ):
            return ast.literal_eval(node.value)
    raise AssertionError("setup.py has no NODE_EXECUTABLES")


def test_package_xml_is_format_3_ament_python() -> None:
    root = ET.parse(REPO / "package.xml").getroot()
    assert root.get("format") == "3" and root.findtext("name") == "robomr"
    assert root.find("export/build_type").text == "ament_python"
    assert (REPO / "resource" / "robomr").exists()


def test_package_xml_declares_exactly_what_the_code_uses() -> None:
    """Every import, message package and launched package, by its rosdep key; nothing else."""
    root = ET.parse(REPO / "package.xml").getroot()
    declared = {e.text for e in root.findall("exec_depend")}
    declared_test = {e.text for e in root.findall("test_depend")}
    used = _keys(_imports(_package_files()), ROSDEP)
    used_test = _keys(_imports(_test_files()), {**ROSDEP, **TEST_ROSDEP}) - used
    expected = used | _message_packages() | _launched_packages()
    assert declared == expected, f"missing {expected - declared}, unused {declared - expected}"
    assert declared_test == used_test | AMENT_LINTERS


def test_imports_without_a_rosdep_key_are_in_requirements_ros() -> None:
    pinned = _requirement_names(REPO / "requirements-ros.txt")
    modules = _imports(_package_files() + _test_files())
    assert {PIP[m].lower() for m in modules if m in PIP} - pinned == set()


def test_requirements_ros_is_generated_from_requirements() -> None:
    script = REPO / "scripts" / "requirements_ros.py"
    assert subprocess.run([sys.executable, str(script), "--check"], check=False).returncode == 0


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


ROS_ONLY = {"rclpy", "rcl_interfaces", "rosidl_runtime_py"}  # present only where ROS 2 is


@pytest.mark.parametrize("package", PYTHON_PACKAGES)
def test_every_module_imports(package: str) -> None:
    """Import-time API use (e.g. numpy-2-only names) fails here, also under make test-numpy1."""
    root = REPO / package
    if not root.exists():
        pytest.skip(f"{package}/ does not exist yet")
    for path in sorted(root.rglob("*.py")):
        module = ".".join(path.relative_to(REPO).with_suffix("").parts)
        try:
            importlib.import_module(module.removesuffix(".__init__"))
        except ModuleNotFoundError as err:
            if err.name not in ROS_ONLY:
                raise
