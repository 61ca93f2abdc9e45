"""Side-by-side baseline: robomr's recorder against the plain rosbags writer (what robomr used
before: metadata.yaml and the summary written only on close, chunk CRCs 0).

Two measurements, the same for both writers:
- hard kill: a child process records 50 kB clouds at 20 Hz (wall clock) and gets SIGKILL at a
  random moment (fixed seeds); is the bag readable afterwards (robomr's reader, which
  recovers complete chunks; a writer's bag is readable when that reader returns messages)?
- flipped bytes: one random bit of a recorded bag (20 clouds) is flipped; is the damage
  reported (BagError) or are the messages read back different without an error (silent)?
"""

from __future__ import annotations

import random
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

from bench.reliability.harness import child_env

RECORD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import numpy as np
    from robomr_nodes.convert.pointcloud import array_to_cloud, xyz_to_structured
    from robomr_nodes.messages import header, serialize
    T = "sensor_msgs/msg/PointCloud2"
    path, which, seconds = Path(sys.argv[1]), sys.argv[2], float(sys.argv[3])
    pts = np.random.default_rng(0).normal(0, 10, (3000, 4)).astype(np.float32)
    raw = serialize(array_to_cloud(xyz_to_structured(pts), header(0, "lidar")), T)
    if which == "robomr":
        from robomr_nodes.bag import BagRecorder
        bag = BagRecorder(path)
        write = lambda i: bag.write_raw("/points", T, i * 50_000_000, raw)
    else:
        from rosbags.rosbag2 import StoragePlugin, Writer
        from robomr_nodes.messages import typestore
        bag = Writer(path, version=9, storage_plugin=StoragePlugin.MCAP)
        bag.open()
        conn = bag.add_connection("/points", T, typestore=typestore())
        write = lambda i: bag.write(conn, i * 50_000_000, raw)
    print("recording", flush=True)
    end, i = time.monotonic() + seconds, 0
    while time.monotonic() < end:
        write(i)
        i += 1
        time.sleep(0.05)
    bag.close()
    """
)
WRITERS = ("robomr", "rosbags")
CLOUD = "sensor_msgs/msg/PointCloud2"


@dataclass
class BaselineResult:
    """Fractions per writer: bags readable after SIGKILL (empty without kills), flips
    reported, flips silent."""

    kills: int
    flips: int
    readable_after_kill: dict[str, float]
    flips_reported: dict[str, float]
    flips_silent: dict[str, float]


def _record(path: Path, which: str, count: int) -> None:
    """``count`` clouds recorded by one writer in this process (the flips need no kill)."""
    import numpy as np
    from rosbags.rosbag2 import StoragePlugin, Writer

    from robomr_nodes.bag import BagRecorder
    from robomr_nodes.convert.pointcloud import array_to_cloud, xyz_to_structured
    from robomr_nodes.messages import header, serialize, typestore

    pts = np.random.default_rng(0).normal(0, 10, (3000, 4)).astype(np.float32)
    raw = serialize(array_to_cloud(xyz_to_structured(pts), header(0, "lidar")), CLOUD)
    if which == "robomr":
        with BagRecorder(path) as bag:
            for i in range(count):
                bag.write_raw("/points", CLOUD, i * 50_000_000, raw)
        return
    writer = Writer(path, version=9, storage_plugin=StoragePlugin.MCAP)
    writer.open()
    conn = writer.add_connection("/points", CLOUD, typestore=typestore())
    for i in range(count):
        writer.write(conn, i * 50_000_000, raw)
    writer.close()


def _killed_bag_readable(which: str, work: Path, seed: int) -> bool:
    from robomr_nodes.bag import BagError, read_bag

    bag = work / f"{which}-{seed}"
    proc = subprocess.Popen(
        [sys.executable, "-c", RECORD, str(bag), which, "6"],
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    proc.stdout.readline()  # "recording": the bag exists  # type: ignore[union-attr]
    time.sleep(random.Random(seed).uniform(1.2, 4.0))
    proc.kill()
    proc.wait()
    try:
        return sum(1 for _ in read_bag(bag)) > 0
    except BagError:
        return False


def _flip_outcomes(which: str, work: Path, flips: int, seed: int) -> tuple[int, int]:
    """(reported, silent) over ``flips`` single-bit flips of a completed bag."""
    from robomr_nodes.bag import BagError, digest, read_bag, verify_bag

    bag = work / f"{which}-complete"
    _record(bag, which, 20)
    clean = digest(read_bag(bag))
    mcap = next(bag.glob("*.mcap"))
    original, rng = mcap.read_bytes(), random.Random(seed)
    reported = silent = 0
    for k in range(flips):
        copy = work / f"{which}-flip-{k}"
        shutil.copytree(bag, copy)
        data = bytearray(original)
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        (copy / mcap.name).write_bytes(bytes(data))
        try:
            verify_bag(copy)
            silent += digest(read_bag(copy)) != clean
        except BagError:
            reported += 1
        shutil.rmtree(copy)
    return reported, silent


def run_baseline(kills: int, flips: int, seed: int) -> BaselineResult:
    work = Path(tempfile.mkdtemp(prefix="robomr-baseline-"))
    try:
        readable = {
            w: sum(_killed_bag_readable(w, work, seed + k) for k in range(kills)) / kills
            for w in WRITERS
            if kills
        }
        outcomes = {w: _flip_outcomes(w, work, flips, seed) for w in WRITERS}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    n = max(flips, 1)
    return BaselineResult(
        kills,
        flips,
        readable,
        {w: r / n for w, (r, _) in outcomes.items()},
        {w: s / n for w, (_, s) in outcomes.items()},
    )
