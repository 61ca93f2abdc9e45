"""Render quality of the map learned from the robot's sensors, with a fixed upload schedule.

Records the GSCLO benchmark's drive (bench.gsclo_drive), uploads every ``--every``-th frame,
and renders each 30-frame block from the map as it stood at the block's start (lidar up to
then, appearance from the earlier blocks' uploads: every rendered frame is held out). Prints
mean SSIM and PSNR against the camera over blocks 1.. (block 0 has learned nothing yet).
``--variant`` switches one part of the map learning off (the ablation in docs/gs_render.md).

Usage: python scripts/map_quality.py [--drive FILE] [--size 128x96] [--frames 120]
           [--lidar-beams 32] [--every 2] [--variant full|no-ground|no-colour-solve|no-inpaint]
"""

from __future__ import annotations

import argparse
import pickle
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from bench.gsclo_closed_loop import MapReplay
from bench.gsclo_drive import record_drive
from gs_render.lidar_map import LidarMapConfig
from gs_render.sensor_map import SensorMapConfig

VARIANTS = ("full", "no-ground", "no-colour-solve", "no-inpaint")


def config_for(variant: str) -> SensorMapConfig:
    cfg = SensorMapConfig()
    if variant == "no-ground":
        return replace(cfg, lidar=LidarMapConfig(ground=False))
    if variant == "no-colour-solve":
        return replace(cfg, colour_iterations=0)
    if variant == "no-inpaint":
        return replace(cfg, inpaint_radius_m=0.0)
    return cfg


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drive", type=Path, help="pickle of the drive (made if missing)")
    parser.add_argument("--size", default="128x96", help="camera WxH")
    parser.add_argument("--frames", type=int, default=120, help="frames (10 Hz)")
    parser.add_argument("--lidar-beams", type=int, default=32, choices=(16, 32, 64, 128))
    parser.add_argument("--every", type=int, default=2, help="upload every n-th frame")
    parser.add_argument("--variant", default="full", choices=VARIANTS)
    args = parser.parse_args()
    torch.set_num_threads(1)
    width, height = (int(v) for v in args.size.split("x"))
    if args.drive is not None and args.drive.exists():
        drive = pickle.loads(args.drive.read_bytes())
    else:
        drive = record_drive("urban-clutter", args.frames, width_px=width, height_px=height,
                             lidar_beams=args.lidar_beams, progress=False)  # fmt: skip
        if args.drive is not None:
            args.drive.write_bytes(pickle.dumps(drive))
    start = time.perf_counter()
    replay = MapReplay(drive, config_for(args.variant), 30)
    app, history, rows = None, (), []
    for b, frames in enumerate(replay.blocks()):
        app, renders = replay.state(b, history, app)
        history += tuple(int(t) for t in frames if t % args.every == 0)
        rows.append((float(np.mean(renders.ssim)), float(np.mean(renders.psnr_db))))
        print(f"block {b}: {len(replay.geometry[b].means)} Gaussians, SSIM {rows[-1][0]:.3f}, "
              f"PSNR {rows[-1][1]:.2f} dB")  # fmt: skip
    later = np.array(rows[1:])
    print(f"{args.variant}: mean over blocks 1..{len(rows) - 1}: SSIM {later[:, 0].mean():.4f}, "
          f"PSNR {later[:, 1].mean():.3f} dB ({time.perf_counter() - start:.0f} s)")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
