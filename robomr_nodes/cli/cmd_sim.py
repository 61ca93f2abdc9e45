"""The built-in simulator: scenarios, pictures, datasets, Gazebo export (docs/sim.md).

SCENARIO is a scenario name (``robomr sim list``), a scenario file, or a scene file written by
``robomr sim save``.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np

from robomr_nodes.cli.main import CliError
from robomr_nodes.outputs import OutputError, check_output_dir, check_output_file, clear_outputs
from sim.camera import Camera, CameraConfig, CameraError
from sim.dataset import DatasetError, write_dataset
from sim.generator import GeneratorError, load_or_generate
from sim.lidar import SUPPORTED_BEAMS, Lidar, LidarConfig, LidarError
from sim.robot import BicycleRobot, RobotState
from sim.scenarios import ScenarioError, list_scenarios, load_scenario
from sim.scene import Scene, SceneError
from sim.sdf import SdfError, write_sdf
from sim.sensors import SENSORS
from sim.show import ShowError, draw_scene
from sim.variation import Variation, VariationError
from sim.world import World

_USER_ERRORS = (
    ScenarioError,
    SceneError,
    GeneratorError,
    DatasetError,
    SdfError,
    ShowError,
    LidarError,
    CameraError,
    OutputError,
)
# suffixes the writers take: matplotlib for `show`, Pillow for `render`
_SHOW_SUFFIXES = (".png", ".jpg", ".jpeg", ".pdf", ".svg", ".tif", ".tiff", ".webp")
_RENDER_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm")
DATASET_OUTPUTS = ("frames", "meta.json")


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "sim", help="built-in simulator: scenarios, pictures, datasets, SDF", description=__doc__
    )
    sim_sub = parser.add_subparsers(dest="sim_command", metavar="ACTION", required=True)

    p = sim_sub.add_parser("list", help="list the shipped scenarios")
    p.set_defaults(func=_list)

    def scenario_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("scenario", metavar="SCENARIO", help="scenario name, scenario or scene file")
        p.add_argument("--seed", type=int, help="scene seed (default: the scenario's)")

    p = sim_sub.add_parser("show", help="bird's-eye PNG of a scene with a lidar scan")
    scenario_args(p)
    p.add_argument("--out", type=Path, metavar="PNG", help="output (default NAME-SEED.png)")
    p.add_argument("--beams", type=int, default=32, choices=SUPPORTED_BEAMS)
    p.add_argument("--no-scan", action="store_true", help="draw the scene only")
    p.set_defaults(func=_show)

    p = sim_sub.add_parser("render", help="camera PNG from the ego start pose")
    scenario_args(p)
    p.add_argument("--out", type=Path, required=True, metavar="PNG")
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--height", type=int, default=480)
    p.set_defaults(func=_render)

    p = sim_sub.add_parser("save", help="write a scene file that reproduces the scene exactly")
    scenario_args(p)
    p.add_argument("--out", type=Path, required=True, metavar="FILE", help=".yaml or .json")
    p.set_defaults(func=_save)

    p = sim_sub.add_parser("export-sdf", help="write the scene as a Gazebo (gz sim) SDF world")
    scenario_args(p)
    p.add_argument("--out", type=Path, required=True, metavar="SDF")
    p.add_argument("--beams", type=int, default=32, choices=SUPPORTED_BEAMS)
    p.add_argument("--no-robot", action="store_true", help="leave out the robot model")
    p.set_defaults(func=_export_sdf)

    p = sim_sub.add_parser("dataset", help="write a labelled lidar dataset")
    p.add_argument("--frames", type=int, required=True, metavar="N")
    p.add_argument("--out", type=Path, required=True, metavar="DIR")
    p.add_argument("--scenario", default="urban-clutter", help="scenario name or file")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--beams", type=int, default=32, choices=SUPPORTED_BEAMS)
    p.add_argument("--frames-per-scene", type=int, default=8, metavar="K")
    p.add_argument(
        "--vary",
        action="store_true",
        help="domain randomisation (sim/variation.py): mixed lidar models, mounting heights "
        "and tilts, streets, slopes, motion; --scenario and --beams are then not used",
    )
    p.add_argument(
        "--sensors",
        metavar="A,B",
        help=f"lidar models drawn with --vary (default: {','.join(Variation().sensors)}; "
        f"known: {','.join(SENSORS)})",
    )
    p.add_argument(
        "--heights",
        metavar="LO,HI",
        help="mounting height range with --vary, m (default: "
        f"{Variation().height_range_m[0]},{Variation().height_range_m[1]})",
    )
    p.add_argument(
        "--roadside",
        metavar="LO,HI",
        help="with --vary, low walls, planters, hedges and kerb extensions beside the road "
        "(sim/roadside.py) per 100 m of each side, a rate uniform in [LO, HI] per scene "
        "(default: none)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--force",
        action="store_true",
        help="write into a non-empty DIR, replacing frames/ and meta.json",
    )
    p.set_defaults(func=_dataset)


def _check_image_out(path: Path, suffixes: tuple[str, ...]) -> None:
    if path.suffix.lower() not in suffixes:
        raise CliError(
            f"--out {path}: unsupported image suffix {path.suffix or '(none)'!r}; "
            f"use one of {', '.join(suffixes)}"
        )
    try:
        check_output_file(path)
    except OutputError as err:
        raise CliError(str(err)) from None


def _scene(args: argparse.Namespace) -> Scene:
    try:
        return load_or_generate(args.scenario, args.seed)
    except _USER_ERRORS as err:
        raise CliError(str(err)) from err


def _list(args: argparse.Namespace) -> int:
    for name in list_scenarios():
        scenario = load_scenario(name)
        print(f"{name:18s} seed {scenario.default_seed:<4d} {scenario.description}")
    return 0


def _show(args: argparse.Namespace) -> int:
    if args.out is not None:
        _check_image_out(args.out, _SHOW_SUFFIXES)
    scene = _scene(args)
    out = args.out or Path(f"{scene.name}-{scene.seed}.png")
    scan, T = None, None
    try:
        if not args.no_scan:
            T = BicycleRobot(state=RobotState(*scene.ego_start)).T_world_lidar()
            scan = Lidar(LidarConfig(beams=args.beams)).scan(
                World(scene), T, np.random.default_rng(0)
            )
        draw_scene(scene, out, scan=scan, T_world_lidar=T)
    except _USER_ERRORS as err:
        raise CliError(str(err)) from err
    occ = scene.generator.get("target_occlusion_start")
    detail = f", target occlusion from the start {occ:.2f}" if occ is not None else ""
    print(f"wrote {out} ({len(scene.objects)} objects{detail})")
    return 0


def _render(args: argparse.Namespace) -> int:
    from PIL import Image

    _check_image_out(args.out, _RENDER_SUFFIXES)
    scene = _scene(args)
    try:
        camera = Camera(CameraConfig(width_px=args.width, height_px=args.height))
        pose = BicycleRobot(state=RobotState(*scene.ego_start)).T_world_camera_optical()
        frame = camera.render(World(scene), pose)
        Image.fromarray(frame.rgb).save(args.out)
    except _USER_ERRORS as err:
        raise CliError(str(err)) from err
    except OSError as err:
        raise CliError(f"cannot write {args.out}: {err}") from err
    print(f"wrote {args.out} ({args.width}x{args.height})")
    return 0


def _save(args: argparse.Namespace) -> int:
    _check_file_out(args.out)
    scene = _scene(args)
    try:
        scene.save(args.out)
    except SceneError as err:
        raise CliError(str(err)) from err
    except OSError as err:
        raise CliError(f"cannot write {args.out}: {err}") from err
    print(f"wrote {args.out} ({len(scene.objects)} objects)")
    return 0


def _check_file_out(path: Path) -> None:
    try:
        check_output_file(path)
    except OutputError as err:
        raise CliError(str(err)) from None


def _export_sdf(args: argparse.Namespace) -> int:
    _check_file_out(args.out)
    scene = _scene(args)
    try:
        write_sdf(
            scene, args.out, include_robot=not args.no_robot, lidar=LidarConfig(beams=args.beams)
        )
    except _USER_ERRORS as err:
        raise CliError(str(err)) from err
    print(f"wrote {args.out} ({len(scene.objects)} objects)")
    return 0


def _range_pair(value: str, flag: str, unit: str) -> tuple[float, float]:
    """``LO,HI`` of a command-line flag as two floats, or a clear error."""
    try:
        lo, hi = (float(v) for v in value.split(","))
    except ValueError as err:
        raise CliError(f"{flag} {value!r}: expected LO,HI {unit}") from err
    return lo, hi


def _variation(args: argparse.Namespace) -> Variation | None:
    if not args.vary:
        if args.sensors or args.heights or args.roadside:
            raise CliError("--sensors, --heights and --roadside need --vary")
        return None
    changes: dict[str, object] = {}
    if args.sensors:
        changes["sensors"] = tuple(s.strip() for s in args.sensors.split(",") if s.strip())
    if args.heights:
        changes["height_range_m"] = _range_pair(args.heights, "--heights", "in metres")
    if args.roadside:
        changes["roadside_range_per_100m"] = _range_pair(args.roadside, "--roadside", "per 100 m")
    try:
        return replace(Variation(), **changes)  # type: ignore[arg-type]
    except VariationError as err:
        raise CliError(str(err)) from err


def _dataset(args: argparse.Namespace) -> int:
    variation = _variation(args)
    try:
        check_output_dir(args.out, args.force, DATASET_OUTPUTS)
        # every setting is checked before anything is created or replaced
        load_scenario(args.scenario)
        for name, value, low in (
            ("--seed", args.seed, 0),
            ("--frames", args.frames, 1),
            ("--frames-per-scene", args.frames_per_scene, 1),
        ):
            if value < low:
                raise CliError(f"{name} {value}: must be >= {low}")
        if args.force:
            clear_outputs(args.out, DATASET_OUTPUTS)
        out = write_dataset(
            args.out,
            args.frames,
            scenario=args.scenario,
            seed=args.seed,
            lidar=LidarConfig(beams=args.beams),
            frames_per_scene=args.frames_per_scene,
            progress=not args.no_progress,
            variation=variation,
        )
    except _USER_ERRORS as err:
        raise CliError(str(err)) from err
    except OSError as err:
        where = err.filename or args.out
        raise CliError(f"cannot write the dataset at {where}: {err.strerror or err}") from err
    print(f"wrote {args.frames} frames to {out}")
    return 0
