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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.reliability.harness import REPO

HOSTILE = (
    "-1",
    "nan",
    ".inf",
    "[]",
    "{}",
    "~",
    "true",
    "1e400",
    "''",
    "x" * 300,
    "[1, [2]]",
    "-9223372036854775809",
    "0x10",
    "!!binary AAAA",
    "&a [*a]",
)


@dataclass
class FuzzResult:
    """Outcomes of one target."""

    target: str
    inputs: int = 0
    accepted: int = 0
    clear_errors: int = 0
    crashes: list[str] = field(default_factory=list)
    silent_wrong: list[str] = field(default_factory=list)


def mutate_bytes(data: bytes, rng: random.Random) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        kind, n = rng.randrange(5), len(buf)
        pos = rng.randrange(n) if n else 0
        if kind == 0 and n:
            buf[pos] ^= 1 << rng.randrange(8)
        elif kind == 1:
            del buf[pos:]
        elif kind == 2:
            buf[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
        elif kind == 3 and n:
            del buf[pos : pos + rng.randint(1, 64)]
        elif n:
            buf[pos : pos + 4] = rng.choice([b"\xff\xff\xff\x7f", b"\0\0\0\0", b"nan ", b"-1 "])
    return bytes(buf)


def mutate_yaml(text: str, rng: random.Random) -> bytes:
    lines = text.splitlines()
    for _ in range(rng.randint(1, 3)):
        if not lines:
            break
        i, kind = rng.randrange(len(lines)), rng.randrange(5)
        line = lines[i]
        if kind == 0 and ":" in line:
            key, _, _ = line.partition(":")
            lines[i] = f"{key}: {rng.choice(HOSTILE)}"
        elif kind == 1:
            del lines[i]
        elif kind == 2:
            lines.insert(i, line)
        elif kind == 3:
            lines[i] = " " * rng.randint(0, 6) + line.lstrip()
        else:
            return mutate_bytes("\n".join(lines).encode(), rng)
    return ("\n".join(lines) + "\n").encode()


def _run(result: FuzzResult, inputs: Iterator[object], call: Callable, errors: tuple) -> None:
    for k, item in enumerate(inputs):
        result.inputs += 1
        try:
            call(item)
            result.accepted += 1
        except errors as err:
            msg = str(err)
            if "\n" in msg.strip():  # a clear error is one line
                result.crashes.append(f"#{k}: multi-line {type(err).__name__}: {msg[:120]!r}")
            else:
                result.clear_errors += 1
        except Exception as err:  # anything else reaches the user as a traceback
            result.crashes.append(f"#{k}: {type(err).__name__}: {str(err)[:160]}")


def _files(
    seeds: list[tuple[str, bytes]],
    n: int,
    rng: random.Random,
    work: Path,
    mutate: Callable[[bytes, random.Random], bytes],
) -> Iterator[Path]:
    for k in range(n):
        name, data = seeds[k % len(seeds)]
        path = work / f"{k}-{name}"
        path.write_bytes(mutate(data, rng))
        yield path
        path.unlink(missing_ok=True)


def fuzz_cloud_files(n: int, rng: random.Random, work: Path) -> FuzzResult:
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
    _run(res, _files(seeds, n, rng, work, mutate_bytes), read_scan, (CloudFileError,))
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
    _run(clouds, (_random_cloud(rng) for _ in range(n)), cloud_to_xyz, (CloudError,))
    _run(images, (_random_image(rng) for _ in range(n)), image_to_array, (ImageError,))
    return [clouds, images]


def _yaml_files(
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
    _run(res, _files(seeds, n, rng, work, mut), parse, errors)
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
        _yaml_files(
            "launch files",
            sorted((REPO / "launch").glob("*.launch.yaml")),
            load_launch,
            (LaunchError,),
            n,
            rng,
            work,
        ),
        _yaml_files(
            "parameter files",
            sorted((REPO / "config").glob("*.yaml")),
            load_param_file,
            (ParamFileError,),
            n,
            rng,
            work,
        ),
        _yaml_files(
            "scenario files",
            sorted((REPO / "config" / "scenarios").glob("*.yaml")),
            load_scenario,
            (ScenarioError,),
            n,
            rng,
            work,
        ),
        _yaml_files("scene files", scene_files, Scene.load, (SceneError,), n, rng, work),
    ]


def fuzz_bags(n: int, rng: random.Random, work: Path, bag: Path) -> list[FuzzResult]:
    """metadata.yaml mutations and MCAP byte flips of a recorded bag."""
    from robomr_nodes.bag import BagError, bag_info, digest, read_bag, verify_bag

    clean = digest(read_bag(bag))
    meta, flips = FuzzResult("bag metadata.yaml"), FuzzResult("bag MCAP byte flips")
    mcap = next(bag.glob("*.mcap"))
    original = mcap.read_bytes()

    def read_all(path: Path) -> str:
        verify_bag(path)
        bag_info(path)
        return digest(read_bag(path))

    def metadata_inputs() -> Iterator[Path]:
        text = (bag / "metadata.yaml").read_text()
        for k in range(n):
            d = work / f"m{k}" / bag.name
            d.mkdir(parents=True)
            (d / mcap.name).symlink_to(mcap)
            (d / "metadata.yaml").write_bytes(mutate_yaml(text, rng))
            yield d
            shutil.rmtree(d.parent)

    def flip_inputs() -> Iterator[tuple[int, Path]]:
        for k in range(n):
            d = work / f"f{k}" / bag.name
            shutil.copytree(bag, d)
            data = bytearray(original)
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
            (d / mcap.name).write_bytes(bytes(data))
            yield k, d
            shutil.rmtree(d.parent)

    def flipped(item: tuple[int, Path]) -> None:
        k, path = item
        if read_all(path) != clean:
            flips.silent_wrong.append(f"#{k}: read without error, messages differ")

    _run(meta, metadata_inputs(), read_all, (BagError,))
    _run(flips, flip_inputs(), flipped, (BagError,))
    return [meta, flips]


def run_fuzz(n: int, seed: int, bag: Path) -> list[FuzzResult]:
    """Every target with ``n`` inputs each, drawn from ``seed``."""
    rng = random.Random(seed)
    work = Path(tempfile.mkdtemp(prefix="robomr-fuzz-"))
    try:
        return [
            fuzz_cloud_files(n, rng, work),
            *fuzz_messages(n, rng),
            *fuzz_yaml_inputs(n, rng, work),
            *fuzz_bags(n, rng, work, bag),
        ]
    finally:
        shutil.rmtree(work, ignore_errors=True)
