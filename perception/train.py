"""Training the detector on a simulator dataset (CenterPoint recipe, scaled to a 2-core CPU).

Recipe (CenterPoint, Yin et al. 2021; SECOND, Yan et al. 2018): the frames are moved once into
the model frame and cached (``perception.cache``); ground-truth sampling, sensor randomisation
and global rotation/flip/scale (``perception.augment``); Gaussian heat-map and centre regression
targets (``perception.targets``) for boxes with >= ``min_points_per_box`` lidar points; loss =
focal + 0.25 * L1 + ``direction_weight`` * L1 of the direction vector (``perception.losses``);
AdamW with a one-cycle learning rate; gradient clipping.
Every epoch writes a resumable checkpoint ``<out>.last.pt`` (model, optimizer, schedule and both
random generators); the end writes the model file ``<out>`` (``perception.checkpoint``) and the
provenance JSON ``<out stem>.json`` beside it (``perception.provenance``).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from perception.augment import AugmentConfig, ObjectBank, Sample, augment
from perception.cache import ConcatCache, TrainingCache, build_cache
from perception.checkpoint import read_model_file, save_detector
from perception.config import DetectorConfig, config_to_dict, resolve_device
from perception.dataset import SimDataset
from perception.errors import PerceptionError
from perception.evaluate import EvalConfig, evaluate_model
from perception.losses import direction_loss, focal_loss, regression_loss
from perception.model import REGRESSION_CHANNELS, Detector
from perception.provenance import write_provenance
from perception.targets import TargetConfig, build_targets
from perception.voxelize import collate, voxelize

log = logging.getLogger(__name__)


LOSS_PARTS = ("loss", "heatmap", "regression", "direction")  # total first, then its terms
_LOG_EVERY_STEPS = 50


class TrainError(PerceptionError):
    """A training setting is out of bounds, or a checkpoint does not match the run."""


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings of a training run."""

    epochs: int = 20  # passes over the training frames, >= 1
    batch_size: int = 4  # frames per step, >= 1
    learning_rate: float = 3e-3  # peak of the one-cycle schedule, > 0
    weight_decay: float = 0.01  # AdamW decoupled weight decay, >= 0
    regression_weight: float = 0.25  # weight of the L1 term (CenterPoint), >= 0
    direction_weight: float = 0.2  # weight of the direction-vector L1, >= 0
    grad_clip_norm: float = 35.0  # max gradient 2-norm (CenterPoint), > 0
    min_points_per_box: int = 5  # boxes with fewer lidar points get no target, >= 0
    seed: int = 0  # numpy (order, augmentation) and torch (initialisation) seed
    num_threads: int | None = None  # torch.set_num_threads; None leaves torch's default
    device: str = "auto"  # "auto", "cpu" or "cuda[:N]"
    # Frames taken in motion are deskewed with their recorded motion before training and
    # validation (perception.deskew), as the robot deskews scans with its odometry.
    deskew: bool = True
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    target: TargetConfig = field(default_factory=TargetConfig)

    def __post_init__(self) -> None:
        checks = {
            "epochs": self.epochs >= 1,
            "batch_size": self.batch_size >= 1,
            "learning_rate": self.learning_rate > 0,
            "weight_decay": self.weight_decay >= 0,
            "regression_weight": self.regression_weight >= 0,
            "direction_weight": self.direction_weight >= 0,
            "grad_clip_norm": self.grad_clip_norm > 0,
            "min_points_per_box": self.min_points_per_box >= 0,
            "num_threads": self.num_threads is None or self.num_threads >= 1,
        }
        for name, ok in checks.items():
            if not ok:
                raise TrainError(
                    f"{name}={getattr(self, name)!r} is out of bounds "
                    "(see the field comments of TrainConfig)"
                )


@dataclass(frozen=True)
class TrainResult:
    """What a run produced."""

    model_path: Path
    provenance_path: Path
    epoch_losses: list[dict[str, float]]  # per epoch: mean of each of LOSS_PARTS
    epoch_seconds: list[float]
    metrics: dict[str, Any]  # final training losses and, with a validation set, its evaluation


