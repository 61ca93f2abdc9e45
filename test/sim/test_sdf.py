"""Gazebo SDF export: well-formed SDF 1.9 that lists every object with its pose and shape."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from sim.lidar import LidarConfig
from sim.scene import SceneObject
from sim.sdf import ROBOT_MODEL, SdfError, scene_to_sdf, write_sdf


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
