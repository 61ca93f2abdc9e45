"""Inputs the reliability cases copy into their workspaces, built once per process.

- a recorded bag (the synthetic graph, 1 s of sim time, 15000-point clouds, 4 chunks);
- a bag written by the plain rosbags writer (no CRCs, no robomr copy of custom_data), with a
  malformed ``robomr.graph``;
- a nuScenes-layout scan (x, y, z, intensity 0..255, ring) from the simulator's lidar whose
  byte size also divides by 16, the KITTI record size (the misread of issue 12);
- valid PCD/PLY/npy scans, a scenario file and a scene file to mutate.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from bench.reliability.harness import REPO

# config/synthetic.yaml with smaller clouds (synthetic_cloud is the graph's clock source)
SYNTH_PARAMS = """/**:
  ros__parameters:
    use_sim_time: true
/**/synthetic_cloud:
  ros__parameters:
    use_sim_time: false
    num_points: 2000
    rate_hz: 10.0
"""
BAG_PARAMS = SYNTH_PARAMS.replace("2000", "15000")  # 240 kB clouds: a 1 s bag has 3 chunks


@dataclass(frozen=True)
class Resources:
    root: Path
    bag: Path  # robomr bag of the synthetic graph
    foreign_bag: Path  # rosbags-writer bag, malformed robomr.graph
    nuscenes_scan: Path  # float32 [N, 5], N % 4 == 0
    kitti_scan: Path  # float32 [N, 4] of the same points
    params: Path  # the small synthetic parameter file
    model: Path

    def copy(self, src: Path, ws: Path, name: str) -> Path:
        dst = ws / name
        if src.is_dir():
            shutil.copytree(src, dst)
        else:
            shutil.copyfile(src, dst)
        return dst


def _record_bag(root: Path, params: Path) -> Path:
    from robomr_nodes.launch_yaml import load_launch
    from robomr_nodes.runner import RunOptions, run_plan

    plan = load_launch(REPO / "launch" / "synthetic.launch.yaml", {"params_file": str(params)})
    bag = root / "synthetic" / "bag"
    run_plan(plan, RunOptions(duration_s=1.0, record=bag))
    return bag


def _foreign_bag(root: Path) -> Path:
    from rosbags.rosbag2 import StoragePlugin, Writer

    from robomr_nodes.messages import new_message, serialize, typestore

    path = root / "foreign"
    writer = Writer(path, version=9, storage_plugin=StoragePlugin.MCAP)
    writer.set_custom_data("robomr.graph", "- exec: [unclosed")
    writer.open()
    conn = writer.add_connection("/robomr/points", "std_msgs/msg/String", typestore=typestore())
    raw = serialize(new_message("std_msgs/msg/String", data="x"), "std_msgs/msg/String")
    writer.write(conn, 1_000_000_000, raw)
    writer.close()
    return path


def _scans(root: Path) -> tuple[Path, Path]:
    from sim.generator import load_or_generate
    from sim.lidar import Lidar, LidarConfig
    from sim.robot import BicycleRobot, RobotState
    from sim.world import World

    scene = load_or_generate("urban-clutter", None)
    T = BicycleRobot(state=RobotState(*scene.ego_start)).T_world_lidar()
    pts = Lidar(LidarConfig(beams=16)).scan(World(scene), T, np.random.default_rng(0)).points
    pts = pts[: len(pts) - len(pts) % 4].astype(np.float32)  # size divides by 16 and 20
    pts[:, 3] = np.round(pts[:, 3] * 255.0)  # nuScenes intensity scale
    nus, kitti = root / "sweep.bin", root / "kitti.bin"
    pts[:, :5].astype("<f4").tofile(nus)
    pts[:, :4].astype("<f4").tofile(kitti)
    return nus, kitti


@cache
def resources() -> Resources:
    """The shared inputs (built on first use, kept for the life of the process)."""
    root = Path(tempfile.mkdtemp(prefix="robomr-reliability-"))
    atexit.register(shutil.rmtree, root, True)
    params = root / "synthetic_small.yaml"
    params.write_text(SYNTH_PARAMS)
    bag_params = root / "synthetic_bag.yaml"
    bag_params.write_text(BAG_PARAMS)
    nus, kitti = _scans(root)
    return Resources(
        root,
        _record_bag(root, bag_params),
        _foreign_bag(root),
        nus,
        kitti,
        params,
        REPO / "models" / "detector.pt",
    )
