"""Per-frame render quality along a simulated drive: the simulator camera against the
Gaussian-splatting map rendered at the same pose (what GSCLO's discrepancy L_t measures).

The robot drives its lane at a steady speed with pure pursuit; moving vehicles follow
``sim.traffic`` (they are in the camera image but not in the static map, as on a real street).
"""

from __future__ import annotations

import numpy as np
from tqdm import tqdm

from gs_render import GaussianRenderer, RendererConfig, SkyGradient, from_surface_samples
from gs_render.metrics import psnr, ssim
from sim import (
    BicycleRobot,
    Camera,
    CameraConfig,
    PurePursuit,
    PurePursuitConfig,
    RobotState,
    Traffic,
    World,
    load_or_generate,
    surface_samples,
)
from sim.placement import footprint


def sim_drive(
    scenario: str = "urban-clutter",
    frames: int = 300,
    frame_rate_hz: float = 10.0,
    speed_mps: float = 3.0,
    spacing_m: float = 0.3,
    base_station_xy_m: tuple[float, float] | None = None,
    width_px: int = 320,
    height_px: int = 240,
    progress: bool = True,
):  # -> bench.bench_gsclo.DriveTable (imported lazily: the two modules import each other)
    """Drives ``frames`` camera frames through ``scenario`` and measures each render.

    The base station defaults to 20 m to the side of the drive's midpoint (the synthetic
    drive's geometry).
    """
    from bench.bench_gsclo import DriveTable

    scene = load_or_generate(scenario)
    samples = surface_samples(scene, spacing_m)
    model = from_surface_samples(samples.points, samples.normals, samples.colors, spacing_m)
    renderer = GaussianRenderer(model, RendererConfig(backend="auto", sky=SkyGradient()))
    camera = Camera(CameraConfig(width_px=width_px, height_px=height_px))
    x0, y0, yaw0 = scene.ego_start
    length = speed_mps * frames / frame_rate_hz
    path = np.column_stack([x0 + np.linspace(0.0, length + 10.0, 200), np.full(200, y0)])
    robot = BicycleRobot(state=RobotState(x0, y0, yaw0, speed_mps))
    follower = PurePursuit(robot.config, PurePursuitConfig(target_speed_mps=speed_mps))
    follower.set_path(path)
    traffic = Traffic(scene)
    bs = base_station_xy_m or (x0 + 0.5 * length, y0 + 20.0)
    steps = 4  # control steps per camera frame
    dt = 1.0 / (frame_rate_hz * steps)
    rows = []
    for _ in tqdm(range(frames), desc="gsclo drive", disable=not progress):
        for _ in range(steps):
            cmd = follower.command(robot.state)
            robot.step(cmd.accel_mps2, cmd.steer_rad, dt)
            traffic.step(dt, [footprint(robot.footprint_box())])
        pose = robot.T_world_camera_optical()
        frame = camera.render(World(traffic.scene()), pose)
        render, _ = renderer.render(pose, frame.K, width_px, height_px)
        s = float(ssim(frame.rgb, render))
        dist = float(np.hypot(robot.state.x_m - bs[0], robot.state.y_m - bs[1]))
        rows.append((1.0 - s, float(psnr(frame.rgb, render)), s, dist))
    disc, pv, sv, dist = (np.array(c) for c in zip(*rows, strict=True))
    source = (
        f"sim camera vs gs_render along a {length:.0f} m drive in {scenario} "
        f"({frames} frames at {frame_rate_hz:g} Hz, map spacing {spacing_m} m, "
        f"{width_px}x{height_px})"
    )
    return DriveTable(disc, pv, sv, dist, source)
