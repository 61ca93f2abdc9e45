"""Surface materials and object kinds of the simulated street.

A material gives the lidar reflectivity of a surface (the fraction of the pulse energy a
perpendicular hit returns, in [0, 1]) and its return probability (``RETURN_PROBABILITY``: glass,
wire mesh and foliage let most beams through, which then go on to what lies behind); the camera
colour is stored per object in the scene so it stays stable across frames, except for the parts
of composite shapes that have a fixed colour (``PART_COLORS``: glass, tyres, plates). The lidar's
intensity and dropout models are in ``sim/lidar.py``.
"""

from __future__ import annotations

from types import MappingProxyType

# Reflectivities are typical values for a 905 nm automotive lidar (asphalt dark, retroreflective
# road paint bright); they only need to be plausible and distinct per material.
REFLECTIVITY = MappingProxyType(
    {
        "asphalt": 0.12,
        "concrete": 0.35,
        "grass": 0.45,
        "road_paint": 0.85,
        "car_paint": 0.30,
        "metal": 0.55,
        "glass_facade": 0.20,
        "brick": 0.30,
        "wood": 0.25,
        "foliage": 0.40,
        "plastic": 0.50,
        "reflective_plastic": 0.90,
        # Composite shapes (sim/vehicles.py, sim/actors.py). 905 nm values: tyre rubber is
        # nearly black; licence plates, reflex reflectors and sign faces are retroreflective.
        "glass": 0.10,
        "tire_rubber": 0.04,
        "retroreflector": 0.95,
        "clothing": 0.30,
        "skin": 0.45,
        "wire_mesh": 0.45,
    }
)

# Index of each material in per-triangle material arrays (sim/world.py); -1 there means "the
# object's own material".
MATERIAL_NAMES: tuple[str, ...] = tuple(REFLECTIVITY)

# Probability that a beam hitting the material returns from it (1 for opaque, diffuse
# surfaces). Otherwise it passes through and the lidar keeps going (sim/lidar.py). Automotive
# glass returns a few percent of beams (dropouts on windows are the norm in real scans); a
# chain-link fence or a tree crown stops some of them.
RETURN_PROBABILITY = MappingProxyType(
    dict.fromkeys(REFLECTIVITY, 1.0)
    | {"glass": 0.08, "wire_mesh": 0.35, "foliage": 0.55, "glass_facade": 0.6}
)

# Vehicle classes in perception's label order (docs/conventions.md).
CLASSES: tuple[str, ...] = ("car", "van", "truck", "bus")

# Every kind of object a scene may contain; vehicles are the CLASSES.
STATIC_KINDS: tuple[str, ...] = (
    "ground",
    "road",
    "sidewalk",
    "marking",
    "building",
    "pole",
    "tree_trunk",
    "tree_crown",
    "bin",
    "barrier",
    "scooter",
    # Negatives for the detector (sim/actors.py): people, bikes, roadside furniture, plants.
    "pedestrian",
    "cyclist",
    "bicycle",
    "fence",
    "bush",
    "hedge",
    "cone",
    "bollard",
    "bench",
    "sign",
    # Roadside structures of car height (sim/roadside.py).
    "wall",
    "planter",
)
KINDS: tuple[str, ...] = CLASSES + STATIC_KINDS

# Kinds a robot drives over or under rather than into.
NON_OBSTACLE_KINDS: frozenset[str] = frozenset({"ground", "road", "marking"})

# Primitive shapes fill their box; vehicle bodies (sim/vehicles.py) and actors (sim/actors.py)
# are composite meshes inside their box.
PRIMITIVE_SHAPES: tuple[str, ...] = ("box", "cylinder", "ellipsoid", "cone")
BODY_SHAPES: tuple[str, ...] = ("hatchback", "sedan", "suv", "van", "truck", "bus")
ACTOR_SHAPES: tuple[str, ...] = ("pedestrian", "cyclist", "bicycle", "fence", "bench")
SHAPES: tuple[str, ...] = PRIMITIVE_SHAPES + BODY_SHAPES + ACTOR_SHAPES

