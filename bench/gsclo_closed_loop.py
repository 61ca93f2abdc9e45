"""Closed-loop GSCLO on a recorded drive: each policy's uploads teach its own map.

Timeline (GSRMR, arXiv 2504.13697, with the map learned online): the drive is cut into blocks
of ``T`` frames, the scheduling windows. The edge's map for block ``b`` has the geometry of
every lidar scan up to the block's first frame and the appearance learned from every frame
the policy uploaded before the block (the edge refines the map between blocks: a refinement
latency of at most one block). Every frame of the block is rendered from that map; the render
against the camera image gives L_t = 1 - SSIM, and what the operator sees on a pose-only frame.
Then the policy decides the block's uploads, and the uploaded frames update the map.

Offline policies (``apo_offline``, ``exact``, ``content_only``) see the block's true L_t and
channel gains (known future); online ones (``apo_online`` at horizon H, ``threshold``,
``random``) decide frame by frame from the current measurement and forecasts
(:mod:`planning.gsclo.forecast`: L from the map's coverage at the next poses, the gain from
recent estimates). Ground truth never enters the map; it only scores.

Maps are shared between runs with identical upload histories (a cache keyed by the uploads so
far): channel-blind policies repeat across fading seeds, and the first block is common to all.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
from tqdm import tqdm

from bench.gsclo_drive import Drive
from gs_render.lidar_map import LidarVoxelMap, MapGeometry
from gs_render.metrics import psnr, ssim
from gs_render.sensor_map import Frame, MapAppearance, SensorMapConfig
from planning.gsclo import (
    GscloObservation,
    GscloProblem,
    GscloScheduler,
    GscloState,
    LinkConfig,
    PayloadConfig,
    SchedulerConfig,
    evaluate_schedule,
    solve_apo,
    solve_exact,
)
from planning.gsclo.forecast import (
    ForecastConfig,
    ForecastState,
    forecast_channel_gain,
    forecast_discrepancy,
    observe,
)
from planning.gsclo.rounding import ranking_init


@dataclass(frozen=True)
class BlockRenders:
    """What the map at a block's start shows at the block's frames (each [T])."""

    discrepancy: np.ndarray  # 1 - SSIM(render, camera)
    psnr_db: np.ndarray
    ssim: np.ndarray
    coverage: np.ndarray  # SensorGaussianMap.coverage at each pose, in [0, 1]


class MapReplay:
    """Geometry snapshots per block (shared) and appearances per upload history (cached)."""

    def __init__(
        self, drive: Drive, config: SensorMapConfig, window: int, cache_size: int = 48,
        progress: bool = False, geometry: list[MapGeometry] | None = None,
    ) -> None:  # fmt: skip
        self.drive, self.config, self.window = drive, config, window
        lidar = LidarVoxelMap(config.lidar)
        self.geometry: list[MapGeometry] = list(geometry or [])
        for start in range(0, drive.num_frames if geometry is None else 0, window):
            begin = start - window + 1 if start else 0
            for t in range(begin, start + 1):
                for points, origin in drive.scans[t]:
                    lidar.insert(points, origin)
            self.geometry.append(lidar.gaussians())
        self._cache: OrderedDict[tuple, tuple[MapAppearance, BlockRenders]] = OrderedDict()
        self.cache_size = cache_size
        self.renders_computed = 0
        self.progress = progress

    def light(self) -> MapReplay:
        """The same replay without the lidar scans and the cache: what a worker process needs
        (pickled to it)."""
        other = MapReplay.__new__(MapReplay)
        other.__dict__.update(self.__dict__)
        other.drive = replace(self.drive, scans=[])
        other._cache = OrderedDict()
        other.renders_computed = 0
        return other

    def blocks(self) -> list[np.ndarray]:
        n = self.drive.num_frames
        return [np.arange(s, min(s + self.window, n)) for s in range(0, n, self.window)]

    def state(
        self, block: int, history: tuple[int, ...], parent: MapAppearance | None
    ) -> tuple[MapAppearance, BlockRenders]:
        """Appearance and renders for ``block`` after the uploads ``history`` (sorted frame
        indices before the block); ``parent`` is the appearance of the previous block."""
        key = (block, history)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        app = parent.copy() if parent is not None else MapAppearance(self.config)
        if block > 0:
            start = self.blocks()[block - 1][0]
            new = [t for t in history if t >= start]
            d = self.drive
            # The edge refines between blocks, when the scans up to this block exist.
            app.set_geometry(self.geometry[block])
            app.add_frames([Frame(d.images[t], d.K, d.poses[t]) for t in new])
        app.set_geometry(self.geometry[block])
        renders = self._render(app, self.blocks()[block])
        app._cache = app._renderer = None  # recomputed on demand; keeps cache entries small
        self._cache[key] = (app, renders)
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return app, renders

    def _render(self, app: MapAppearance, frames: np.ndarray) -> BlockRenders:
        d = self.drive
        height, width = d.images.shape[1:3]
        rows = []
        for t in frames:
            image, cov = app.render_with_coverage(d.poses[t], d.K, width, height)
            s = ssim(image, d.images[t])
            rows.append((1.0 - s, psnr(image, d.images[t]), s, cov))
        self.renders_computed += len(frames)
        return BlockRenders(*(np.array(c) for c in zip(*rows, strict=True)))


@dataclass
class PolicyContext:
    """What a policy may use: the link, budget, the block's gains and distances (online
    policies read them frame by frame), the forecast state and the seed."""

    link: LinkConfig
    payload: PayloadConfig
    budget: float
    window: int
    gain: np.ndarray  # [T] this block's channel gains
    distance_m: np.ndarray  # [T]
    seed: int
    forecast: ForecastConfig = field(default_factory=ForecastConfig)
    forecast_state: ForecastState = field(default_factory=ForecastState)
    counts: dict[int, int] = field(default_factory=dict)  # block -> uploads (random's target)

    def problem(self, disc: np.ndarray, gain: np.ndarray, budget: float) -> GscloProblem:
        return GscloProblem.from_payload(disc, gain, budget, self.link, self.payload)


Policy = Callable[[PolicyContext, int, BlockRenders], np.ndarray]


def offline_apo(ctx: PolicyContext, block: int, r: BlockRenders) -> np.ndarray:
    return solve_apo(ctx.problem(r.discrepancy, ctx.gain, ctx.budget)).upload


def offline_exact(ctx: PolicyContext, block: int, r: BlockRenders) -> np.ndarray:
    problem = ctx.problem(r.discrepancy, ctx.gain, ctx.budget)
    return solve_exact(problem, "enumerate" if problem.num_frames <= 16 else "highs").upload


def content_only(ctx: PolicyContext, block: int, r: BlockRenders) -> np.ndarray:
    """Largest L_t first until the block's budget holds; the channel is ignored."""
    problem = ctx.problem(r.discrepancy, ctx.gain, ctx.budget)
    need = problem.coverage_target
    x = ranking_init(r.discrepancy, need) > 0.5 if need > 0.0 else np.zeros(len(r.discrepancy))
    return np.asarray(x, dtype=bool)


