"""robomr's built-in simulator: seeded multi-lane urban street scenes with an occluded target
(the CROA scenario, arXiv 2412.18453), a kinematic bicycle robot, a raycast lidar and RGB-D
camera (open3d), per-frame ground truth with occlusion ratios, labelled datasets, and Gazebo SDF
export. Pure library: numpy/open3d in, dataclasses out. Reference: docs/sim.md.

``sim.show`` (bird's-eye pictures, matplotlib) and ``sim.sdf`` are imported on demand.
"""

from sim.camera import Camera, CameraConfig, CameraFrame
from sim.dataset import DatasetFrame, iter_dataset, load_frame, load_meta, write_dataset
from sim.generator import generate_scene, load_or_generate
from sim.lidar import Lidar, LidarConfig, LidarScan
from sim.pursuit import DriveCommand, PurePursuit, PurePursuitConfig
from sim.robot import BicycleRobot, Odometry, RobotConfig, RobotState
from sim.scenarios import ScenarioConfig, list_scenarios, load_scenario
from sim.scene import Lane, Scene, SceneObject
from sim.shading import Lighting, SurfaceSamples, surface_samples
from sim.traffic import Traffic, TrafficError
from sim.trajectory_tracker import TrackerConfig, TrajectoryTracker
from sim.truth import FrameTruth, ground_truth, occlusion_ratio, occlusion_ratios
from sim.world import World

__all__ = [
    "BicycleRobot",
    "Camera",
    "CameraConfig",
    "CameraFrame",
    "DatasetFrame",
    "DriveCommand",
    "FrameTruth",
    "Lane",
    "Lidar",
    "LidarConfig",
    "LidarScan",
    "Lighting",
    "Odometry",
    "PurePursuit",
    "PurePursuitConfig",
    "RobotConfig",
    "RobotState",
    "ScenarioConfig",
    "Scene",
    "SceneObject",
    "SurfaceSamples",
    "TrackerConfig",
    "Traffic",
    "TrafficError",
    "TrajectoryTracker",
    "World",
    "generate_scene",
    "ground_truth",
    "iter_dataset",
    "list_scenarios",
    "load_frame",
    "load_meta",
    "load_or_generate",
    "load_scenario",
    "occlusion_ratio",
    "occlusion_ratios",
    "surface_samples",
    "write_dataset",
]
