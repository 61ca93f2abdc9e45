"""A fixed-seed fuzzing budget for every input parser (``robomr bench reliability --fuzz N``).

Each target mutates valid seed inputs (byte flips, cuts, insertions, and for YAML: scalars
swapped for hostile values, lines dropped or repeated) or draws random messages, and calls the
parser. An input is *accepted* (parsed), a *clear error* (the parser's own error class, one
line), a *crash* (any other exception: a traceback for the user), or, for byte flips in a bag,
*silent wrong* (read without error but with different messages than the original).
"""

from __future__ import annotations

import random
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from bench.reliability.fuzz_bags import fuzz_bags
from bench.reliability.fuzz_core import (
    FuzzResult,
    mutate_bytes,
    mutate_yaml,
    mutated_files,
    run_target,
)
from bench.reliability.harness import REPO


def fuzz_cloudmutated_files(n: int, rng: random.Random, work: Path) -> FuzzResult:
    from perception.cloud_io import CloudFileError, read_scan, write_point_cloud

    pts = np.random.default_rng(0).normal(0, 10, (60, 4)).astype(np.float32)
    pts[:, 3] = np.abs(pts[:, 3])
    seeds = []
    for name, binary in (
        ("a.pcd", False),
        ("b.pcd", True),
        ("a.ply", False),
        ("b.ply", True),
        ("c.bin", True),
        ("d.npy", True),
        ("e.npz", True),
    ):
        seeds.append((name, write_point_cloud(work / name, pts, binary).read_bytes()))
    nus = np.column_stack([pts, np.arange(60) % 32]).astype("<f4").tobytes()
    seeds.append(("f.pcd.bin", nus))
    res = FuzzResult("point-cloud files")
    run_target(res, mutated_files(seeds, n, rng, work, mutate_bytes), read_scan, (CloudFileError,))
    return res


def _near_valid_cloud(rng: random.Random) -> object:
    """A valid cloud with one attribute perturbed (or none)."""
    from robomr_nodes.convert.pointcloud import array_to_cloud, xyz_to_structured
    from robomr_nodes.messages import header

    n, cols = rng.randrange(0, 30), rng.randrange(3, 6)
    pts = np.random.default_rng(rng.randrange(1000)).normal(0, 5, (n, cols))
    msg = array_to_cloud(xyz_to_structured(pts), header(0, "lidar"))
    what = rng.randrange(7)
    if what == 0:
        msg.data = msg.data[: rng.randrange(len(msg.data) + 1)]
    elif what == 1 and msg.fields:
        rng.choice(msg.fields).offset = rng.randrange(0, 64)
    elif what == 2 and msg.fields:
        rng.choice(msg.fields).datatype = rng.randrange(0, 12)
    elif what == 3 and msg.fields:
        rng.choice(msg.fields).count = rng.randrange(0, 6)
    elif what == 4:
        msg.point_step = rng.randrange(0, 40)
    elif what == 5:
        msg.row_step = rng.randrange(0, 800)
    return msg


def _random_cloud(rng: random.Random) -> object:
    from robomr_nodes.messages import header, new_message

    if rng.random() < 0.5:
        return _near_valid_cloud(rng)

    names = ["x", "y", "z", "intensity", "ring", "x", "", "t"]
    fields = [
        new_message(
            "sensor_msgs/msg/PointField",
            name=rng.choice(names),
            offset=rng.randrange(0, 40),
            datatype=rng.randrange(0, 10),
            count=rng.randrange(0, 4),
        )
        for _ in range(rng.randrange(0, 6))
    ]
    h, w = rng.randrange(0, 5), rng.randrange(0, 40)
    step = rng.randrange(0, 40)
    row = rng.choice([step * w, rng.randrange(0, 400)])
    data = np.frombuffer(rng.randbytes(rng.randrange(0, 2000)), dtype=np.uint8)
    return new_message(
        "sensor_msgs/msg/PointCloud2",
        header=header(0, "lidar"),
        height=h,
        width=w,
        fields=fields,
        is_bigendian=rng.random() < 0.2,
        point_step=step,
        row_step=row,
        data=data,
        is_dense=True,
    )


def _random_image(rng: random.Random) -> object:
    from robomr_nodes.convert.image import ENCODINGS
    from robomr_nodes.messages import header, new_message

    h, w = rng.randrange(0, 20), rng.randrange(0, 20)
    enc = rng.choice([*ENCODINGS, "yuv422", "", "8UC3"])
    return new_message(
        "sensor_msgs/msg/Image",
        header=header(0, "camera"),
        height=h,
        width=w,
        encoding=enc,
        is_bigendian=rng.randrange(2),
        step=rng.randrange(0, 100),
        data=np.frombuffer(rng.randbytes(rng.randrange(0, 3000)), dtype=np.uint8),
    )


def fuzz_messages(n: int, rng: random.Random) -> list[FuzzResult]:
    from robomr_nodes.convert.image import ImageError, image_to_array
    from robomr_nodes.convert.pointcloud import CloudError, cloud_to_xyz

    clouds, images = FuzzResult("PointCloud2 messages"), FuzzResult("Image messages")
    run_target(clouds, (_random_cloud(rng) for _ in range(n)), cloud_to_xyz, (CloudError,))
    run_target(images, (_random_image(rng) for _ in range(n)), image_to_array, (ImageError,))
    return [clouds, images]


def _yamlmutated_files(
    name: str,
    srcs: list[Path],
    parse: Callable,
    errors: tuple,
    n: int,
    rng: random.Random,
    work: Path,
) -> FuzzResult:
    seeds = [(p.name, p.read_bytes()) for p in srcs]
    res = FuzzResult(name)
    mut = lambda data, r: mutate_yaml(data.decode(), r)  # noqa: E731
    run_target(res, mutated_files(seeds, n, rng, work, mut), parse, errors)
    return res


def fuzz_yaml_inputs(n: int, rng: random.Random, work: Path) -> list[FuzzResult]:
    from robomr_nodes.launch_yaml import LaunchError, load_launch
    from robomr_nodes.param_files import ParamFileError, load_param_file
    from sim.generator import generate_scene
    from sim.scenarios import ScenarioError, load_scenario
    from sim.scene import Scene, SceneError

    scene = generate_scene("open-road", None)
    scene_files = [scene.save(work / "scene.yaml"), scene.save(work / "scene.json")]
    return [
        _yamlmutated_files(
            "launch files",
            sorted((REPO / "launch").glob("*.launch.yaml")),
            load_launch,
            (LaunchError,),
            n,
            rng,
            work,
        ),
        _yamlmutated_files(
            "parameter files",
            sorted((REPO / "config").glob("*.yaml")),
            load_param_file,
            (ParamFileError,),
            n,
            rng,
            work,
        ),
        _yamlmutated_files(
            "scenario files",
            sorted((REPO / "config" / "scenarios").glob("*.yaml")),
            load_scenario,
            (ScenarioError,),
            n,
            rng,
            work,
        ),
        _yamlmutated_files("scene files", scene_files, Scene.load, (SceneError,), n, rng, work),
    ]


def run_fuzz(n: int, seed: int, bag: Path) -> list[FuzzResult]:
    """Every target with ``n`` inputs each, drawn from ``seed``."""
    rng = random.Random(seed)
    work = Path(tempfile.mkdtemp(prefix="robomr-fuzz-"))
    try:
        return [
            fuzz_cloudmutated_files(n, rng, work),
            *fuzz_messages(n, rng),
            *fuzz_yaml_inputs(n, rng, work),
            *fuzz_bags(n, rng, work, bag),
        ]
    finally:
        shutil.rmtree(work, ignore_errors=True)
