"""BrownoutServe's control law (table-driven) and the share of requests on the cheap path."""

from __future__ import annotations

import math

import numpy as np
import pytest

from offload.serving.brownout import (
    BrownoutConfig,
    BrownoutError,
    BrownoutObservation,
    BrownoutState,
    PathGate,
    decide,
    violation_rate,
)

INF = math.inf


@pytest.mark.parametrize(
    ("tau", "latencies", "new_tau", "action"),
    [
        (1.0, [0.1] * 10, 1.0, "hold"),  # well below the SLO, already at 1
        (0.5, [0.1] * 10, 0.6, "increase"),  # P90 < 0.8 x SLO: +0.1
        (0.95, [0.1] * 10, 1.0, "increase"),  # capped at 1
        (1.0, [0.1] * 8 + [0.6] * 2, 0.8, "decrease"),  # P90 above the SLO: x 0.8
        (0.5, [0.6] * 10, 0.4, "decrease"),
        (0.5, [0.45] * 10, 0.5, "hold"),  # dead band: 0.8 x SLO <= P90 <= SLO
        (0.5, [0.1] * 5 + [INF] * 5, 0.4, "decrease"),  # rejected requests count as late
        (0.5, [], 0.5, "hold"),  # an idle period holds
        (0.0, [INF], 0.0, "hold"),  # at the lower bound
    ],
)
def test_brownout_law(tau, latencies, new_tau, action) -> None:
    config = BrownoutConfig(slo_s=0.5)
    decision, state = decide(BrownoutObservation(tuple(latencies)), BrownoutState(tau), config)
    assert state.tau == pytest.approx(new_tau) and decision.tau == pytest.approx(new_tau)
    assert decision.action == action


def test_p90_is_the_tail_compared() -> None:
    # 11 of 100 requests above the SLO: the 90th percentile is above it
    config = BrownoutConfig(slo_s=0.5)
    late = BrownoutObservation((0.1,) * 89 + (0.9,) * 11)
    on_time = BrownoutObservation((0.1,) * 91 + (0.9,) * 9)
    assert decide(late, BrownoutState(1.0), config)[0].action == "decrease"
    assert decide(on_time, BrownoutState(1.0), config)[0].action == "hold"


@pytest.mark.parametrize("tau", [1.0, 0.8, 0.55, 0.1, 0.0])
def test_gate_sends_the_share_one_minus_tau_to_the_cheap_path(tau: float) -> None:
    gate = PathGate()
    paths = [gate.path(tau) for _ in range(1000)]
    # error diffusion: the count is exact up to one request
    assert abs(paths.count("brownout") - 1000 * (1 - tau)) <= 1


def test_violation_rate_counts_rejections_as_late() -> None:
    assert violation_rate([0.1, 0.6, INF, 0.2], 0.5) == 0.5
    assert violation_rate([], 0.5) == 0.0


@pytest.mark.parametrize(
    "kwargs", [{"slo_s": 0.0}, {"decrease_factor": 1.0}, {"increase_step": 0.0}, {"tau_min": 2.0}]
)
def test_invalid_settings_are_refused(kwargs) -> None:
    with pytest.raises(BrownoutError):
        BrownoutConfig(**kwargs)


def test_nan_latency_is_refused() -> None:
    with pytest.raises(BrownoutError):
        decide(BrownoutObservation((math.nan,)), BrownoutState(), BrownoutConfig())


@pytest.mark.parametrize(("factor", "new_tau"), [(0.8, 0.8), (0.5, 0.5), (0.25, 0.25)])
def test_decrease_step_is_the_configured_factor(factor: float, new_tau: float) -> None:
    config = BrownoutConfig(slo_s=0.5, decrease_factor=factor)
    decision, state = decide(BrownoutObservation((INF,)), BrownoutState(1.0), config)
    assert decision.action == "decrease" and state.tau == pytest.approx(new_tau)


def test_service_settings_reach_the_control_law() -> None:
    from offload.serving.config import ServeConfig, ServeConfigError

    config = ServeConfig(brownout_period_s=1.0, brownout_decrease_factor=0.5)
    law = config.scheduler_config("detector", has_brownout=True).brownout
    assert law is not None and (law.period_s, law.decrease_factor) == (1.0, 0.5)
    for bad in (0.0, 1.0, -0.2):
        with pytest.raises(ServeConfigError, match="brownout_decrease_factor"):
            ServeConfig(brownout_decrease_factor=bad)