def init_model(config: DetectorConfig, seed: int) -> Detector:
    """A freshly initialised detector; the same seed gives the same weights."""
    torch.manual_seed(seed)
    return Detector(config)


def make_batch(
    samples: list[Sample], config: DetectorConfig, train: TrainConfig, device: torch.device
) -> dict[str, Any]:
    """Voxels and targets of a list of (augmented) samples, as tensors on ``device``."""
    voxels, targets = [], []
    for s in samples:
        keep = s.num_points >= train.min_points_per_box
        voxels.append(voxelize(s.points, config.voxel))
        targets.append(build_targets(s.boxes[keep], s.labels[keep], config, train.target))
    feats, coords = collate(voxels)

    def stack(name: str) -> torch.Tensor:
        return torch.from_numpy(np.stack([getattr(t, name) for t in targets])).to(device)

    return {
        "features": torch.from_numpy(feats).to(device),  # [V, F]
        "coords": torch.from_numpy(coords).to(device),  # [V, 4]
        "batch_size": len(samples),
        "heatmap": stack("heatmap"),  # [B, K, H, W]
        "indices": stack("indices"),
        "mask": stack("mask"),  # [B, M]
        "regression": stack("regression"),  # [B, M, 8]
        "direction": stack("direction"),  # [B, M, 2]
    }


def compute_loss(model: Detector, batch: dict[str, Any], train: TrainConfig) -> dict[str, Any]:
    """Total loss (a tensor, "loss") and its parts (floats: LOSS_PARTS)."""
    out = model(batch["features"], batch["coords"], batch["batch_size"])
    heat = focal_loss(out.heatmap, batch["heatmap"])
    weights = torch.ones(len(REGRESSION_CHANNELS), device=out.regression.device)
    reg = regression_loss(
        out.regression, batch["indices"], batch["mask"], batch["regression"], weights
    )
    dirs = direction_loss(out.direction, batch["indices"], batch["mask"], batch["direction"])
    total = heat + train.regression_weight * reg + train.direction_weight * dirs
    parts = {"heatmap": heat, "regression": reg, "direction": dirs}
    return {"loss": total, **{k: float(v.detach()) for k, v in parts.items()}}


def _checkpoint_path(out_path: Path) -> Path:
    return out_path.with_name(out_path.stem + ".last.pt")


@dataclass
class _Run:
    """Mutable state of a training run: what a checkpoint holds."""

    model: Detector
    optimizer: torch.optim.Optimizer
    schedule: torch.optim.lr_scheduler.LRScheduler
    rng: np.random.Generator
    settings: dict[str, Any]  # every setting; a checkpoint resumes only the same ones
    history: dict[str, list[Any]] = field(default_factory=lambda: {"losses": [], "seconds": []})

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(
            {
                "settings": self.settings,
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "schedule": self.schedule.state_dict(),
                "numpy_rng": self.rng.bit_generator.state,
                "torch_rng": torch.get_rng_state(),
                "history": self.history,
            },
            path,
        )

    def restore(self, path: Path, device: torch.device) -> None:
        ckpt = torch.load(path, map_location=device, weights_only=True)
        if ckpt["settings"] != self.settings:
            raise TrainError(
                f"{path} was written with other settings; "
                "rerun without --resume or with the same settings"
            )
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.schedule.load_state_dict(ckpt["schedule"])
        self.rng.bit_generator.state = ckpt["numpy_rng"]
        torch.set_rng_state(ckpt["torch_rng"])
        self.history = ckpt["history"]
        log.info("resuming after epoch %d", len(self.history["losses"]))


def _load_parent(path: Path, model: Detector) -> dict[str, Any]:
    """Copies the weights of the model file at ``path`` into ``model`` (same config) and
    returns ``{"sha256", "metadata"}`` of that file."""
    data = read_model_file(path)
    # Post-processing (the score threshold chosen after training) does not shape the network.
    stored, ours = dict(data.get("config") or {}), config_to_dict(model.config)
    stored.pop("postprocess", None)
    ours.pop("postprocess", None)
    if stored != ours:
        differ = sorted(k for k in set(stored) | set(ours) if stored.get(k) != ours.get(k))
        raise TrainError(
            f"init_from {path}: its detector config differs from this run's in {differ}; "
            "fine-tuning needs the same network"
        )
    model.load_state_dict(data["state_dict"], strict=True)
    return {
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "metadata": data.get("metadata", {}),
    }


