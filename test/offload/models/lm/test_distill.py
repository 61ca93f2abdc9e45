"""Distilled united experts: the fit's target is the layer's brownout error, the fit lowers it on
tokens it never saw, the model serves the experts, and the file round-trips with its checks."""

from __future__ import annotations

import logging

import pytest
import torch

from offload.models.lm.checkpoint import (
    CheckpointError,
    load_model,
    load_united,
    save_model,
    save_united,
    sha256_file,
    united_path,
)
from offload.models.lm.config import variant_config
from offload.models.lm.distill import DistillConfig, distill_united, fit_united, routed_target
from offload.models.lm.model import MoELM
from offload.models.lm.united import BrownoutError, apply_brownout, calibrate_usage

FAST = DistillConfig(windows=8, steps=150, batch_tokens=256, learning_rate=1e-2)


def trained_like(tiny, seed: int = 0) -> MoELM:
    torch.manual_seed(seed)
    model = MoELM(variant_config("mixsga", tiny)).eval()
    calibrate_usage(model, torch.randint(0, tiny.vocab_size, (4, 32)))
    return model


def windows(tiny, n: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, tiny.vocab_size, (n, 33), generator=gen)


def brownout_error(moe, x, united, slots) -> float:
    """Mean squared difference of the layer's output with ``united`` in its slot and without."""
    with torch.no_grad():
        moe.set_slots(None, None)
        exact, _ = moe(x)
        moe.set_slots(slots, united)
        browned, _ = moe(x)
        moe.set_slots(None, None)
    return float(((browned - exact) ** 2).sum(dim=-1).mean())


def test_the_fitted_loss_is_the_layers_output_error_under_brownout(tiny):
    """routed_target's objective, summed over every token, is exactly what the united expert
    changes in the layer's output (tokens routed to no merged expert contribute nothing)."""
    model = trained_like(tiny)
    moe = model.blocks[0].moe
    apply_brownout([moe], 0.5, "aligned")
    slots, united = moe._slot_of_expert, moe._united
    merged = (slots == moe.n_experts).nonzero(as_tuple=True)[0].tolist()
    x = torch.randn(200, tiny.d_model, generator=torch.Generator().manual_seed(1))
    xs, s, target = routed_target(moe, x, merged)
    gate, up, down = united
    with torch.no_grad():
        pred = s[:, None] * ((torch.nn.functional.silu(xs @ gate) * (xs @ up)) @ down)
    objective = float(((pred - target) ** 2).sum()) / len(x)
    assert 0 < len(xs) < len(x)
    assert objective == pytest.approx(brownout_error(moe, x, united, slots), rel=1e-4)


@pytest.mark.parametrize("tau", [0.5, 0.0])
def test_the_fit_lowers_the_output_error_on_held_out_tokens(tiny, tau):
    model = trained_like(tiny)
    moe = model.blocks[1].moe
    apply_brownout([moe], tau, "aligned")
    slots, aligned = moe._slot_of_expert, moe._united
    merged = (slots == moe.n_experts).nonzero(as_tuple=True)[0].tolist()
    fit_x = torch.randn(10000, tiny.d_model, generator=torch.Generator().manual_seed(2))
    held_out = torch.randn(500, tiny.d_model, generator=torch.Generator().manual_seed(3))
    fitted, report = fit_united(moe, fit_x, merged, aligned, FAST, torch.Generator())
    # random experts are the hardest case (nothing shared for one expert's width to keep); the
    # trained model's fit removes 80-90% of the error (docs/lm.md)
    assert report.mse_distilled < 0.75 * report.mse_aligned
    assert brownout_error(moe, held_out, fitted, slots) < 0.85 * brownout_error(
        moe, held_out, aligned, slots
    )


def test_one_merged_expert_stays_that_expert(tiny):
    """United alone, an expert's aligned merge is itself: the fit starts at zero error and keeps
    it."""
    model = trained_like(tiny)
    moe = model.blocks[0].moe
    apply_brownout([moe], 0.75, "aligned")  # 1 of 4 merged
    merged = (moe._slot_of_expert == moe.n_experts).nonzero(as_tuple=True)[0].tolist()
    x = torch.randn(300, tiny.d_model)
    fitted, report = fit_united(moe, x, merged, moe._united, FAST, torch.Generator())
    assert len(merged) == 1 and report.mse_aligned < 1e-10 and report.mse_distilled < 1e-8
    assert torch.allclose(fitted[2], moe.w_down[merged[0]], atol=1e-4)


