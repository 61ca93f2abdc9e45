"""Uplink channel, link budget and payload model for GSCLO (arXiv 2504.13697).

The robot uploads, per camera frame, either the real image (``I_t`` bits) or only its pose
(``S`` bits) over a wireless uplink. The models here are the ones the GSCLO formulation in
:mod:`planning.gsclo.problem` assumes:

- Rate (Shannon): ``R_t = B log2(1 + p_t |h_t|^2 / sigma^2)`` bits/s, bandwidth ``B`` (Hz),
  noise power ``sigma^2 = N0 * B`` (W) from the noise power spectral density ``N0``.
- Channel power gain ``|h_t|^2 = |f_t|^2 * 10^(-PL(d_t) / 10)``: small-scale block fading
  (one draw per coherence block of frames, seeded) times the log-distance path loss
  ``PL(d) = PL(d0) + 10 n log10(d / d0)`` dB, exponent ``n``. Rayleigh: ``|f_t|^2 ~ Exp(1)``;
  Rician with K-factor ``K``: ``f = sqrt(K / (K + 1)) + sqrt(1 / (K + 1)) CN(0, 1)``, so
  ``E|f|^2 = 1`` and ``K = 0`` is Rayleigh (a line of sight makes deep fades rare).
- Payloads: the image is estimated from its resolution and a JPEG-like compression rate in bits
  per pixel (or given directly); the pose is 7 float32 (position, unit quaternion) plus an int64
  time stamp, 288 bits by default.

Raises:
    ChannelError: a configuration value or an argument is out of range.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

POSE_BITS_DEFAULT = 7 * 32 + 64  # x, y, z, qx, qy, qz, qw as float32, plus an int64 stamp_ns


class ChannelError(ValueError):
    """A channel, link or payload setting or argument is out of range."""


def _check(
    name: str, value: float, low: float, high: float = math.inf, *, low_open: bool = True
) -> None:
    """Raises ChannelError unless ``low < value <= high`` (or ``low <= value`` if not open)."""
    ok_low = value > low if low_open else value >= low
    if not (math.isfinite(value) and ok_low and value <= high):
        bound = f"> {low}" if low_open else f">= {low}"
        limit = bound if high == math.inf else f"{bound} and <= {high}"
        raise ChannelError(f"{name}={value!r} must be finite and {limit}")


@dataclass(frozen=True)
class LinkConfig:
    """The uplink a frame is sent over; the same for every frame of a window.

    Attributes:
        bandwidth_hz: uplink bandwidth B (Hz), > 0.
        noise_psd_dbm_per_hz: noise power spectral density N0 (dBm/Hz), in [-230, -100];
            default: thermal -174 dBm/Hz plus a 9 dB receiver noise figure.
        max_power_w: maximum transmit power P_max (W), > 0 and <= 100.
        deadline_s: per-frame latency deadline tau (s), > 0 and <= 10.
        circuit_power_w: rate-independent power drawn while transmitting (W), >= 0; 0 in the
            paper's formulation (see :mod:`planning.gsclo.power` for what it changes).
    """

    bandwidth_hz: float = 10e6
    noise_psd_dbm_per_hz: float = -165.0
    max_power_w: float = 0.2
    deadline_s: float = 0.1
    circuit_power_w: float = 0.0

    def __post_init__(self) -> None:
        _check("bandwidth_hz", self.bandwidth_hz, 0.0, 1e12)
        _check("noise_psd_dbm_per_hz", self.noise_psd_dbm_per_hz, -230.0, -100.0, low_open=False)
        _check("max_power_w", self.max_power_w, 0.0, 100.0)
        _check("deadline_s", self.deadline_s, 0.0, 10.0)
        _check("circuit_power_w", self.circuit_power_w, 0.0, 100.0, low_open=False)

    @property
    def noise_power_w(self) -> float:
        """Noise power sigma^2 = N0 * B (W)."""
        return 10.0 ** ((self.noise_psd_dbm_per_hz - 30.0) / 10.0) * self.bandwidth_hz


@dataclass(frozen=True)
class FadingConfig:
    """Log-distance path loss and Rayleigh block fading.

    Attributes:
        ref_loss_db: path loss PL(d0) at the reference distance (dB), in [0, 200]; 40 dB is
            free space at 2.4 GHz and 1 m.
        ref_distance_m: reference distance d0 (m), > 0; closer distances are clamped to it.
        path_loss_exponent: n, in [1, 6] (2 free space, about 3 urban street).
        coherence_frames: frames per fading block (one draw each), >= 1.
        rician_k: Rician K-factor (linear, line-of-sight over scattered power), in [0, 1000];
            0 is Rayleigh fading.
    """

    ref_loss_db: float = 40.0
    ref_distance_m: float = 1.0
    path_loss_exponent: float = 3.0
    coherence_frames: int = 1
    rician_k: float = 0.0

    def __post_init__(self) -> None:
        _check("ref_loss_db", self.ref_loss_db, 0.0, 200.0, low_open=False)
        _check("ref_distance_m", self.ref_distance_m, 0.0, 1e4)
        _check("path_loss_exponent", self.path_loss_exponent, 1.0, 6.0, low_open=False)
        _check("rician_k", self.rician_k, 0.0, 1000.0, low_open=False)
        if not isinstance(self.coherence_frames, int) or self.coherence_frames < 1:
            raise ChannelError(f"coherence_frames={self.coherence_frames!r} must be an int >= 1")


@dataclass(frozen=True)
class PayloadConfig:
    """Bits sent per frame.

    Attributes:
        image_width_px: camera image width (px), >= 1.
        image_height_px: camera image height (px), >= 1.
        jpeg_bits_per_pixel: compressed size of a colour image (bits/px), in (0, 24]; about
            1-2 for JPEG at quality 75 on street scenes.
        image_bits_override: if set, the image size I in bits (> pose_bits), used instead of
            the resolution estimate.
        pose_bits: pose-only payload S (bits), >= 1; default 7 float32 + an int64 stamp.
    """

    image_width_px: int = 640
    image_height_px: int = 480
    jpeg_bits_per_pixel: float = 1.5
    image_bits_override: float | None = None
    pose_bits: float = float(POSE_BITS_DEFAULT)

    def __post_init__(self) -> None:
        for name in ("image_width_px", "image_height_px"):
            value = getattr(self, name)
            if not isinstance(value, int) or not 1 <= value <= 100_000:
                raise ChannelError(f"{name}={value!r} must be an int in [1, 100000]")
        _check("jpeg_bits_per_pixel", self.jpeg_bits_per_pixel, 0.0, 24.0)
        _check("pose_bits", self.pose_bits, 1.0, 1e9, low_open=False)
        if self.image_bits_override is not None:
            _check("image_bits_override", self.image_bits_override, self.pose_bits, 1e12)
        elif self.image_bits <= self.pose_bits:
            raise ChannelError(
                f"image estimate {self.image_bits:.0f} bits must exceed pose_bits={self.pose_bits}"
            )

    @property
    def image_bits(self) -> float:
        """Image payload I (bits): the override, else width * height * bits per pixel."""
        if self.image_bits_override is not None:
            return float(self.image_bits_override)
        return float(self.image_width_px * self.image_height_px * self.jpeg_bits_per_pixel)


def path_gain(distance_m: np.ndarray, fading: FadingConfig) -> np.ndarray:
    """Large-scale power gain ``10^(-PL(d)/10)`` [T] (linear, dimensionless) at distances [T].

    Raises:
        ChannelError: a distance is negative or not finite.
    """
    d = np.asarray(distance_m, dtype=np.float64)  # [T]
    if d.ndim != 1 or not np.all(np.isfinite(d)) or np.any(d < 0.0):
        raise ChannelError("distance_m must be a 1-D array of finite values >= 0 m")
    d = np.maximum(d, fading.ref_distance_m)
    loss_db = fading.ref_loss_db + 10.0 * fading.path_loss_exponent * np.log10(
        d / fading.ref_distance_m
    )
    return 10.0 ** (-loss_db / 10.0)


def rayleigh_block_fading(num_frames: int, fading: FadingConfig, seed: int) -> np.ndarray:
    """Small-scale power gains ``|f_t|^2`` [T] (Rayleigh ``Exp(1)``, or Rician when
    ``fading.rician_k > 0``), constant over each coherence block."""
    if num_frames < 1:
        raise ChannelError(f"num_frames={num_frames} must be >= 1")
    rng = np.random.default_rng(seed)
    num_blocks = -(-num_frames // fading.coherence_frames)
    if fading.rician_k > 0.0:
        k = fading.rician_k
        scatter = rng.normal(0.0, math.sqrt(0.5 / (k + 1.0)), size=(num_blocks, 2))
        draws = (math.sqrt(k / (k + 1.0)) + scatter[:, 0]) ** 2 + scatter[:, 1] ** 2
    else:
        draws = rng.exponential(1.0, size=num_blocks)
    # Floored at the smallest normal double: an exact 0 (probability 2^-53) has no finite rate.
    blocks = np.maximum(draws, np.finfo(np.float64).tiny)
    return np.repeat(blocks, fading.coherence_frames)[:num_frames]


def simulate_channel_gain(distance_m: np.ndarray, fading: FadingConfig, seed: int) -> np.ndarray:
    """Channel power gains ``|h_t|^2`` [T] along a drive: path gain times Rayleigh fading."""
    d = np.asarray(distance_m, dtype=np.float64)  # [T]
    return path_gain(d, fading) * rayleigh_block_fading(d.shape[0], fading, seed)
