"""Accuracy cost of brownout for ``robomr bench serving``.

- Detector: car R40 AP (BEV IoU 0.7 and 0.5, every occlusion level) on a held-out simulator set
  (32 beams, the benchmark's held-out seed 424242), with a share 1 - tau of the frames served by
  the brownout path (shorter range) and the rest by the full model. Which frames are degraded
  follows the service's own path gate (``PathGate``), so the mix is the one the service makes.
  Ground truth outside the full model's range is ignored for both paths: boxes the short range
  cannot see count as misses, which is the cost.
- Renderer: PSNR and SSIM of the brownout render (lower resolution, enlarged) against the full
  render of the same pose.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from offload.serving.brownout import PathGate

HELDOUT_SEED = 424_242  # bench/bench_detector.py's held-out seed: never used for training


def detector_ap_by_tau(
    model: Any, frames: int, taus: Sequence[float], progress: bool = False
) -> dict[float, dict[str, float]]:
    """tau -> {"bev_0.7": AP, "bev_0.5": AP} of the car class (see the module docstring)."""
    return detector_ap_levels({0.0: model}, frames, taus)[0.0]


def detector_ap_levels(
    models: dict[float, Any], frames: int, taus: Sequence[float]
) -> dict[float, dict[float, dict[str, float]]]:
    """level -> tau -> {"bev_0.7": AP, "bev_0.5": AP}: each model's brownout path mixed with the
    full path (the same weights, so the full detections are computed once)."""
    from perception.dataset import SimDataset
    from perception.evaluate import EvalConfig, GroundTruth, evaluate, model_eval_config
    from sim import LidarConfig
    from sim.dataset import write_dataset

    with tempfile.TemporaryDirectory() as tmp:
        data = SimDataset(
            write_dataset(
                Path(tmp) / "heldout", frames, seed=HELDOUT_SEED, lidar=LidarConfig(beams=32)
            )
        )
        clouds = [data[i].points for i in range(len(data))]
        truths = [GroundTruth.from_frame(data[i]) for i in range(len(data))]
    first = next(iter(models.values()))
    full = [first.run([c], "full")[0] for c in clouds]
    config = model_eval_config(
        EvalConfig(iou_thresholds=(0.5, 0.7), metrics=("bev",)), first.model.config
    )
    out: dict[float, dict[float, dict[str, float]]] = {}
    for level, model in models.items():
        cheap = [model.run([c], "brownout")[0] for c in clouds]
        out[level] = {}
        for tau in taus:
            gate = PathGate()
            mix = [f if gate.path(tau) == "full" else c for f, c in zip(full, cheap, strict=True)]
            result = evaluate(mix, truths, config)
            out[level][tau] = {
                f"bev_{t}": float(result.ap[("bev", t, "car", "all")]) for t in (0.5, 0.7)
            }
    return out


def render_brownout_quality(model: Any, requests: Sequence[Any]) -> dict[str, float]:
    """Mean PSNR (dB) and SSIM of brownout renders against full renders of the same poses."""
    from gs_render import psnr, ssim

    values = []
    for r in requests:
        full = model.run([r], "full")[0].astype(np.float32) / 255.0
        cheap = model.run([r], "brownout")[0].astype(np.float32) / 255.0
        values.append((psnr(cheap, full), ssim(cheap, full)))
    v = np.asarray(values)
    return {"psnr_db": float(v[:, 0].mean()), "ssim": float(v[:, 1].mean()), "frames": len(v)}
