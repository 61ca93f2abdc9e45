"""``robomr bench render``: Gaussian-splatting render speed and fidelity.

Speed: frames/s of the CPU rasterizer (``backend="torch"``: the compiled per-pixel kernel used
for rendering, at ``--threads`` and at 2 threads, and the differentiable torch tiled
compositor) against the untiled reference compositor (every visible Gaussian against every
pixel chunk, ``backend="dense"``) on the same synthetic street model in the same run, with the
projection's share of a frame, and of gsplat when CUDA is present (parity: max |gsplat -
compiled|).
Fidelity (GSRMR, arXiv 2504.13697, reports PSNR/SSIM): a model built from the simulator's
surface samples of a scenario is rendered at robot camera poses and compared with the
simulator's camera, before and after a short photometric fit on the training poses; poses
half-way between them are held out.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
import torch

from bench.report import BenchReport, Table
from gs_render import (
    FitConfig,
    GaussianModel,
    GaussianRenderer,
    RendererConfig,
    SkyGradient,
    fit,
    from_surface_samples,
    gsplat_available,
    psnr,
    rasterize,
    ssim,
)
from gs_render.projection import project
from gs_render.raster_torch import TorchRasterConfig
from gs_render.synthetic import street_camera, street_samples

DESCRIPTION = (
    "Gaussian-splatting rendering: tiled CPU rasterizer vs dense baseline (frames/s), gsplat on "
    "CUDA, and PSNR/SSIM against the simulator camera before/after a short fit"
)


def _count(minimum: int) -> Callable[[str], int]:
    """An argparse type: an int >= ``minimum``."""

    def parse(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} is below {minimum}")
        return value

    return parse


def _ints(text: str) -> list[int]:
    return [_count(1)(str(int(float(v)))) for v in text.split(",")]


def _size(text: str) -> tuple[int, int]:
    width, height = text.split("x")
    return int(width), int(height)


def _sizes(text: str) -> list[tuple[int, int]]:
    return [_size(v) for v in text.split(",")]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--gaussians", type=_ints, default=[10_000, 100_000], help="model sizes, e.g. 1e4,1e5")
    add("--sizes", type=_sizes, default=[(320, 240), (640, 480)], help="e.g. 320x240,640x480")
    add("--frames", type=_count(1), default=5, help="timed frames per setting (median reported)")
    add(
        "--baseline-max-evals",
        type=float,
        default=3.5e9,
        help="run the dense baseline only where visible Gaussians x pixels <= this",
    )
    add("--scenario", default="urban-clutter", help="simulator scenario for the fidelity part")
    add("--quality-size", type=_size, default=(160, 120), help="camera WxH for fidelity")
    add("--poses", type=_count(1), default=3, help="training camera poses along the ego lane")
    add("--pose-step-m", type=float, default=4.0, help="distance between training poses (m)")
    add("--spacing-m", type=float, default=0.2, help="surface sample spacing (m)")
    add("--fit-iterations", type=_count(0), default=24, help="photometric fit steps (0: no fit)")
    add("--skip-quality", action="store_true", help="only the speed table")
    # One thread by default: on a loaded 2-core machine two intra-op threads were 3-6x slower
    # (OpenMP hand-offs wait for a core held by another process); 0 keeps torch's setting.
    add("--threads", type=_count(0), default=1, help="torch intra-op threads (0: torch's default)")


def _median_s(render: Callable[[], object], frames: int, warm_up: bool = True) -> float:
    if warm_up:  # allocator and first-call dispatch; not worth it for the slow baseline
        render()
    times = []
    for _ in range(frames):
        start = time.perf_counter()
        render()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def _renderer_for(
    model: GaussianModel, k: np.ndarray, viewmat: np.ndarray, size: tuple[int, int]
) -> tuple[Callable[[str], torch.Tensor], int]:
    """A function rendering the view with a given backend, and the number of visible Gaussians."""
    cams = (
        torch.tensor(viewmat, dtype=torch.float32)[None],
        torch.tensor(k, dtype=torch.float32)[None],
    )

    geometry = (model.means, model.quats, model.scales, model.opacities)

    def render(backend: str, kernel: str = "auto") -> torch.Tensor:
        config = TorchRasterConfig(kernel=kernel)
        with torch.no_grad():
            rgb, _ = rasterize(
                *geometry, model.colors, *cams, *size, backend=backend, torch_config=config
            )
        if backend == "gsplat":
            torch.cuda.synchronize()
        return rgb.cpu()

    with torch.no_grad():
        visible = len(project(*geometry, cams[0][0], cams[1][0], *size, 0.01, 1e10).ids)
    return render, visible


def _speed(args: argparse.Namespace, report: BenchReport) -> None:
    threads = torch.get_num_threads()
    columns = ["gaussians", "size", "visible", "project_ms", "compiled_ms", "compiled_fps",
               "compiled_fps_2_threads", "torch_tiled_fps", "untiled_fps", "compiled/untiled",
               "compiled/torch_tiled", "max|compiled-untiled|", "gsplat_fps",
               "max|gsplat-compiled|"]  # fmt: skip
    table = Table(f"render speed: synthetic street, float32, {threads} thread(s)", columns)
    use_gpu = gsplat_available()
    for n in args.gaussians:
        model = from_surface_samples(*street_samples(n))
        for size in args.sizes:
            k, viewmat = street_camera(*size)
            render, visible = _renderer_for(model, k, viewmat, size)
            label = f"{n}_{size[0]}x{size[1]}"
            compiled_s = _median_s(lambda r=render: r("torch", "numba"), args.frames)
            torch.set_num_threads(2)
            two_s = _median_s(lambda r=render: r("torch", "numba"), args.frames)
            torch.set_num_threads(threads)
            tiled_s = _median_s(lambda r=render: r("torch", "torch"), args.frames)
            cams = (
                torch.tensor(viewmat, dtype=torch.float32),
                torch.tensor(k, dtype=torch.float32),
            )
            geometry = (model.means, model.quats, model.scales, model.opacities)
            with torch.no_grad():
                project_s = _median_s(
                    lambda g=geometry, c=cams, s=size: project(*g, *c, *s, 0.01, 1e10), 3
                )
            dense_fps = ratio = diff = None
            evals = visible * size[0] * size[1]
            if evals <= args.baseline_max_evals:
                dense_s = _median_s(lambda r=render: r("dense"), 1, warm_up=False)
                dense_fps, ratio = 1.0 / dense_s, dense_s / compiled_s
                diff = float((render("torch", "numba") - render("dense")).abs().max())
                report.ratios[f"compiled_vs_untiled_{label}"] = ratio
            else:
                report.notes.append(
                    f"untiled baseline skipped for {label}: {evals:.2g} "
                    f"Gaussian-pixel pairs > --baseline-max-evals"
                )
            report.ratios[f"compiled_vs_torch_tiled_{label}"] = tiled_s / compiled_s
            report.ratios[f"compiled_fps_{label}"] = 1.0 / compiled_s
            report.ratios[f"compiled_fps_2_threads_{label}"] = 1.0 / two_s
            gpu_fps = gpu_diff = None
            if use_gpu:
                gpu_fps = 1.0 / _median_s(lambda r=render: r("gsplat"), args.frames)
                gpu_diff = float((render("gsplat") - render("torch", "numba")).abs().max())
                report.ratios[f"gsplat_vs_compiled_{label}"] = gpu_fps * compiled_s
            table.add(
                n, f"{size[0]}x{size[1]}", visible, 1e3 * project_s, 1e3 * compiled_s,
                1.0 / compiled_s, 1.0 / two_s, 1.0 / tiled_s, dense_fps, ratio,
                tiled_s / compiled_s, diff, gpu_fps, gpu_diff,
            )  # fmt: skip
    report.tables.append(table)
    if not use_gpu:
        report.notes.append("gsplat: no CUDA device in this run, its columns are empty")


_SIM_NAMES = ("generate_scene", "surface_samples", "Camera", "CameraConfig", "World", "Lighting",
              "BicycleRobot", "RobotConfig")  # fmt: skip


def _sim_module() -> ModuleType:
    """The simulator package, or raises ImportError/AttributeError naming what is missing."""
    import sim

    for name in _SIM_NAMES:
        getattr(sim, name)
    return sim


@dataclass
class _SimViews:
    model: GaussianModel  # built from the surface samples
    poses: list[np.ndarray]  # T_world_camera_optical [4, 4]: training poses, then held-out
    offsets_m: list[float]  # distance of each pose from the ego start along its heading
    frames: list[Any]  # sim CameraFrame per pose
    num_train: int
    background_rgb: tuple[float, float, float]


def _sim_views(args: argparse.Namespace, sim: ModuleType) -> _SimViews:
    """Scene, camera poses along the ego heading, camera frames and the surface-sample model."""
    scene = sim.generate_scene(args.scenario)
    x0, y0, yaw = scene.ego_start
    train = [i * args.pose_step_m for i in range(args.poses)]
    held = [d + 0.5 * args.pose_step_m for d in train[:-1]] or [0.5 * args.pose_step_m]
    robot = sim.BicycleRobot(sim.RobotConfig())
    poses = []
    for d in train + held:
        robot.reset(x0 + d * math.cos(yaw), y0 + d * math.sin(yaw), yaw)
        poses.append(robot.T_world_camera_optical())
    # Samples in a window 5 m behind to 120 m ahead of the poses, 25 m to each side.
    corners = np.array([[-5, -25], [-5, 25], [train[-1] + 120, -25], [train[-1] + 120, 25]])
    rot = np.array([[math.cos(yaw), -math.sin(yaw)], [math.sin(yaw), math.cos(yaw)]])
    xy = corners @ rot.T + (x0, y0)
    region = (xy[:, 0].min(), xy[:, 0].max(), xy[:, 1].min(), xy[:, 1].max())
    lighting = sim.Lighting()
    samples = sim.surface_samples(scene, args.spacing_m, lighting=lighting, region_xy_m=region)
    width, height = args.quality_size
    camera = sim.Camera(sim.CameraConfig(width_px=width, height_px=height, lighting=lighting))
    world = sim.World(scene.static())
    return _SimViews(
        model=from_surface_samples(samples.points, samples.normals, samples.colors, args.spacing_m),
        poses=poses,
        offsets_m=train + held,
        frames=[camera.render(world, pose) for pose in poses],
        num_train=len(train),
        background_rgb=lighting.sky_horizon_rgb,
    )


def _quality(args: argparse.Namespace, report: BenchReport) -> None:
    try:
        sim = _sim_module()
    except (ImportError, AttributeError) as err:
        report.notes.append(
            f"fidelity part skipped: the simulator does not provide "
            f"{', '.join(_SIM_NAMES)} yet ({err})"
        )
        return
    v = _sim_views(args, sim)
    width, height = args.quality_size
    lighting = sim.Lighting()
    sky = SkyGradient(lighting.sky_zenith_rgb, lighting.sky_horizon_rgb)
    config = RendererConfig(backend="auto", sky=sky)  # the sim's sky behind the map

    def render_all(model: GaussianModel) -> list[np.ndarray]:
        renderer = GaussianRenderer(model, config)
        return [
            renderer.render(p, f.K, width, height)[0]
            for p, f in zip(v.poses, v.frames, strict=True)
        ]

    start = time.perf_counter()
    before = render_all(v.model)
    render_s = (time.perf_counter() - start) / len(v.poses)
    after = before
    if args.fit_iterations > 0:
        train = range(v.num_train)
        views = [(v.frames[i].rgb, v.frames[i].K, np.linalg.inv(v.poses[i])) for i in train]
        fit_cfg = FitConfig(iterations=args.fit_iterations, background_rgb=v.background_rgb)
        start = time.perf_counter()
        after = render_all(fit(v.model, views, fit_cfg).model)
        report.notes.append(
            f"fit: {args.fit_iterations} iterations on {v.num_train} views, "
            f"{time.perf_counter() - start:.1f} s"
        )
    table = Table(
        f"fidelity vs sim camera: {args.scenario}, {len(v.model):,} Gaussians "
        f"(spacing {args.spacing_m} m), {width}x{height}, render {1e3 * render_s:.0f} ms",
        [
            "pose",
            "offset m",
            "role",
            "PSNR before",
            "PSNR after",
            "SSIM before",
            "SSIM after",
            "geometry PSNR before",
            "geometry PSNR after",
        ],
    )
    gains: dict[str, list[float]] = {"train": [], "held-out": []}
    for i, frame in enumerate(v.frames):
        role = "train" if i < v.num_train else "held-out"
        p0, p1 = psnr(before[i], frame.rgb), psnr(after[i], frame.rgb)
        s0, s1 = ssim(before[i], frame.rgb), ssim(after[i], frame.rgb)
        hit = frame.object_index >= 0  # pixels showing geometry, not sky
        g0, g1 = (psnr(img[hit][:, None], frame.rgb[hit][:, None]) for img in (before[i], after[i]))
        table.add(i, v.offsets_m[i], role, p0, p1, s0, s1, g0, g1)
        gains[role].append(p1 - p0)
    report.tables.append(table)
    for role, values in gains.items():
        report.ratios[f"psnr_gain_db_{role}"] = float(np.mean(values))
    report.notes.append(
        "fidelity: the model holds static objects only (the camera renders the static world); "
        "renders composite over the sim's sky gradient (gs_render.SkyGradient); geometry PSNR "
        "leaves sky pixels out; the fit trains against the horizon colour as background"
    )


def run(args: argparse.Namespace) -> BenchReport:
    threads = torch.get_num_threads()
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        settings = {
            k: v for k, v in vars(args).items() if k not in ("func", "bench_module", "json")
        }
        report = BenchReport(name="render", settings=settings)  # records torch_threads
        _speed(args, report)
        if not args.skip_quality:
            _quality(args, report)
    finally:
        torch.set_num_threads(threads)
    return report
