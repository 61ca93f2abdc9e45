"""Training: a 2-step smoke run on synthetic frames, outputs, resume, and loss descent."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from perception.augment import AugmentConfig, Sample
from perception.checkpoint import load_detector
from perception.dataset import SimDataset
from perception.train import (
    LOSS_PARTS,
    TrainConfig,
    TrainError,
    compute_loss,
    init_model,
    make_batch,
    train,
)

# Two steps: 4 frames in batches of 2, one epoch.
SMOKE = TrainConfig(
    epochs=1, batch_size=2, seed=7, device="cpu", augment=AugmentConfig(paste_targets=(2, 1, 1, 1))
)


@pytest.fixture(scope="module")
def smoke_run(synthetic_dataset, small_config, tmp_path_factory):
    out = tmp_path_factory.mktemp("train") / "detector.pt"
    result = train(
        synthetic_dataset,
        out,
        SMOKE,
        small_config,
        val_dir=synthetic_dataset,
        command="pytest smoke",
        progress=False,
    )
    return result, out


def test_smoke_run_gives_finite_losses_and_changes_the_weights(smoke_run, small_config):
    result, out = smoke_run
    (losses,) = result.epoch_losses
    assert set(losses) == set(LOSS_PARTS) and all(math.isfinite(v) for v in losses.values())
    trained = load_detector(out, "cpu")
    initial = init_model(small_config, SMOKE.seed)
    for name in ("backbone.net.0.weight", "head.heatmap.1.weight", "head.regression.1.weight"):
        assert not torch.equal(trained.state_dict()[name], initial.state_dict()[name]), name


def test_smoke_run_writes_model_checkpoint_and_provenance(smoke_run, synthetic_dataset):
    result, out = smoke_run
    assert result.model_path == out and out.with_name("detector.last.pt").is_file()
    prov = json.loads(result.provenance_path.read_text())
    assert result.provenance_path == out.with_suffix(".json")
    assert prov["command"] == "pytest smoke" and prov["seed"] == 7 and prov["epochs"] == 1
    assert prov["dataset"]["frames"] == len(SimDataset(synthetic_dataset))
    assert prov["dataset"]["meta"]["format"] == "robomr-sim-dataset"
    assert len(prov["sha256"]) == 64 and prov["parameters"] > 0
    assert set(prov["final_metrics"]) == {"train", "val"}
    assert {e["class"] for e in prov["final_metrics"]["val"]["ap"]} == {
        "car",
        "van",
        "truck",
        "bus",
    }


def test_resume_after_the_last_epoch_reproduces_the_model(
    smoke_run, synthetic_dataset, small_config
):
    result, out = smoke_run
    again = train(synthetic_dataset, out, SMOKE, small_config, resume=True, progress=False)
    assert again.epoch_losses == result.epoch_losses  # nothing left to train: history reused


def test_resume_with_other_settings_is_refused(smoke_run, synthetic_dataset, small_config):
    _, out = smoke_run
    with pytest.raises(TrainError, match="other settings"):
        train(
            synthetic_dataset,
            out,
            replace(SMOKE, learning_rate=1e-4),
            small_config,
            resume=True,
            progress=False,
        )


def test_stop_after_epoch_writes_that_epoch_and_resume_finishes_the_schedule(
    synthetic_dataset, small_config, tmp_path
):
    config = replace(SMOKE, epochs=2)
    out = tmp_path / "detector.pt"
    first = train(synthetic_dataset, out, config, small_config, progress=False, stop_after_epoch=1)
    prov = json.loads(first.provenance_path.read_text())
    assert len(first.epoch_losses) == 1 and (prov["epochs"], prov["epochs_done"]) == (2, 1)
    with pytest.raises(TrainError, match="must be in"):
        train(synthetic_dataset, out, config, small_config, progress=False, stop_after_epoch=3)
    rest = train(synthetic_dataset, out, config, small_config, resume=True, progress=False)
    assert len(rest.epoch_losses) == 2 and rest.epoch_losses[0] == first.epoch_losses[0]
    assert json.loads(rest.provenance_path.read_text())["epochs_done"] == 2
    with pytest.raises(TrainError, match="more than"):
        train(
            synthetic_dataset,
            out,
            config,
            small_config,
            resume=True,
            progress=False,
            stop_after_epoch=1,
        )


def test_repeated_steps_on_one_batch_lower_the_loss(synthetic_dataset, small_config):
    frames = [SimDataset(synthetic_dataset)[i] for i in range(2)]
    batch = make_batch(
        [Sample.from_frame(f) for f in frames], small_config, SMOKE, torch.device("cpu")
    )
    model = init_model(small_config, seed=0).train()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(6):
        parts = compute_loss(model, batch, SMOKE)
        opt.zero_grad()
        parts["loss"].backward()
        opt.step()
        losses.append(float(parts["loss"].detach()))
    assert losses[-1] < 0.8 * losses[0], losses  # fitting one batch: the loss must fall clearly


def test_boxes_with_too_few_points_get_no_target(synthetic_dataset, small_config):
    frame = SimDataset(synthetic_dataset)[0]
    sample = Sample.from_frame(frame)
    strict = replace(SMOKE, min_points_per_box=10**6)
    batch = make_batch([sample], small_config, strict, torch.device("cpu"))
    assert not batch["mask"].any() and float(batch["heatmap"].max()) == 0.0
    assert np.any(frame.num_points > 0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"epochs": 0},
        {"batch_size": 0},
        {"learning_rate": 0.0},
        {"num_threads": 0},
        {"grad_clip_norm": -1.0},
    ],
)
def test_train_config_rejects_out_of_bounds_values(kwargs):
    with pytest.raises(TrainError, match=next(iter(kwargs))):
        TrainConfig(**kwargs)


def test_init_from_starts_at_the_parents_weights_and_records_it(
    smoke_run, synthetic_dataset, small_config, tmp_path
):
    _, parent = smoke_run
    # A vanishing learning rate: the fine-tuned weights stay where the run started.
    config = replace(SMOKE, learning_rate=1e-12, seed=99)
    result = train(
        synthetic_dataset,
        tmp_path / "tuned.pt",
        config,
        small_config,
        init_from=parent,
        progress=False,
    )
    tuned = load_detector(result.model_path, "cpu").state_dict()
    start = load_detector(parent, "cpu").state_dict()
    fresh = init_model(small_config, config.seed).state_dict()
    for name in ("backbone.net.0.weight", "head.heatmap.1.weight", "head.regression.1.weight"):
        assert torch.allclose(tuned[name], start[name], atol=1e-6), name
        assert not torch.allclose(tuned[name], fresh[name], atol=1e-3), name
    prov = json.loads(result.provenance_path.read_text())
    parent_prov = json.loads(parent.with_suffix(".json").read_text())
    assert prov["init_from"]["sha256"] == parent_prov["sha256"]
    assert prov["parent"]["command"] == parent_prov["command"]
    assert prov["parent"]["seed"] == SMOKE.seed and prov["seed"] == 99


def test_init_from_a_different_network_is_refused(
    smoke_run, synthetic_dataset, small_config, tmp_path
):
    _, parent = smoke_run
    other = replace(small_config, model=replace(small_config.model, head_channels=8))
    with pytest.raises(TrainError, match="differs from this run's in"):
        train(synthetic_dataset, tmp_path / "x.pt", SMOKE, other, init_from=parent, progress=False)