def test_a_diverged_fit_keeps_the_aligned_merge(tiny):
    model = trained_like(tiny)
    moe = model.blocks[0].moe
    apply_brownout([moe], 0.0, "aligned")
    merged = list(range(moe.n_experts))
    wild = DistillConfig(steps=30, batch_tokens=64, learning_rate=1.0)
    x = torch.randn(400, tiny.d_model, generator=torch.Generator().manual_seed(4))
    fitted, report = fit_united(moe, x, merged, moe._united, wild, torch.Generator())
    # learning rate 1 diverges on these inputs (seeded): the start is returned, not the wreck
    assert report.mse_distilled == report.mse_aligned
    assert all(torch.equal(a, b) for a, b in zip(fitted, moe._united, strict=True))


def test_distilled_brownout_stays_closer_to_the_full_model(tiny):
    """Whole model, windows never fitted on: logits at each level are nearer the full model's
    with the distilled united experts than with the aligned merge; tau = 1 is untouched."""
    model = trained_like(tiny)
    tokens = windows(tiny, 6, seed=9)[:, :-1]
    with torch.no_grad():
        full, _ = model(tokens)
    distilled = distill_united(model, windows(tiny, FAST.windows, seed=4), FAST)
    assert sorted(distilled.experts) == [1, 2, 3, 4]
    with torch.no_grad():
        again, _ = model(tokens)
    assert torch.equal(full, again), "distilling leaves the model at tau = 1"
    model.set_distilled(distilled.experts)
    assert model.merge_method == "distilled"
    for tau in (0.5, 0.0):
        errors = {}
        for method in ("aligned", "distilled"):
            model.set_brownout(tau, method)
            with torch.no_grad():
                errors[method] = float(((model(tokens)[0] - full) ** 2).mean())
        assert errors["distilled"] < errors["aligned"], (tau, errors)
    model.set_brownout(1.0)
    with torch.no_grad():
        assert torch.equal(model(tokens)[0], full)


def test_distilled_without_experts_and_bad_settings_are_clear_errors(tiny):
    model = trained_like(tiny)
    assert model.merge_method == "aligned"
    with pytest.raises(BrownoutError, match="robomr lm unite"):
        model.set_brownout(0.5, "distilled")
    model.set_brownout(1.0, "distilled")  # nothing merged: nothing needed
    d, f = tiny.d_model, tiny.expert_hidden
    wrong = [(torch.zeros(d, f), torch.zeros(d, f), torch.zeros(d, d))] * tiny.n_layers
    with pytest.raises(BrownoutError, match="shapes"):
        model.set_distilled({2: wrong})
    with pytest.raises(BrownoutError, match="do not fit"):
        model.set_distilled({9: wrong})
    with pytest.raises(BrownoutError, match="steps"):
        DistillConfig(steps=0)
    with pytest.raises(BrownoutError, match="learning_rate"):
        DistillConfig(learning_rate=float("nan"))
    with pytest.raises(BrownoutError, match="seed"):
        DistillConfig(seed=-1)
    with pytest.raises(BrownoutError, match="merged counts"):
        distill_united(model, windows(tiny, 2, 0), FAST, merged_counts=[0])


def test_united_file_round_trips_and_loads_with_its_model(tiny, tmp_path, caplog):
    model = trained_like(tiny)
    path = save_model(model, tmp_path / "m.safetensors")
    experts = distill_united(model, windows(tiny, 4, 5), DistillConfig(steps=2), [2, 4]).experts
    out = save_united(experts, united_path(path), sha256_file(path))
    assert out.name == "m.united.safetensors"
    back = load_united(out, sha256_file(path))
    assert sorted(back) == [2, 4] and len(back[2]) == tiny.n_layers
    assert torch.allclose(back[4][1][2], experts[4][1][2], atol=1e-2)  # float16 storage
    loaded = load_model(path)  # picks the file up; only levels 2 and 4: aligned by default
    assert sorted(loaded._distilled) == [2, 4] and loaded.merge_method == "aligned"
    loaded.set_brownout(0.5, "distilled")
    # a stale file (another model's) is skipped with a warning: the aligned merge is served
    save_united(experts, united_path(path), "0" * 64)
    with caplog.at_level(logging.WARNING):
        stale = load_model(path)
    assert not stale._distilled and "another model file" in caplog.text
    (tmp_path / "x.safetensors").write_bytes(path.read_bytes())
    with pytest.raises(CheckpointError, match="not a united-experts file"):
        load_united(tmp_path / "x.safetensors")
