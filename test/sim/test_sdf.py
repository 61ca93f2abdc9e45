"""Gazebo SDF export: SDF 1.9 that libsdformat loads, with every object, and a robot that drives."""

from __future__ import annotations

import math
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from sim import list_scenarios, load_or_generate
from sim.lidar import LidarConfig
from sim.scene import SceneObject
from sim.sdf import ROBOT_MODEL, SdfError, scene_to_sdf, write_sdf
from sim.sdf_robot import GZ_TOPICS


@pytest.fixture(scope="module")
def world_xml(occluded_scene) -> ET.Element:
    return ET.fromstring(scene_to_sdf(occluded_scene, lidar=LidarConfig(beams=64)))


def test_sdf_is_well_formed_version_1_9(world_xml) -> None:
    assert world_xml.tag == "sdf" and world_xml.get("version") == "1.9"
    assert len(world_xml.findall("world")) == 1
    plugins = {p.get("name") for p in world_xml.findall("world/plugin")}
    assert "gz::sim::systems::Sensors" in plugins and "gz::sim::systems::Physics" in plugins


def test_every_object_is_a_static_model_with_pose_geometry_and_colour(
    occluded_scene, world_xml
) -> None:
    models = {m.get("name"): m for m in world_xml.findall("world/model")}
    assert set(models) == {o.name for o in occluded_scene.objects} | {"ground_plane", ROBOT_MODEL}
    for obj in occluded_scene.objects:
        m = models[obj.name]
        assert m.findtext("static") == "true"
        pose = np.array(m.findtext("pose").split(), dtype=float)
        # 9 significant digits: < 1e-6 m at street coordinates (< 1 km).
        np.testing.assert_allclose(pose, [*obj.box[:3], 0, 0, obj.box[6]], atol=1e-6)
        geometry = m.find("link/visual/geometry")
        # SDF's geometry element is named like a primitive shape; composite shapes (vehicle
        # bodies, actors) are exported as their box and cones as cylinders (SDF 1.9 has none).
        tag = {"cylinder": "cylinder", "cone": "cylinder", "ellipsoid": "ellipsoid"}.get(
            obj.shape, "box"
        )
        assert geometry.find(tag) is not None
        assert m.find(f"link/collision/geometry/{tag}") is not None
        if tag == "box":  # 9 significant digits: relative error < 1e-8
            np.testing.assert_allclose(
                np.array(geometry.findtext("box/size").split(), dtype=float),
                obj.box[3:6],
                rtol=1e-8,
            )
        diffuse = np.array(m.findtext("link/visual/material/diffuse").split(), dtype=float)
        np.testing.assert_allclose(diffuse, [*obj.color, 1.0], atol=1e-8)  # 9 digits of [0, 1]


def test_robot_model_carries_the_configured_lidar(occluded_scene, world_xml) -> None:
    robot = next(m for m in world_xml.findall("world/model") if m.get("name") == ROBOT_MODEL)
    sensor = robot.find("link/sensor")
    assert sensor.get("type") == "gpu_lidar"
    assert sensor.findtext("lidar/scan/vertical/samples") == "64"
    assert sensor.findtext("lidar/scan/horizontal/samples") == str(LidarConfig().columns)
    assert float(sensor.findtext("lidar/scan/vertical/max_angle")) == pytest.approx(
        math.radians(15.0), abs=1e-8
    )
    x, y, yaw = occluded_scene.ego_start
    np.testing.assert_allclose(
        np.array(robot.findtext("pose").split(), dtype=float), [x, y, 0, 0, 0, yaw], atol=1e-6
    )


def test_robot_is_optional_and_file_is_written(occluded_scene, tmp_path) -> None:
    path = write_sdf(occluded_scene, tmp_path / "world.sdf", include_robot=False)
    names = {m.get("name") for m in ET.parse(path).getroot().findall("world/model")}
    assert ROBOT_MODEL not in names and len(names) == len(occluded_scene.objects) + 1


def test_object_named_like_an_exporter_model_is_refused(make_scene) -> None:
    obj = SceneObject("ground_plane", "bin", (0, 0, 0.5, 1, 1, 1, 0), (0.1, 0.1, 0.1), "plastic")
    with pytest.raises(SdfError, match="ground_plane"):
        scene_to_sdf(make_scene([obj]))


# -- the real SDFormat parser ----------------------------------------------------------------
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def sdf_check(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """scripts/sdf_check.cc built against libsdformat (skipped where it cannot be built)."""
    for tool in ("g++", "pkg-config"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (scripts/setup-venv.sh installs it)")
    flags = subprocess.run(
        ["pkg-config", "--cflags", "--libs", "sdformat12"], capture_output=True, text=True
    )
    if flags.returncode != 0:
        pytest.skip("libsdformat is not installed (Debian: libsdformat-dev, SDFormat 12)")
    binary = tmp_path_factory.mktemp("sdf") / "sdf_check"
    source = REPO / "scripts" / "sdf_check.cc"
    build = ["g++", "-std=c++17", str(source), "-o", str(binary), *flags.stdout.split()]
    subprocess.run(build, check=True)
    return binary


@pytest.mark.parametrize("scenario", list_scenarios())
def test_every_exported_world_loads_in_libsdformat(
    sdf_check: Path, scenario: str, tmp_path: Path
) -> None:
    scene = load_or_generate(scenario)
    path = write_sdf(scene, tmp_path / f"{scenario}.sdf")
    result = subprocess.run([str(sdf_check), str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    # the parser's own count: every scene object, the ground plane and the robot
    assert f"{len(scene.objects) + 2} models" in result.stdout


def test_a_broken_world_is_reported_by_libsdformat(sdf_check: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.sdf"
    duplicate_links = '<model name="m"><link name="l"/><link name="l"/></model>'
    bad.write_text(f'<sdf version="1.9"><world name="w">{duplicate_links}</world></sdf>')
    result = subprocess.run([str(sdf_check), str(bad)], capture_output=True, text=True)
    assert result.returncode == 1 and "error" in result.stdout


def test_robot_drives_with_diff_drive_and_names_its_sensor_frames(world_xml) -> None:
    robot = next(m for m in world_xml.findall("world/model") if m.get("name") == ROBOT_MODEL)
    joints = {j.get("name"): j for j in robot.findall("joint")}
    (drive,) = [p for p in robot.findall("plugin") if p.get("name").endswith("DiffDrive")]
    assert {drive.findtext("left_joint"), drive.findtext("right_joint")} <= set(joints)
    assert (drive.findtext("frame_id"), drive.findtext("child_frame_id")) == ("odom", "base_link")
    assert {drive.findtext(k) for k in ("topic", "odom_topic", "tf_topic")} == {
        GZ_TOPICS["cmd_vel"],
        GZ_TOPICS["odom"],
        GZ_TOPICS["tf"],
    }
    sensors = {s.get("type"): s for s in robot.findall("link/sensor")}
    assert sensors["gpu_lidar"].findtext("gz_frame_id") == "lidar"
    assert sensors["camera"].findtext("gz_frame_id") == "camera_optical"
    assert sensors["camera"].findtext("topic") == GZ_TOPICS["image"]
