"""Raycast RGB-D camera against analytic cases: depth of a wall, colour of a lit surface,
projection of a known point, sky, fog, determinism and bad inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from geometry.transforms import make_transform
from sim.camera import Camera, CameraConfig, CameraError
from sim.robot import R_CAMERA_OPTICAL
from sim.shading import Lighting
from sim.world import World

NO_SHADOW = Lighting(sun_azimuth_deg=180.0, sun_elevation_deg=30.0, ambient=0.4, shadows=False)
WALL = ("wall", "building", (10.5, 0.0, 5.0, 1.0, 80.0, 80.0, 0.0))  # face x = 10, normal -x


def forward_pose(x=0.0, y=0.0, z=2.0) -> np.ndarray:
    """camera_optical at (x, y, z) looking along world +x."""
    return make_transform(R_CAMERA_OPTICAL, np.array([x, y, z]))


def test_intrinsics_follow_resolution_and_fov() -> None:
    K = CameraConfig(width_px=320, height_px=240, hfov_deg=90.0).K
    # 160 / tan(45 deg) in float64: exact to ~1e-13.
    np.testing.assert_allclose(K, [[160.0, 0, 160.0], [0, 160.0, 120.0], [0, 0, 1]], atol=1e-9)


def test_depth_of_a_fronto_parallel_wall_is_its_distance(make_scene) -> None:
    frame = Camera(CameraConfig(lighting=NO_SHADOW)).render(
        World(make_scene([WALL])), forward_pose()
    )
    assert frame.depth.shape == (240, 320) and frame.depth.dtype == np.float32
    assert frame.rgb.shape == (240, 320, 3) and frame.rgb.dtype == np.uint8
    # z-depth of a plane z = 10 in camera_optical is 10 at every pixel (float32 rays).
    np.testing.assert_allclose(frame.depth, 10.0, atol=1e-4)
    assert np.all(frame.object_index == 0)


def test_colour_of_a_lit_wall_is_albedo_times_lambert_plus_ambient(make_scene) -> None:
    frame = Camera(CameraConfig(lighting=NO_SHADOW)).render(
        World(make_scene([WALL])), forward_pose()
    )
    n_dot_s = -NO_SHADOW.sun_direction[0]  # wall normal (-1, 0, 0)
    expected = 0.5 * (0.4 + 0.6 * n_dot_s) * 255.0
    # Rounding to uint8 is the only error: at most half a level.
    assert np.all(np.abs(frame.rgb.astype(float) - expected) <= 0.5 + 1e-9)


def test_surface_in_shadow_gets_ambient_only(make_scene) -> None:
    sun = Lighting(sun_azimuth_deg=180.0, sun_elevation_deg=30.0, ambient=0.4, shadows=True)
    # The sun ray from the wall's centre (10, 0, 2) crosses x = 7 at z = 3.7: inside this
    # beam, which the camera's centre ray (z = 2) passes under.
    blocker = ("beam", "building", (7.0, 0.0, 4.5, 2.0, 80.0, 2.0, 0.0))
    frame = Camera(CameraConfig(lighting=sun)).render(
        World(make_scene([WALL, blocker])), forward_pose()
    )
    centre = frame.rgb[120, 160].astype(float)
    assert np.all(np.abs(centre - 0.5 * 0.4 * 255.0) <= 0.5 + 1e-9)


def test_a_known_point_projects_to_its_pixel(make_scene) -> None:
    point = np.array([8.0, -3.0, 3.0])  # before the wall; right of and above the optical axis
    cube = ("cube", "bin", (*point, 0.2, 0.2, 0.2, 0.0))
    cfg = CameraConfig()
    frame = Camera(cfg).render(World(make_scene([WALL, cube])), forward_pose())
    p_cam = np.array([3.0, -1.0, 7.9])  # cube's front face centre in camera_optical
    u, v, _ = cfg.K @ (p_cam / p_cam[2])
    assert frame.object_index[int(v), int(u)] == 1
    assert frame.depth[int(v), int(u)] == pytest.approx(7.9, abs=1e-4)  # float32 rays


def test_sky_is_seen_where_nothing_is_hit(make_scene) -> None:
    up = np.eye(4)  # camera_optical axes = world axes: the optical axis (z) points up
    below = ("below", "bin", (0.0, 0.0, -50.0, 1.0, 1.0, 1.0, 0.0))
    cam = Camera(CameraConfig(width_px=32, height_px=24, lighting=NO_SHADOW))
    frame = cam.render(World(make_scene([below])), up)
    assert np.all(np.isinf(frame.depth)) and np.all(frame.object_index == -1)
    # The centre pixel looks (almost) straight up: the zenith colour, within a level.
    zenith = np.asarray(NO_SHADOW.sky_zenith_rgb) * 255.0
    assert np.all(np.abs(frame.rgb[12, 16].astype(float) - zenith) <= 1.5)


def test_fog_pulls_far_surfaces_toward_the_horizon_colour(make_scene) -> None:
    world = World(make_scene([WALL]))
    clear = Camera(CameraConfig(lighting=NO_SHADOW)).render(world, forward_pose()).rgb[120, 160]
    foggy = Camera(CameraConfig(lighting=NO_SHADOW, fog_distance_m=10.0)).render(
        world, forward_pose()
    )
    f = 1.0 - math.exp(-1.0)  # wall at 10 m, fog distance 10 m
    expected = (1 - f) * clear.astype(float) + f * np.asarray(NO_SHADOW.sky_horizon_rgb) * 255.0
    assert np.all(np.abs(foggy.rgb[120, 160].astype(float) - expected) <= 1.0)  # two roundings


def test_rendering_is_deterministic(occluded_world, occluded_scene) -> None:
    x, y, _ = occluded_scene.ego_start
    cam = Camera(CameraConfig(width_px=64, height_px=48))
    a, b = (
        cam.render(occluded_world, forward_pose(x, y, 1.5)),
        cam.render(occluded_world, forward_pose(x, y, 1.5)),
    )
    assert a.rgb.tobytes() == b.rgb.tobytes() and a.depth.tobytes() == b.depth.tobytes()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"width_px": 0}, "width_px"),
        ({"height_px": 2.5}, "height_px"),
        ({"hfov_deg": 179.0}, "hfov_deg"),
        ({"fog_distance_m": -1.0}, "fog_distance_m"),
    ],
)
def test_bad_config_raises_camera_error_naming_the_field(kwargs, field) -> None:
    with pytest.raises(CameraError, match=field):
        CameraConfig(**kwargs)


def test_nan_pose_raises_camera_error(make_scene) -> None:
    pose = forward_pose()
    pose[1, 1] = np.nan
    with pytest.raises(CameraError, match="T_world_camera_optical"):
        Camera(CameraConfig(width_px=16, height_px=16)).render(World(make_scene([WALL])), pose)
