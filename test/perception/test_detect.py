"""``detect`` on batches of clouds, including empty and malformed ones; model files."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from perception.checkpoint import MODEL_VERSION, ModelFileError, load_detector, save_detector
from perception.config import CLASSES, ConfigError, ModelConfig, config_to_dict
from perception.dataset import SimDataset
from perception.detect import DetectError, detect
from perception.errors import PerceptionError
from perception.model import Detector
from perception.postprocess import Detections
from perception.sensor_input import SensorSetup, boxes_to_model_frame
from perception.train import init_model
from perception.voxelize import collate, voxelize


@pytest.fixture(scope="module")
def model(small_config) -> Detector:
    return init_model(small_config, seed=0).eval()


def test_detect_returns_one_valid_result_per_cloud(model, synthetic_dataset):
    frames = [SimDataset(synthetic_dataset)[i] for i in range(2)]
    results = detect(model, [f.points for f in frames])
    assert len(results) == 2
    for det in results:
        assert isinstance(det, Detections) and det.boxes.shape == (len(det), 7)
        assert np.all(np.isfinite(det.boxes)) and np.all(det.boxes[:, 3:6] > 0)
        assert np.all((det.labels >= 0) & (det.labels < len(CLASSES)))
        assert np.all(np.diff(det.scores) <= 0)  # sorted by score


def test_network_output_is_deterministic_and_batch_independent(model, synthetic_dataset):
    ds = SimDataset(synthetic_dataset)
    voxels = [voxelize(ds[i].points, model.config.voxel) for i in range(2)]

    def heatmaps(vs):
        feats, coords = collate(vs)
        with torch.no_grad():
            return model(torch.from_numpy(feats), torch.from_numpy(coords), len(vs)).heatmap

    together, alone = heatmaps(voxels), heatmaps(voxels[1:])
    # spconv's CPU kernels and oneDNN add in a thread- and batch-dependent order: float32
    # noise of ~1e-6 on O(1) logits; 1e-4 leaves margin and still catches a real mix-up.
    torch.testing.assert_close(together[1:], alone, atol=1e-4, rtol=0)
    torch.testing.assert_close(heatmaps(voxels), together, atol=1e-4, rtol=0)


@pytest.mark.parametrize(
    "cloud",
    [
        np.zeros((0, 4), dtype=np.float32),
        np.full((10, 4), np.nan, dtype=np.float32),
        np.array([[500.0, 0.0, 0.0, 1.0]], dtype=np.float32),  # out of range
    ],
)
def test_clouds_without_usable_points_give_empty_detections(model, cloud):
    (det,) = detect(model, [cloud])
    assert len(det) == 0 and det.boxes.shape == (0, 7)


def test_nan_and_inf_points_are_dropped_not_propagated(model, synthetic_dataset):
    points = SimDataset(synthetic_dataset)[0].points
    bad = np.full((60, 5), np.nan, np.float32)
    bad[::2, 1] = np.inf
    bad[::2, [0, 2, 3, 4]] = 1.0
    mixed = np.concatenate([bad[:30], points, bad[30:]])
    clean, dirty = voxelize(points, model.config.voxel), voxelize(mixed, model.config.voxel)
    np.testing.assert_array_equal(clean.coords, dirty.coords)
    np.testing.assert_array_equal(clean.features, dirty.features)
    (det,) = detect(model, [mixed])
    assert np.all(np.isfinite(det.boxes)) and np.all(np.isfinite(det.scores))


@pytest.mark.parametrize("clouds", [[np.zeros((5, 2))], [np.zeros(5)], np.zeros((5, 4))])
def test_malformed_input_raises_perception_error(model, clouds):
    with pytest.raises(PerceptionError):
        detect(model, clouds)


def test_boxes_come_back_in_each_clouds_own_frame(model, synthetic_dataset):
    """A cloud seen by a lidar mounted elsewhere gives the same boxes, moved by the mounting."""
    frame = SimDataset(synthetic_dataset)[0]
    base = SensorSetup(height_m=1.8)
    (ref,) = detect(model, [frame.points], base)
    # The same points as a lidar 0.3 m higher and turned by 90 degrees would record them.
    moved = SensorSetup(height_m=2.1, yaw_rad=np.pi / 2)
    T = np.linalg.inv(moved.T_model_sensor) @ base.T_model_sensor
    pts = frame.points.copy()
    pts[:, :3] = frame.points[:, :3] @ T[:3, :3].T.astype(np.float32) + T[:3, 3]
    (det,) = detect(model, [pts], moved)
    assert len(det) == len(ref)
    back = boxes_to_model_frame(det.boxes, moved)
    # float32 points moved by a rotation: voxel means differ by ~1e-6 m, so do the outputs.
    np.testing.assert_allclose(back[:, :6], boxes_to_model_frame(ref.boxes, base)[:, :6], atol=1e-3)


def test_setups_must_match_the_clouds(model):
    with pytest.raises(DetectError, match="2 sensor setups for 1 clouds"):
        detect(model, [np.zeros((3, 3))], [SensorSetup(), SensorSetup()])


def test_a_single_array_is_rejected_with_a_hint(model):
    with pytest.raises(DetectError, match="list"):
        detect(model, np.zeros((5, 4)))


def test_detect_leaves_a_training_model_in_training_mode(small_config):
    model = init_model(small_config, seed=0).train()
    detect(model, [np.zeros((0, 3))])
    detect(model, [np.array([[1.0, 1.0, -1.0]])])
    assert model.training


def test_saved_model_loads_with_identical_weights_and_config(model, tmp_path):
    path = save_detector(model, tmp_path / "m.pt", {"note": "test"})
    loaded = load_detector(path, "cpu")
    assert loaded.config == model.config and not loaded.training
    for name, value in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[name], value, atol=0, rtol=0)


def test_loading_a_missing_model_says_how_to_train_one(tmp_path):
    with pytest.raises(ModelFileError, match="robomr perception train"):
        load_detector(tmp_path / "nope.pt", "cpu")


@pytest.mark.parametrize("content", [b"", b"not a torch file", b"PK\x03\x04broken"])
def test_loading_garbage_raises_model_file_error(tmp_path, content):
    (tmp_path / "bad.pt").write_bytes(content)
    with pytest.raises(ModelFileError):
        load_detector(tmp_path / "bad.pt", "cpu")


def _tampered(model: Detector, path, **changes):
    data = {
        "format": "robomr-detector",
        "version": MODEL_VERSION,
        "config": config_to_dict(model.config),
        "state_dict": model.state_dict(),
        "metadata": {},
    }
    data.update(changes)
    torch.save(data, path)
    return path


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"format": "other"}, "format"),
        ({"version": 1}, "version"),  # a model of the lidar-frame era
        ({"config": {"voxel": {}}}, "config"),
        ({"state_dict": {}}, "weights do not fit"),
    ],
)
def test_incompatible_model_files_name_the_problem(model, tmp_path, changes, message):
    with pytest.raises(ModelFileError, match=message):
        load_detector(_tampered(model, tmp_path / "t.pt", **changes), "cpu")


def test_weights_of_another_architecture_are_rejected(model, small_config, tmp_path):
    wider = Detector(
        replace(
            small_config,
            model=ModelConfig(bev_channels=32, backbone_channels=(8, 16, 16), head_channels=16),
        )
    )
    path = _tampered(model, tmp_path / "w.pt", state_dict=wider.state_dict())
    with pytest.raises(ModelFileError, match="weights do not fit"):
        load_detector(path, "cpu")


@pytest.mark.parametrize("device", ["tpu", "cuda:0" if not torch.cuda.is_available() else "x"])
def test_unknown_or_unavailable_devices_are_rejected(model, tmp_path, device):
    path = save_detector(model, tmp_path / "m.pt")
    with pytest.raises(ConfigError, match="device"):
        load_detector(path, device)


def test_the_sparse_backbone_runs_on_one_thread_and_restores_the_callers(model, synthetic_dataset):
    cloud = SimDataset(synthetic_dataset)[0].points
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    seen: list[int] = []
    hook = model.backbone.register_forward_pre_hook(lambda *_: seen.append(torch.get_num_threads()))
    try:
        (one,) = detect(model, [cloud])  # default: the backbone on one thread
        assert torch.get_num_threads() == 2
        (all_threads,) = detect(model, [cloud], sparse_threads=None)
        assert seen == [1, 2]
        # spconv's own scatter (one thread) and the thread-safe index_add_ (two) add the same
        # rows in the same order
        np.testing.assert_allclose(one.boxes, all_threads.boxes, atol=1e-5)
        np.testing.assert_allclose(one.scores, all_threads.scores, atol=1e-6)
        with pytest.raises(DetectError, match="sparse_threads"):
            detect(model, [cloud], sparse_threads=0)
    finally:
        hook.remove()
        torch.set_num_threads(before)


def test_dense_precision_is_chosen_per_call_and_checked_first(model, synthetic_dataset):
    cloud = SimDataset(synthetic_dataset)[0].points
    (plain,) = detect(model, [cloud], precision="float32")
    (bf16,) = detect(model, [cloud], precision="bfloat16")
    (default,) = detect(model, [cloud])  # float32 unless asked: the same boxes on every CPU
    np.testing.assert_array_equal(default.boxes, plain.boxes)
    cached = model.__dict__["_dense_layers_for_inference"]
    assert set(cached) >= {torch.float32, torch.bfloat16}  # both copies ran
    assert bf16.boxes.dtype == plain.boxes.dtype and np.all(np.isfinite(bf16.boxes))
    assert np.all((bf16.scores >= 0) & (bf16.scores <= 1))
    with pytest.raises(PerceptionError, match="dense precision 'half'"):
        detect(model, [cloud], precision="half")  # type: ignore[arg-type]