def threshold(theta: float) -> Policy:
    def decide(ctx: PolicyContext, block: int, r: BlockRenders) -> np.ndarray:
        return r.discrepancy > theta

    return decide


def random_count(ctx: PolicyContext, block: int, r: BlockRenders) -> np.ndarray:
    """As many uploads as the reference policy made in this block, at random frames."""
    k = min(ctx.counts.get(block, 0), len(r.discrepancy))
    rng = np.random.default_rng((ctx.seed, block))
    x = np.zeros(len(r.discrepancy), dtype=bool)
    x[rng.choice(len(x), size=k, replace=False)] = True
    return x


def online_apo(horizon: int) -> Policy:
    """Receding-horizon APO (GscloScheduler, block budget) with forecasts of L and |h|^2."""

    def decide(ctx: PolicyContext, block: int, r: BlockRenders) -> np.ndarray:
        cfg = SchedulerConfig(
            ctx.budget, ctx.window, "apo", "block", link=ctx.link, payload=ctx.payload
        )
        scheduler, state = GscloScheduler(cfg), GscloState()
        T = len(r.discrepancy)
        x = np.zeros(T, dtype=bool)
        for t in range(T):
            ahead = np.arange(t + 1, min(t + horizon, T))
            disc = forecast_discrepancy(
                ctx.forecast_state, ctx.forecast, r.discrepancy[t], r.coverage[ahead]
            )
            gain = forecast_channel_gain(
                ctx.forecast_state, ctx.forecast, None, ctx.distance_m[ahead]
            )
            obs = GscloObservation(
                (t + 1) * 100_000_000,
                np.concatenate([[r.discrepancy[t]], disc]),
                np.concatenate([[ctx.gain[t]], gain]),
            )
            decision, state = scheduler.decide(obs, state)
            x[t] = decision.upload
            ctx.forecast_state = observe(
                ctx.forecast_state, ctx.forecast, float(r.coverage[t]),
                float(r.discrepancy[t]), float(ctx.gain[t]), float(ctx.distance_m[t]),
            )  # fmt: skip
        return x

    return decide


