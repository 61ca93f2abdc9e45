"""A recorded simulator drive for ``robomr bench gsclo``: what the robot's sensors give.

The robot drives its lane at a steady speed with pure pursuit; moving vehicles follow
``sim.traffic`` (in the camera image and the lidar, never handed to the map as such). Per
camera frame the recording keeps the camera image, the camera pose, the lidar scans since the
previous frame (world frame, with their sensor origin) and the distance to the base station.
Nothing else from the simulator (no surfaces, no object ids) is used by the map or the
schedulers; ground truth only scores.

This module imports the simulator; ``bench.gsclo_closed_loop`` and ``bench.bench_gsclo``
import it, never the other way round.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from sim import (
    BicycleRobot,
    Camera,
    CameraConfig,
    Lidar,
    LidarConfig,
    PurePursuit,
    PurePursuitConfig,
    RobotState,
    Traffic,
    World,
    load_or_generate,
)
from sim.placement import footprint


@dataclass(frozen=True)
class Drive:
    """A recorded drive of T camera frames.

    Attributes:
        images: camera images uint8 [T, H, W, 3].
        K: camera intrinsics [3, 3] (px).
        poses: T_world_camera_optical [T, 4, 4].
        scans: per frame, the lidar scans taken since the previous frame, each
            (points [N, 3] world frame, sensor origin [3]).
        distance_m: robot to base station (m) [T].
        frame_period_s: time between frames (s).
        source: a one-line description for the report.
    """

    images: np.ndarray
    K: np.ndarray
    poses: np.ndarray
    scans: list[list[tuple[np.ndarray, np.ndarray]]]
    distance_m: np.ndarray
    frame_period_s: float
    source: str

    @property
    def num_frames(self) -> int:
        return int(self.images.shape[0])


def record_drive(
    scenario: str = "urban-clutter",
    frames: int = 300,
    frame_rate_hz: float = 10.0,
    speed_mps: float = 3.0,
    width_px: int = 160,
    height_px: int = 120,
    lidar_beams: int = 64,
    lidar_fov_up_deg: float = 45.0,
    scans_per_frame: int = 1,
    base_station_offset_m: float = 20.0,
    progress: bool = True,
) -> Drive:
    """Drives ``frames`` camera frames through ``scenario`` and records the sensors.

    The base station stands ``base_station_offset_m`` to the side of the drive's midpoint.
    """
    scene = load_or_generate(scenario)
    camera = Camera(CameraConfig(width_px=width_px, height_px=height_px))
    lidar = Lidar(
        LidarConfig(
            beams=lidar_beams, vertical_fov_up_deg=lidar_fov_up_deg, azimuth_resolution_deg=0.4
        )
    )
    x0, y0, yaw0 = scene.ego_start
    length = speed_mps * frames / frame_rate_hz
    path = np.column_stack([x0 + np.linspace(0.0, length + 10.0, 200), np.full(200, y0)])
    robot = BicycleRobot(state=RobotState(x0, y0, yaw0, speed_mps))
    follower = PurePursuit(robot.config, PurePursuitConfig(target_speed_mps=speed_mps))
    follower.set_path(path)
    traffic = Traffic(scene)
    bs = (x0 + 0.5 * length, y0 + base_station_offset_m)
    steps = 4 * scans_per_frame  # control steps per camera frame
    dt = 1.0 / (frame_rate_hz * steps)
    rng = np.random.default_rng(0)
    images, poses, scans, dist = [], [], [], []
    for _ in tqdm(range(frames), desc="record drive", disable=not progress):
        frame_scans = []
        for step in range(steps):
            cmd = follower.command(robot.state)
            robot.step(cmd.accel_mps2, cmd.steer_rad, dt)
            traffic.step(dt, [footprint(robot.footprint_box())])
            if step % 4 == 3:
                T = robot.T_world_lidar()
                scan = lidar.scan(World(traffic.scene()), T, rng)
                world = scan.points[:, :3].astype(np.float64) @ T[:3, :3].T + T[:3, 3]
                frame_scans.append((world, T[:3, 3].copy()))
        pose = robot.T_world_camera_optical()
        images.append(camera.render(World(traffic.scene()), pose).rgb)
        poses.append(pose)
        scans.append(frame_scans)
        dist.append(float(np.hypot(robot.state.x_m - bs[0], robot.state.y_m - bs[1])))
    source = (
        f"sim drive of {length:.0f} m in {scenario}: {frames} camera frames at "
        f"{frame_rate_hz:g} Hz ({width_px}x{height_px}), {lidar_beams}-beam lidar"
    )
    return Drive(
        np.stack(images), camera.config.K, np.stack(poses), scans, np.array(dist),
        1.0 / frame_rate_hz, source,
    )  # fmt: skip