# Vehicle dimension ranges (length, width, height) in metres, uniform per class: the box
# vehicles of ``vehicle_shapes: box`` scenarios. Realistic bodies draw from sim/vehicles.py.
VEHICLE_SIZE_RANGES_M = MappingProxyType(
    {
        "car": ((4.1, 4.9), (1.75, 1.95), (1.40, 1.65)),
        "van": ((4.9, 5.9), (1.95, 2.10), (1.95, 2.60)),
        "truck": ((6.8, 9.0), (2.35, 2.55), (3.00, 3.60)),
        "bus": ((10.5, 12.5), (2.50, 2.55), (3.00, 3.30)),
    }
)

# Body colours (RGB in [0, 1]) the generator draws vehicle paint from.
VEHICLE_PALETTE: tuple[tuple[float, float, float], ...] = (
    (0.80, 0.10, 0.10),
    (0.10, 0.25, 0.70),
    (0.92, 0.92, 0.90),
    (0.15, 0.15, 0.17),
    (0.55, 0.57, 0.60),
    (0.85, 0.65, 0.10),
    (0.15, 0.45, 0.25),
    (0.40, 0.20, 0.10),
)

FACADE_PALETTE: tuple[tuple[float, float, float], ...] = (
    (0.72, 0.66, 0.58),
    (0.60, 0.35, 0.28),
    (0.80, 0.78, 0.74),
    (0.45, 0.50, 0.58),
    (0.68, 0.60, 0.45),
)

# Fixed colour and material of every non-vehicle kind except buildings (facade palette).
KIND_APPEARANCE = MappingProxyType(
    {
        "ground": ((0.36, 0.45, 0.25), "grass"),
        "road": ((0.24, 0.24, 0.26), "asphalt"),
        "sidewalk": ((0.62, 0.61, 0.58), "concrete"),
        "marking": ((0.95, 0.95, 0.92), "road_paint"),
        "pole": ((0.30, 0.32, 0.35), "metal"),
        "tree_trunk": ((0.35, 0.24, 0.15), "wood"),
        "tree_crown": ((0.20, 0.42, 0.16), "foliage"),
        "bin": ((0.12, 0.35, 0.20), "plastic"),
        "barrier": ((0.95, 0.45, 0.08), "reflective_plastic"),
        "scooter": ((0.20, 0.20, 0.22), "metal"),
        "pedestrian": ((0.30, 0.32, 0.45), "clothing"),
        "cyclist": ((0.55, 0.15, 0.12), "clothing"),
        "bicycle": ((0.15, 0.25, 0.55), "metal"),
        "fence": ((0.45, 0.47, 0.45), "wire_mesh"),
        "bush": ((0.22, 0.40, 0.15), "foliage"),
        "hedge": ((0.16, 0.36, 0.14), "foliage"),
        "cone": ((0.98, 0.40, 0.05), "reflective_plastic"),
        "bollard": ((0.25, 0.25, 0.27), "metal"),
        "bench": ((0.45, 0.30, 0.18), "wood"),
        "sign": ((0.85, 0.85, 0.88), "retroreflector"),
        "wall": ((0.60, 0.35, 0.28), "brick"),
        "planter": ((0.62, 0.61, 0.58), "concrete"),
    }
)

# Fixed colour (RGB) of parts of composite shapes, by material: the camera shows these instead
# of the object's colour on glass, tyres and plates.
PART_COLORS = MappingProxyType(
    {
        "glass": (0.08, 0.10, 0.13),
        "tire_rubber": (0.04, 0.04, 0.04),
        "retroreflector": (0.92, 0.90, 0.80),
        "skin": (0.80, 0.62, 0.50),
        "metal": (0.45, 0.46, 0.48),
    }
)
