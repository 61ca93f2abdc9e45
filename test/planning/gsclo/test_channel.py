"""Channel, link and payload models of planning.gsclo.channel."""

from __future__ import annotations

import numpy as np
import pytest

from planning.gsclo.channel import (
    POSE_BITS_DEFAULT,
    ChannelError,
    FadingConfig,
    LinkConfig,
    PayloadConfig,
    path_gain,
    rayleigh_block_fading,
    simulate_channel_gain,
)


@pytest.mark.parametrize(
    ("cls", "field", "value"),
    [
        (LinkConfig, "bandwidth_hz", 0.0),
        (LinkConfig, "bandwidth_hz", float("nan")),
        (LinkConfig, "noise_psd_dbm_per_hz", -50.0),
        (LinkConfig, "max_power_w", -1.0),
        (LinkConfig, "max_power_w", 1e3),
        (LinkConfig, "deadline_s", 0.0),
        (LinkConfig, "circuit_power_w", -0.1),
        (FadingConfig, "ref_loss_db", -1.0),
        (FadingConfig, "ref_distance_m", 0.0),
        (FadingConfig, "path_loss_exponent", 0.5),
        (FadingConfig, "coherence_frames", 0),
        (PayloadConfig, "image_width_px", 0),
        (PayloadConfig, "image_height_px", 2.5),
        (PayloadConfig, "jpeg_bits_per_pixel", 0.0),
        (PayloadConfig, "pose_bits", 0.5),
        (PayloadConfig, "image_bits_override", 100.0),  # below the 288 pose bits
    ],
)
def test_bad_config_value_raises_an_error_naming_the_field(cls, field, value):
    with pytest.raises(ChannelError, match=field):
        cls(**{field: value})


def test_image_estimate_too_small_for_the_pose_is_rejected():
    with pytest.raises(ChannelError, match="pose_bits"):
        PayloadConfig(image_width_px=1, image_height_px=1, jpeg_bits_per_pixel=1.0)


@pytest.mark.parametrize(
    ("psd_dbm_per_hz", "bandwidth_hz", "expected_w"),
    [(-174.0, 1.0, 10 ** (-20.4)), (-165.0, 10e6, 10 ** (-12.5))],  # -95 dBm = 10^-12.5 W
)
def test_noise_power_is_psd_times_bandwidth(psd_dbm_per_hz, bandwidth_hz, expected_w):
    link = LinkConfig(bandwidth_hz=bandwidth_hz, noise_psd_dbm_per_hz=psd_dbm_per_hz)
    np.testing.assert_allclose(link.noise_power_w, expected_w, rtol=1e-12)  # float rounding


@pytest.mark.parametrize("exponent", [2.0, 3.0, 4.5])
def test_path_gain_follows_the_log_distance_law(exponent):
    fading = FadingConfig(ref_loss_db=40.0, ref_distance_m=1.0, path_loss_exponent=exponent)
    gain = path_gain(np.array([0.2, 1.0, 10.0, 100.0]), fading)
    expected_db = [-40.0, -40.0, -40.0 - 10 * exponent, -40.0 - 20 * exponent]  # 0.2 m clamps
    np.testing.assert_allclose(10 * np.log10(gain), expected_db, rtol=1e-12)


def test_negative_distance_is_rejected():
    with pytest.raises(ChannelError, match="distance_m"):
        path_gain(np.array([1.0, -1.0]), FadingConfig())


def test_fading_is_reproducible_per_seed_and_differs_across_seeds():
    fading = FadingConfig()
    a, b = rayleigh_block_fading(50, fading, 7), rayleigh_block_fading(50, fading, 7)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, rayleigh_block_fading(50, fading, 8))


@pytest.mark.parametrize("coherence_frames", [1, 4, 7])
def test_fading_is_constant_within_each_coherence_block(coherence_frames):
    h2 = rayleigh_block_fading(30, FadingConfig(coherence_frames=coherence_frames), 0)
    assert h2.shape == (30,)
    for start in range(0, 30, coherence_frames):
        block = h2[start : start + coherence_frames]
        assert np.all(block == block[0])
    assert np.unique(h2).shape[0] == -(-30 // coherence_frames)


def test_fading_power_is_unit_mean_exponential():
    h2 = rayleigh_block_fading(200_000, FadingConfig(), 1)
    # Exp(1): mean 1 and std 1, so the sample mean's std is 1/sqrt(2e5) = 0.0022; 0.01 is 4.5
    # sigma. P(|h|^2 <= ln 2) = 1/2, binomial std 0.0011; 0.005 is 4.5 sigma.
    assert abs(h2.mean() - 1.0) < 0.01
    assert abs(np.mean(h2 <= np.log(2.0)) - 0.5) < 0.005


def test_channel_gain_is_path_gain_times_fading():
    fading = FadingConfig()
    d = np.linspace(5.0, 300.0, 40)
    np.testing.assert_array_equal(
        simulate_channel_gain(d, fading, 3),
        path_gain(d, fading) * rayleigh_block_fading(40, fading, 3),
    )


def test_payload_sizes_follow_resolution_or_override():
    assert PayloadConfig().pose_bits == POSE_BITS_DEFAULT == 288
    est = PayloadConfig(image_width_px=1280, image_height_px=720, jpeg_bits_per_pixel=2.0)
    assert est.image_bits == 1280 * 720 * 2.0
    assert PayloadConfig(image_bits_override=1e5).image_bits == 1e5


# P(|f|^2 < 0.1): Rayleigh 1 - e^-0.1; Rician from the noncentral chi-square with 2 degrees
# of freedom, non-centrality 2K, scaled by 1 / (2 (K + 1)) (scipy.stats.ncx2.cdf).
@pytest.mark.parametrize(
    ("k_factor", "deep_fade"), [(0.0, 0.09516), (1.0, 0.07335), (10.0, 0.00074)]
)
def test_rician_fading_has_unit_mean_and_the_right_deep_fade_probability(k_factor, deep_fade):
    draws = rayleigh_block_fading(200_000, FadingConfig(rician_k=k_factor), seed=1)
    # 200k draws of a variance <= 1 variable: the mean's standard error is <= 0.0023
    assert float(draws.mean()) == pytest.approx(1.0, abs=0.01)
    # binomial standard error of a probability p over 200k draws: <= 6.6e-4 (4.5 sigma)
    assert float(np.mean(draws < 0.1)) == pytest.approx(deep_fade, abs=0.003)
