"""Coloured surface samples (the Gaussian-splatting seed): density, burial, colours equal to
the camera's, determinism and region cropping."""

from __future__ import annotations

import numpy as np
import pytest

from geometry.transforms import make_transform
from sim.camera import Camera, CameraConfig
from sim.robot import R_CAMERA_OPTICAL
from sim.shading import Lighting, ShadingError, surface_samples
from sim.world import World

FLOATING = ("cube", "bin", (0.0, 0.0, 5.0, 2.0, 3.0, 4.0, 0.3))  # touches nothing
GROUND = ("ground", "ground", (0.0, 0.0, -0.5, 40.0, 40.0, 1.0, 0.0))


def test_sample_count_matches_area_over_spacing_squared(make_scene) -> None:
    samples = surface_samples(make_scene([FLOATING]), spacing_m=0.1)
    area = 2 * (2 * 3 + 2 * 4 + 3 * 4)
    # Each of the 12 triangles rounds area / spacing^2 up or down: at most 12 off.
    assert abs(len(samples.points) - area / 0.01) <= 12
    assert samples.points.dtype == samples.normals.dtype == samples.colors.dtype == np.float32
    # float32 storage of unit vectors: |n| = 1 to ~1e-7.
    np.testing.assert_allclose(np.linalg.norm(samples.normals, axis=1), 1.0, atol=1e-6)
    assert samples.colors.min() >= 0.0 and samples.colors.max() <= 1.0


def test_surfaces_buried_in_other_objects_are_not_sampled(make_scene) -> None:
    resting = ("box", "bin", (0.0, 0.0, 1.0, 2.0, 2.0, 2.0, 0.0))  # bottom face on the ground top
    samples = surface_samples(make_scene([GROUND, resting]), spacing_m=0.1)
    on_box = samples.object_index == 1
    assert not np.any(samples.normals[on_box, 2] < -0.5)  # no bottom face
    ground_top = (samples.object_index == 0) & (samples.normals[:, 2] > 0.5)
    under = (
        ground_top & (np.abs(samples.points[:, 0]) < 0.99) & (np.abs(samples.points[:, 1]) < 0.99)
    )
    assert not np.any(under)  # no ground under the box


def test_sample_colours_are_what_the_camera_sees_there(make_scene) -> None:
    wall = ("wall", "building", (10.5, 0.0, 3.0, 1.0, 12.0, 6.0, 0.0))
    beam = ("beam", "building", (7.0, 0.0, 4.5, 2.0, 12.0, 0.5, 0.0))  # shades part of the wall
    scene = make_scene([GROUND, wall, beam])
    lighting = Lighting(sun_azimuth_deg=180.0, sun_elevation_deg=30.0)
    samples = surface_samples(scene, spacing_m=0.25, lighting=lighting)
    cfg = CameraConfig(width_px=160, height_px=120, lighting=lighting)
    T = make_transform(R_CAMERA_OPTICAL, np.array([0.0, 0.0, 2.0]))
    frame = Camera(cfg).render(World(scene), T)
    on_wall = (samples.object_index == 1) & (samples.normals[:, 0] < -0.5)
    p = samples.points[on_wall].astype(np.float64)
    cam = (p - T[:3, 3]) @ T[:3, :3]  # world -> camera_optical
    uv = (cfg.K @ (cam / cam[:, 2:3]).T).T[:, :2].astype(int)
    inside = (uv[:, 0] >= 0) & (uv[:, 0] < 160) & (uv[:, 1] >= 0) & (uv[:, 1] < 120)
    seen = frame.object_index[uv[inside, 1], uv[inside, 0]] == 1
    pixel = frame.rgb[uv[inside, 1], uv[inside, 0]][seen].astype(float)
    sample = samples.colors[on_wall][inside][seen] * 255.0
    lit_or_shadow = np.unique(np.round(sample[:, 0]))
    assert len(lit_or_shadow) == 2  # the beam's shadow edge crosses the wall
    # Same formula at nearly the same point: equal up to rounding, except a pixel whose
    # centre and the sample fall on opposite sides of the shadow edge (< 5% of them).
    assert np.mean(np.all(np.abs(pixel - sample) <= 0.5 + 1e-4, axis=1)) > 0.95


def test_same_seed_same_samples(make_scene) -> None:
    scene = make_scene([GROUND, FLOATING])
    a, b = surface_samples(scene, 0.3, seed=5), surface_samples(scene, 0.3, seed=5)
    assert a.points.tobytes() == b.points.tobytes() and a.colors.tobytes() == b.colors.tobytes()


def test_region_crop_and_moving_vehicles_excluded(occluded_scene) -> None:
    region = (20.0, 70.0, -12.0, 0.0)  # the ego start and the target, right half of the street
    samples = surface_samples(occluded_scene, spacing_m=0.5, region_xy_m=region)
    x, y = samples.points[:, 0], samples.points[:, 1]
    assert np.all((x >= 20) & (x <= 70) & (y >= -12) & (y <= 0))
    movers = {i for i, o in enumerate(occluded_scene.objects) if o.speed_mps != 0.0}
    assert movers and not movers & set(samples.object_index.tolist())
    assert occluded_scene.target_index in set(samples.object_index.tolist())
    assert samples.points[:, 2].min() >= -0.02  # nothing under the ground


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"spacing_m": 0.0}, "spacing_m"), ({"region_xy_m": (1.0, 0.0, 0.0, 1.0)}, "region_xy_m")],
)
def test_bad_sampling_settings_raise_shading_error(make_scene, kwargs, field) -> None:
    with pytest.raises(ShadingError, match=field):
        surface_samples(make_scene([FLOATING]), **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"sun_elevation_deg": 0.0}, "sun_elevation_deg"),
        ({"ambient": 1.5}, "ambient"),
        ({"sky_zenith_rgb": (0.1, 2.0, 0.1)}, "sky_zenith_rgb"),
    ],
)
def test_bad_lighting_raises_shading_error(kwargs, field) -> None:
    with pytest.raises(ShadingError, match=field):
        Lighting(**kwargs)