def _train_epoch(
    run: _Run,
    dataset: ConcatCache,
    bank: ObjectBank | None,
    config: TrainConfig,
    detector_config: DetectorConfig,
    device: torch.device,
    progress: bool,
) -> dict[str, float]:
    """One pass over ``dataset`` in a random order; returns the mean of each of LOSS_PARTS."""
    run.model.train()
    sums = dict.fromkeys(LOSS_PARTS, 0.0)
    order = run.rng.permutation(len(dataset))
    steps = -(-len(dataset) // config.batch_size)
    label = f"epoch {len(run.history['losses']) + 1}/{config.epochs}"
    bar = tqdm(range(steps), desc=label, unit="step", disable=not progress)
    for step in bar:
        idx = order[step * config.batch_size : (step + 1) * config.batch_size]
        samples = [
            augment(Sample.from_frame(dataset[i]), run.rng, config.augment, bank) for i in idx
        ]
        parts = compute_loss(
            run.model, make_batch(samples, detector_config, config, device), config
        )
        run.optimizer.zero_grad(set_to_none=True)
        parts["loss"].backward()
        torch.nn.utils.clip_grad_norm_(run.model.parameters(), config.grad_clip_norm)
        run.optimizer.step()
        run.schedule.step()
        parts["loss"] = float(parts["loss"].detach())
        for k in sums:
            sums[k] += parts[k] / steps
        bar.set_postfix(loss=f"{parts['loss']:.3f}")
        if not progress and (step + 1) % _LOG_EVERY_STEPS == 0:  # progress without a bar
            log.info("%s: step %d/%d, loss %.4f", label, step + 1, steps, parts["loss"])
    return sums


def train(
    data_dir: str | Path | Sequence[str | Path],
    out_path: str | Path,
    config: TrainConfig,
    detector_config: DetectorConfig | None = None,
    val_dir: str | Path | None = None,
    command: str = "",
    resume: bool = False,
    progress: bool = True,
    cache_dir: str | Path | None = None,
    stop_after_epoch: int | None = None,
    init_from: str | Path | None = None,
) -> TrainResult:
    """Trains a detector and writes the model file, its checkpoint and its provenance JSON.
    ``data_dir`` is one dataset directory or several (their frames are pooled). The
    model-frame cache of each goes to ``cache_dir/<index>-<name>`` (default: ``<out
    stem>.cache`` beside the model file) and is reused by later runs on the same data.

    ``stop_after_epoch`` ends the run after that many epochs of the ``config.epochs`` schedule
    (the learning rate has not decayed to its end yet) and writes the model of that epoch; with
    ``resume`` it turns a checkpoint into a model file. It is not a training setting: the
    checkpoint can be resumed to the end of the schedule later.

    ``init_from`` starts from the weights of that model file (fine-tuning: a new schedule of
    ``config.epochs`` epochs) instead of a fresh initialisation; its detector config must equal
    ``detector_config``. Its path, sha256 and provenance go into the new provenance, and it is
    a setting (a checkpoint resumes only with the same one).

    Raises:
        DatasetError: a dataset directory is malformed.
        TrainError: ``resume`` with a checkpoint from different settings, or
            ``stop_after_epoch`` outside [1, config.epochs], or an ``init_from`` model
            whose detector config differs.
        ModelFileError: ``init_from`` is missing or unreadable.
    """
    if stop_after_epoch is not None and not 1 <= stop_after_epoch <= config.epochs:
        raise TrainError(f"stop_after_epoch={stop_after_epoch}: must be in [1, {config.epochs}]")
    last_epoch = config.epochs if stop_after_epoch is None else stop_after_epoch
    detector_config = detector_config or DetectorConfig()
    out_path = Path(out_path)
    if config.num_threads is not None:
        torch.set_num_threads(config.num_threads)
    device = resolve_device(config.device)
    dirs = [data_dir] if isinstance(data_dir, (str, Path)) else list(data_dir)
    sources = [SimDataset(d) for d in dirs]
    val_set = SimDataset(val_dir) if val_dir is not None else None
    cache_dir = Path(cache_dir) if cache_dir else out_path.with_name(out_path.stem + ".cache")
    start = time.perf_counter()
    dataset = ConcatCache(
        [
            TrainingCache(
                build_cache(
                    src,
                    cache_dir / f"{i}-{src.directory.name}",
                    detector_config,
                    progress=progress,
                    deskew=config.deskew,
                )
            )
            for i, src in enumerate(sources)
        ]
    )
    # Frames are memory-mapped slices of the cache, read every epoch rather than held.
    # Pasting keeps only the objects' points.
    bank = None
    if any(config.augment.paste_targets):
        bank = ObjectBank((dataset[i] for i in range(len(dataset))), config.min_points_per_box)
    log.info(
        "cache and object bank (%d objects) ready in %.0f s",
        0 if bank is None else len(bank),
        time.perf_counter() - start,
    )

    model = init_model(detector_config, config.seed)
    parent = None if init_from is None else _load_parent(Path(init_from), model)
    model = model.to(device)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer,
        max_lr=config.learning_rate,
        total_steps=config.epochs * -(-len(dataset) // config.batch_size),
        pct_start=0.4,
        div_factor=10.0,
    )
    settings = {"train": asdict(config), "detector": config_to_dict(detector_config)}
    if parent is not None:
        settings["init_from"] = {"path": str(init_from), "sha256": parent["sha256"]}
    run = _Run(model, optimizer, schedule, np.random.default_rng(config.seed), settings)
    if resume and _checkpoint_path(out_path).is_file():
        run.restore(_checkpoint_path(out_path), device)
    history = run.history
    if len(history["losses"]) > last_epoch:
        raise TrainError(
            f"the checkpoint holds {len(history['losses'])} epochs, more than "
            f"stop_after_epoch={last_epoch}"
        )
    while len(history["losses"]) < last_epoch:
        start = time.perf_counter()
        sums = _train_epoch(run, dataset, bank, config, detector_config, device, progress)
        history["losses"].append(sums)
        history["seconds"].append(time.perf_counter() - start)
        log.info(
            "epoch %d/%d: %s, %.1f s",
            len(history["losses"]),
            config.epochs,
            ", ".join(f"{k} {v:.4f}" for k, v in sums.items()),
            history["seconds"][-1],
        )
        run.save(_checkpoint_path(out_path))

    metrics: dict[str, Any] = {"train": history["losses"][-1]}
    if val_set is not None:
        metrics["val"] = evaluate_model(
            model, val_set, EvalConfig(), progress=progress, deskew=config.deskew
        ).to_json()
    model.eval()
    meta = {
        "command": command,
        "seed": config.seed,
        "epochs": config.epochs,
        "epochs_done": len(history["losses"]),  # < epochs: stopped early (stop_after_epoch)
        **settings,
        "dataset": {
            "path": ", ".join(str(src.directory) for src in sources),
            "frames": sum(len(src) for src in sources),
            "meta": sources[0].meta,
            "parts": [
                {"path": str(src.directory), "frames": len(src), "meta": src.meta}
                for src in sources
            ],
        },
        "val_dataset": None
        if val_set is None
        else {"path": str(val_set.directory), "frames": len(val_set), "meta": val_set.meta},
        "parent": None if parent is None else parent["metadata"],
        "epoch_seconds": history["seconds"],
        "epoch_losses": history["losses"],
        "final_metrics": metrics,
        "device": str(device),
        "num_threads": torch.get_num_threads(),
        "parameters": sum(p.numel() for p in model.parameters()),
    }
    save_detector(model, out_path, meta)
    prov = write_provenance(out_path, meta)
    return TrainResult(out_path, prov, history["losses"], history["seconds"], metrics)
