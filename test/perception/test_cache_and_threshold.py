"""The model-frame training cache, and choosing the default score threshold on validation data."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from perception.cache import CacheError, ConcatCache, TrainingCache, build_cache
from perception.checkpoint import load_detector, save_detector, set_score_threshold
from perception.dataset import SimDataset
from perception.evaluate import EvalConfig, GroundTruth
from perception.postprocess import Detections
from perception.provenance import update_provenance, write_provenance
from perception.sensor_input import boxes_to_model_frame, to_model_frame
from perception.threshold import choose_threshold
from perception.train import init_model


def test_cached_frames_equal_the_frames_moved_into_the_model_frame(
    synthetic_dataset, small_config, tmp_path
) -> None:
    ds = SimDataset(synthetic_dataset)
    cache = TrainingCache(build_cache(ds, tmp_path / "c", small_config, progress=False))
    assert len(cache) == len(ds)
    frame, cached = ds[1], cache[1]
    setup = ds.setup(frame)
    moved = to_model_frame(frame.points, setup, True)
    # The cache keeps points within the range's corners (+1 m) and 1 m of its z range.
    assert len(cached.points) <= len(moved) and len(cached.points) > 0.5 * len(moved)
    np.testing.assert_allclose(cached.boxes, boxes_to_model_frame(frame.boxes, setup), atol=1e-5)
    np.testing.assert_array_equal(cached.labels, frame.labels)
    # Every cached point is a moved point (float32 rounding only).
    near = {tuple(np.round(p, 4)) for p in moved[:, :3]}
    assert all(tuple(np.round(p, 4)) in near for p in cached.points[:50, :3])


def test_a_matching_cache_is_reused_and_a_stale_one_rebuilt(
    synthetic_dataset, small_config, tmp_path
) -> None:
    ds = SimDataset(synthetic_dataset)
    out = build_cache(ds, tmp_path / "c", small_config, progress=False)
    stamp = (out / "xyz.npy").stat().st_mtime_ns
    assert build_cache(ds, tmp_path / "c", small_config, progress=False) == out
    assert (out / "xyz.npy").stat().st_mtime_ns == stamp  # reused
    info = json.loads((out / "cache.json").read_text())
    (out / "cache.json").write_text(json.dumps({**info, "frames": 99}))
    build_cache(ds, tmp_path / "c", small_config, progress=False)
    assert json.loads((out / "cache.json").read_text())["frames"] == len(ds)  # rebuilt


def test_concatenated_caches_index_across_their_parts(
    synthetic_dataset, small_config, tmp_path
) -> None:
    ds = SimDataset(synthetic_dataset)
    one = TrainingCache(build_cache(ds, tmp_path / "a", small_config, progress=False))
    both = ConcatCache([one, one])
    assert len(both) == 2 * len(one)
    np.testing.assert_array_equal(both[len(one) + 1].points, one[1].points)
    with pytest.raises(CacheError):
        TrainingCache(tmp_path / "missing")


def _det(boxes, scores) -> Detections:
    return Detections(
        np.asarray(boxes, float), np.zeros(len(boxes), np.int64), np.asarray(scores, np.float32)
    )


def test_the_threshold_maximises_f1() -> None:
    car = [10, 0, 0.8, 4.5, 1.8, 1.5, 0]
    gt = GroundTruth(np.array([car]), np.array([0]), np.array([0.0]), np.array([50]))
    # Frame 1: the car found at 0.9, a false box at 0.6; frame 2: the car found at 0.4.
    dets = [_det([car, [-10, 5, 0.8, 4, 2, 1.5, 0]], [0.9, 0.6]), _det([car], [0.4])]
    choice = choose_threshold(dets, [gt, gt], EvalConfig())
    # t <= 0.4: TP 2, FP 1 -> F1 0.8; t in (0.4, 0.6]: TP 1, FP 1, FN 1 -> 0.5; t > 0.6: 0.67.
    assert choice.threshold == pytest.approx(0.4) and choice.f1 == pytest.approx(0.8)
    assert (choice.precision, choice.recall, choice.num_gt) == (pytest.approx(2 / 3), 1.0, 2)


def test_writing_the_threshold_updates_model_and_provenance(small_config, tmp_path) -> None:
    path = save_detector(init_model(small_config, 0), tmp_path / "m.pt")
    write_provenance(path, {"command": "test"})
    set_score_threshold(path, 0.37, {"value": 0.37, "data": "val"})
    update_provenance(path, {"score_threshold": {"value": 0.37}})
    model = load_detector(path, "cpu")
    assert model.config.postprocess.score_threshold == 0.37
    prov = json.loads(path.with_suffix(".json").read_text())
    assert prov["command"] == "test" and prov["score_threshold"]["value"] == 0.37
    assert prov["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
