"""Export a scene as a Gazebo (gz sim) SDF 1.9 world.

The world holds the usual gz-sim system plugins (physics, user commands, scene broadcaster,
sensors with ogre2), a sun light matching ``sim.shading.Lighting``, a ground plane, and one
static model per scene object (named like the object) with a box, cylinder or ellipsoid
geometry (composite shapes, such as vehicle bodies and pedestrians, as their bounding box;
cones as cylinders; a sloped terrain is not exported), its pose (x y z 0 0 yaw) and its colour
as material. Moving vehicles are exported at their position at t = 0, static. Optionally the
robot (``sim.sdf_robot``: a DiffDrive body with the lidar and camera of ``RobotConfig`` /
``LidarConfig`` / ``CameraConfig``) stands at the ego start. Every exported world loads without
errors in libsdformat (test/sim/test_sdf.py checks it with the real parser).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from sim.camera import CameraConfig
from sim.lidar import LidarConfig
from sim.robot import RobotConfig
from sim.scene import Scene, SceneObject
from sim.sdf_robot import robot_model
from sim.shading import Lighting

SDF_VERSION = "1.9"
ROBOT_MODEL = "robomr_robot"
_PLUGINS = (
    ("gz-sim-physics-system", "gz::sim::systems::Physics"),
    ("gz-sim-user-commands-system", "gz::sim::systems::UserCommands"),
    ("gz-sim-scene-broadcaster-system", "gz::sim::systems::SceneBroadcaster"),
    ("gz-sim-sensors-system", "gz::sim::systems::Sensors"),
)


class SdfError(ValueError):
    """The scene cannot be exported (name clash with the exporter's own models, bad path)."""


def _el(parent: ET.Element, tag: str, text: str | None = None, **attrib: str) -> ET.Element:
    child = ET.SubElement(parent, tag, attrib)
    if text is not None:
        child.text = text
    return child


def _nums(*values: float) -> str:
    return " ".join(f"{v:.9g}" for v in values)  # 9 digits: sub-mm at 1 km


def _geometry(parent: ET.Element, obj: SceneObject) -> None:
    geometry = _el(parent, "geometry")
    length, width, height = obj.box[3:6]
    if obj.shape not in ("cylinder", "cone", "ellipsoid"):  # composite meshes: their box
        _el(_el(geometry, "box"), "size", _nums(length, width, height))
    elif obj.shape in ("cylinder", "cone"):  # SDF 1.9 has no cone
        cylinder = _el(geometry, "cylinder")
        _el(cylinder, "radius", _nums(0.25 * (length + width)))
        _el(cylinder, "length", _nums(height))
    else:
        _el(_el(geometry, "ellipsoid"), "radii", _nums(0.5 * length, 0.5 * width, 0.5 * height))


def _object_model(world: ET.Element, obj: SceneObject) -> None:
    model = _el(world, "model", name=obj.name)
    _el(model, "static", "true")
    x, y, z, *_, yaw = obj.box
    _el(model, "pose", _nums(x, y, z, 0.0, 0.0, yaw))
    link = _el(model, "link", name="link")
    _geometry(_el(link, "collision", name="collision"), obj)
    visual = _el(link, "visual", name="visual")
    _geometry(visual, obj)
    material = _el(visual, "material")
    _el(material, "ambient", _nums(*obj.color, 1.0))
    _el(material, "diffuse", _nums(*obj.color, 1.0))
    _el(material, "specular", _nums(0.1, 0.1, 0.1, 1.0))


def scene_to_sdf(
    scene: Scene,
    include_robot: bool = True,
    robot: RobotConfig | None = None,
    lidar: LidarConfig | None = None,
    lighting: Lighting | None = None,
    camera: CameraConfig | None = None,
) -> str:
    """The SDF world (XML text) of ``scene``.

    Raises:
        SdfError: a scene object is named like one of the exporter's models.
    """
    clash = {"ground_plane", ROBOT_MODEL} & {o.name for o in scene.objects}
    if clash:
        raise SdfError(f"scene objects {sorted(clash)} clash with the exporter's model names")
    lighting = lighting or Lighting()
    root = ET.Element("sdf", version=SDF_VERSION)
    world = _el(root, "world", name=f"robomr_{scene.name.replace('-', '_')}_{scene.seed}")
    physics = _el(world, "physics", name="1ms", type="ignored")
    _el(physics, "max_step_size", "0.001")
    _el(physics, "real_time_factor", "1.0")
    for filename, name in _PLUGINS:
        plugin = _el(world, "plugin", filename=filename, name=name)
        if name.endswith("Sensors"):
            _el(plugin, "render_engine", "ogre2")
    gz_scene = _el(world, "scene")
    _el(gz_scene, "ambient", _nums(lighting.ambient, lighting.ambient, lighting.ambient, 1.0))
    _el(gz_scene, "background", _nums(*lighting.sky_horizon_rgb, 1.0))
    sun = _el(world, "light", name="sun", type="directional")
    _el(sun, "cast_shadows", "true" if lighting.shadows else "false")
    _el(sun, "pose", _nums(0.0, 0.0, 50.0, 0.0, 0.0, 0.0))
    _el(sun, "diffuse", _nums(0.9, 0.9, 0.9, 1.0))
    _el(sun, "direction", _nums(*(-lighting.sun_direction)))
    ground = _el(world, "model", name="ground_plane")
    _el(ground, "static", "true")
    _el(ground, "pose", _nums(0.0, 0.0, -0.12, 0.0, 0.0, 0.0))  # below the scene's ground box
    plane_link = _el(ground, "link", name="link")
    for tag in ("collision", "visual"):
        plane = _el(_el(_el(plane_link, tag, name=tag), "geometry"), "plane")
        _el(plane, "normal", "0 0 1")
        _el(plane, "size", "1000 1000")
    for obj in scene.objects:
        _object_model(world, obj)
    if include_robot:
        robot_model(
            world,
            ROBOT_MODEL,
            tuple(scene.ego_start),
            robot or RobotConfig(),
            lidar or LidarConfig(),
            camera or CameraConfig(),
        )
    ET.indent(root)
    return '<?xml version="1.0"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_sdf(
    scene: Scene,
    path: str | Path,
    include_robot: bool = True,
    robot: RobotConfig | None = None,
    lidar: LidarConfig | None = None,
) -> Path:
    """Writes ``scene_to_sdf`` of the scene to ``path``.

    Raises:
        SdfError: name clash, or the file cannot be written.
    """
    p = Path(path)
    try:
        p.write_text(scene_to_sdf(scene, include_robot, robot, lidar))
    except OSError as err:
        raise SdfError(f"cannot write {p}: {err.strerror or err}") from err
    return p