@dataclass
class RunResult:
    """One policy on one fading seed."""

    upload: np.ndarray  # [N] bool
    energy_j: float
    energy_on_time_j: float  # without frames sent late (deadline misses)
    blocks_over_budget: int
    deadline_misses: int
    discrepancy: np.ndarray  # [N] L_t each frame had under this policy's map
    psnr_seen_db: float
    ssim_seen: float
    per_block_uploads: dict[int, int]


def run_policy(
    replay: MapReplay,
    policy: Policy,
    gain: np.ndarray,  # [N]
    budget: float,
    link: LinkConfig,
    payload: PayloadConfig,
    seed: int,
    counts: dict[int, int] | None = None,
) -> RunResult:
    """Runs ``policy`` over the drive with its own map (module docstring)."""
    d = replay.drive
    ctx = PolicyContext(link, payload, budget, replay.window, gain[:0], d.distance_m[:0], seed)
    ctx.counts = counts or {}
    history: tuple[int, ...] = ()
    app = None
    x_all, disc_all, psnr_all, ssim_all = [], [], [], []
    energy = on_time = 0.0
    over = misses = 0
    per_block = {}
    for b, frames in enumerate(replay.blocks()):
        app, renders = replay.state(b, history, app)
        ctx.gain, ctx.distance_m = gain[frames], d.distance_m[frames]
        x = np.asarray(policy(ctx, b, renders), dtype=bool)
        sched = evaluate_schedule(ctx.problem(renders.discrepancy, ctx.gain, budget), x, method="p")
        energy += sched.total_energy_j
        on_time += float(sched.energy_j[~sched.deadline_miss].sum())
        over += int(not sched.fidelity_met)
        misses += sched.num_deadline_misses
        per_block[b] = int(x.sum())
        history = history + tuple(int(t) for t in frames[x])
        x_all.append(x)
        disc_all.append(renders.discrepancy)
        psnr_all.append(renders.psnr_db)
        ssim_all.append(renders.ssim)
    x, disc = np.concatenate(x_all), np.concatenate(disc_all)
    mse = np.where(x, 0.0, 255.0**2 / 10.0 ** (np.concatenate(psnr_all) / 10.0))
    seen_psnr = float("inf") if mse.mean() == 0 else 10 * np.log10(255.0**2 / mse.mean())
    seen_ssim = float(np.where(x, 1.0, np.concatenate(ssim_all)).mean())
    return RunResult(x, energy, on_time, over, misses, disc, seen_psnr, seen_ssim, per_block)


def progress_bar(total: int, enabled: bool) -> tqdm:
    return tqdm(total=total, desc="gsclo runs", disable=not enabled)
