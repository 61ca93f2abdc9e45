"""The open3d raycasting world against analytic cases and the numpy slab reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.slab import slab_cast
from sim.world import CYLINDER_RESOLUTION, World, WorldError

# open3d casts float32 rays: distances of <= 100 m carry ~1e-5 m of rounding.
F32_TOL_M = 1e-4


@pytest.mark.parametrize("angle_deg", [0.0, 20.0, 45.0, 70.0])
@pytest.mark.parametrize("height_m", [0.5, 1.8, 7.0])
def test_ray_to_ground_plane_travels_height_over_cosine(make_scene, angle_deg, height_m) -> None:
    world = World(make_scene([("ground", "ground", (0, 0, -0.5, 500, 500, 1.0, 0))]))
    a = math.radians(angle_deg)
    t, idx = world.cast(np.array([0.0, 0.0, height_m]), np.array([[math.sin(a), 0, -math.cos(a)]]))
    assert t[0] == pytest.approx(height_m / math.cos(a), abs=F32_TOL_M)
    assert idx[0] == 0


@pytest.mark.parametrize(
    ("yaw", "expected_t"),
    [(0.0, 9.0), (math.pi / 2, 9.0), (math.pi / 4, 10.0 - math.sqrt(2.0))],
)
@pytest.mark.parametrize("engine", ["open3d", "slab"])
def test_ray_hits_box_face_or_corner_at_known_range(make_scene, yaw, expected_t, engine) -> None:
    box = (10.0, 0.0, 1.0, 2.0, 2.0, 2.0, yaw)
    origin, direction = np.array([0.0, 0.0, 1.0]), np.array([[1.0, 0.0, 0.0]])
    if engine == "open3d":
        t, idx = World(make_scene([("b", "building", box)])).cast(origin, direction)
    else:  # axis-parallel rays exercise the slab test's parallel-ray branch
        t, idx = slab_cast(np.array([box]), origin, direction)
    assert t[0] == pytest.approx(expected_t, abs=F32_TOL_M)
    assert idx[0] == 0


def test_cast_returns_index_of_each_object_and_minus_one_on_miss(make_scene) -> None:
    world = World(
        make_scene([("a", "bin", (5, 0, 0, 1, 1, 1, 0)), ("b", "bin", (0, 5, 0, 1, 1, 1, 0))])
    )
    dirs = np.array([[1.0, 0, 0], [0, 1.0, 0], [-1.0, 0, 0]])
    t, idx = world.cast(np.zeros(3), dirs)
    assert idx.tolist() == [0, 1, -1]
    assert np.isinf(t[2])
    assert t[:2] == pytest.approx([4.5, 4.5], abs=F32_TOL_M)


def test_directions_need_not_be_unit_length(make_scene) -> None:
    world = World(make_scene([("a", "bin", (5, 0, 0, 1, 1, 1, 0))]))
    t, _ = world.cast(np.zeros(3), np.array([[7.0, 0.0, 0.0]]))
    assert t[0] == pytest.approx(4.5, abs=F32_TOL_M)


def test_cylinder_is_hit_between_inscribed_and_circumscribed_radius(make_scene) -> None:
    world = World(make_scene([("p", "pole", (10, 0, 2, 1.0, 1.0, 4.0, 0), "cylinder")]))
    t, _ = world.cast(np.array([0.0, 0.0, 2.0]), np.array([[1.0, 0.0, 0.0]]))
    # The mesh is a 16-gon: its surface lies between r cos(pi/16) and r from the axis.
    inscribed = 0.5 * math.cos(math.pi / CYLINDER_RESOLUTION)
    assert 10.0 - 0.5 - F32_TOL_M <= t[0] <= 10.0 - inscribed + F32_TOL_M


@given(seed=st.integers(0, 2**16))
@settings(max_examples=15, deadline=None)
def test_open3d_world_agrees_with_numpy_slab_test(seed: int) -> None:
    from sim.scene import Lane, Scene, SceneObject

    rng = np.random.default_rng(seed)
    boxes = np.column_stack(
        [
            rng.uniform(-20, 20, (12, 3)),
            rng.uniform(0.5, 4, (12, 3)),
            rng.uniform(-np.pi, np.pi, 12),
        ]
    )
    objs = tuple(
        SceneObject(f"b{i}", "building", tuple(b), (0.5,) * 3, "brick") for i, b in enumerate(boxes)
    )
    world = World(Scene("t", 0, objs, (Lane(0, 3, 1, "driving"),), (0, 1), (0, 0, 0)))
    origins = rng.uniform(-25, 25, (300, 3))
    dirs = rng.normal(size=(300, 3))
    t_o3d, i_o3d = world.cast(origins, dirs)
    t_slab, i_slab = slab_cast(boxes, origins, dirs)
    # Same first object except where two boxes are hit within float32 noise of each other.
    same = (i_o3d == i_slab) | np.isclose(t_o3d, t_slab, atol=F32_TOL_M)
    assert np.all(same)
    np.testing.assert_allclose(t_o3d, t_slab, atol=F32_TOL_M)


@pytest.mark.parametrize(
    ("origins", "dirs", "message"),
    [
        (np.zeros(3), np.zeros((2, 3)), "non-zero"),
        (np.zeros(3), np.array([[np.nan, 0, 1.0]]), "NaN"),
        (np.zeros(3), np.ones((3, 2)), r"\[N, 3\]"),
        (np.array([np.inf, 0, 0]), np.ones((1, 3)), "NaN or Inf"),
    ],
)
def test_malformed_rays_raise_world_error(make_scene, origins, dirs, message) -> None:
    world = World(make_scene([("a", "bin", (5, 0, 0, 1, 1, 1, 0))]))
    with pytest.raises(WorldError, match=message):
        world.cast(origins, dirs)