def test_cli_passes_the_brownout_paths_to_the_models() -> None:
    import argparse

    from offload.serving.cli import add_arguments, config_from_args

    p = argparse.ArgumentParser()
    add_arguments(p)
    args = p.parse_args(
        [
            "--brownout-decrease",
            "0.5",
            "--detector-brownout-range-m",
            "16",
            "--render-brownout-scale",
            "4",
        ]
    )
    config = config_from_args(args)
    assert config.brownout_decrease_factor == 0.5
    assert config.model_options["detector"]["brownout_range_m"] == 16.0
    assert config.model_options["gs_render"]["brownout_scale"] == 4


def test_service_and_cli_pass_the_brownout_law_and_the_renderer_map_share() -> None:
    import argparse

    from offload.serving.cli import add_arguments, config_from_args
    from offload.serving.config import ServeConfig, ServeConfigError

    p = argparse.ArgumentParser()
    add_arguments(p)
    config = config_from_args(p.parse_args([]))
    sched = config.scheduler_config("detector", has_brownout=True)
    assert (sched.brownout_law, sched.brownout_headroom) == ("slack", 0.8)  # the defaults
    args = [
        "--brownout-law",
        "paper",
        "--brownout-headroom",
        "0.6",
        "--render-brownout-keep",
        "0.25",
    ]
    config = config_from_args(p.parse_args(args))
    sched = config.scheduler_config("detector", has_brownout=True)
    assert (sched.brownout_law, sched.brownout_headroom) == ("paper", 0.6)
    assert config.model_options["gs_render"]["brownout_keep"] == 0.25
    with pytest.raises(ServeConfigError, match="brownout_law"):
        ServeConfig(brownout_law="pid")
    with pytest.raises(ServeConfigError, match="brownout_headroom"):
        ServeConfig(brownout_headroom=0.0)


@pytest.mark.parametrize("keep", [0.5, 0.25])
def test_decimated_map_keeps_a_share_of_the_gaussians_with_wider_splats(
    small_renderer, keep: float
) -> None:
    import torch

    from offload.serving.models.renderer import decimate

    full = small_renderer.renderer.model
    a, b = decimate(full, keep), decimate(full, keep)
    assert len(a) == int(np.ceil(keep * len(full)))
    torch.testing.assert_close(a.means, b.means)  # deterministic for a seed
    # each kept splat is one of the map's, its two largest axes widened by keep^-1/2 and its
    # smallest (the surface normal) untouched
    idx = [int(torch.nonzero((full.means == m).all(dim=1))[0]) for m in a.means[:20]]
    ratio = torch.sort(a.scales[:20], dim=1).values / torch.sort(full.scales[idx], dim=1).values
    torch.testing.assert_close(ratio[:, 0], torch.ones(20))
    torch.testing.assert_close(ratio[:, 1:], torch.full((20, 2), keep**-0.5))


def test_renderer_brownout_with_a_decimated_map_answers_the_requested_size(
    small_renderer,
) -> None:
    from geometry.transforms import invert_transform
    from gs_render.synthetic import street_camera
    from offload.serving.model import ModelError
    from offload.serving.models.renderer import RenderModel, RenderRequest

    k, viewmat = street_camera(64, 48)
    request = RenderRequest(invert_transform(viewmat), k, 64, 48)
    cheap = RenderModel(
        small_renderer.renderer.model, backend="torch", brownout_scale=1, brownout_keep=0.5
    )
    assert len(cheap.cheap_renderer.model) == len(small_renderer.renderer.model) // 2
    full_image = cheap.run([request], "full")[0]
    image = cheap.run([request], "brownout")[0]
    assert image.shape == full_image.shape == (48, 64, 3)
    assert not np.array_equal(image, full_image)  # a different map: a different picture
    assert cheap.cost(request, "brownout") == cheap.cost(request, "full")  # same pixels
    assert cheap.memory("brownout").fixed_bytes_per_item < cheap.memory("full").fixed_bytes_per_item
    for scale, keep in ((1, 1.0), (2, 0.0), (9, 0.5)):
        with pytest.raises(ModelError):
            RenderModel(
                small_renderer.renderer.model,
                backend="torch",
                brownout_scale=scale,
                brownout_keep=keep,
            )
