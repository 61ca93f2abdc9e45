"""Closed-form optimal transmit power of one frame for GSCLO (arXiv 2504.13697).

For a frame of ``D`` bits sent at power ``p`` over a channel with gain-to-noise ratio
``g = |h|^2 / sigma^2`` (1/W) and bandwidth ``B``, the rate is ``R(p) = B log2(1 + p g)``, the
transmit time ``D / R(p)`` and the energy

    e(p) = (p + P_c) D / R(p),      subject to  D / R(p) <= tau,  0 <= p <= P_max,

with ``P_c`` a rate-independent circuit power (0 in the paper's formulation).

Deadline. ``D / R(p) <= tau``  <=>  ``p >= p_dl = (2^(D / (B tau)) - 1) / g``; the frame can meet
its deadline iff ``p_dl <= P_max``.

Paper's case, ``P_c = 0``. With ``u = p g``, ``e(p) = (D ln 2 / (B g)) * u / ln(1 + u)``.
``ln(1 + u)`` is concave with value 0 at 0, so ``ln(1 + u) / u`` is decreasing and ``e`` is
strictly increasing in ``p``: the optimal power is the smallest feasible one,

    p* = p_dl,   D / R(p*) = tau (the deadline holds with equality),   e* = tau p_dl.

General case, ``P_c > 0``. ``e(p) / D`` is a positive affine function over a positive concave
one, hence strictly quasi-convex, with the unconstrained minimiser (the "energy-efficient"
power) from ``d/dp [(p + P_c) / ln(1 + p g)] = 0``  <=>  ``y (ln y - 1) = P_c g - 1`` with
``y = 1 + p g``, i.e.

    p_ee = (exp(1 + W0((P_c g - 1) / e)) - 1) / g       (W0: principal Lambert W branch),

and the constrained optimum is the projection ``p* = min(max(p_dl, p_ee), P_max)``; the deadline
is then met with slack whenever ``p_ee > p_dl``. ``P_c = 0`` gives ``p_ee = 0`` and the case above.

Where this holds: the energy is separable across frames once the contents ``x_t`` are fixed
(no power or energy budget shared by frames, one frame per slot), so each frame's optimal
energy for either content is this closed form. A budget coupling frames would need a joint
convex power problem; the formulation here has none.

Infeasible frames (``p_dl > P_max``) are sent anyway at ``P_max`` and arrive late: the cost
reports ``meets_deadline = False`` and the energy ``(P_max + P_c) D / R(P_max)``.

Raises:
    PowerError: non-positive or non-finite bits or gains, or mismatched shapes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import lambertw

from planning.gsclo.channel import LinkConfig

LN2 = math.log(2.0)


class PowerError(ValueError):
    """Bits or gain-to-noise ratios are not positive and finite, or their shapes differ."""


@dataclass(frozen=True)
class FrameCost:
    """Optimal transmission of one payload per frame.

    Attributes:
        power_w: optimal transmit power p* (W) [T]; P_max for frames that miss the deadline.
        energy_j: (p* + P_c) D / R(p*) (J) [T].
        latency_s: transmit time D / R(p*) (s) [T].
        meets_deadline: p_dl <= P_max [T] bool.
    """

    power_w: np.ndarray  # [T]
    energy_j: np.ndarray  # [T]
    latency_s: np.ndarray  # [T]
    meets_deadline: np.ndarray  # [T] bool


def rate_bps(
    power_w: np.ndarray, gain_to_noise_per_w: np.ndarray, bandwidth_hz: float
) -> np.ndarray:
    """Shannon rate ``B log2(1 + p g)`` (bits/s), elementwise."""
    return bandwidth_hz * np.log1p(power_w * gain_to_noise_per_w) / LN2


def deadline_power_w(
    bits: np.ndarray,  # [T]
    gain_to_noise_per_w: np.ndarray,  # [T]
    bandwidth_hz: float,
    deadline_s: float,
) -> np.ndarray:
    """Smallest power meeting the deadline, ``(2^(D / (B tau)) - 1) / g`` (W) [T]; inf if huge."""
    with np.errstate(over="ignore"):
        return np.expm1(bits * LN2 / (bandwidth_hz * deadline_s)) / gain_to_noise_per_w


def efficient_power_w(gain_to_noise_per_w: np.ndarray, circuit_power_w: float) -> np.ndarray:
    """Unconstrained minimiser of ``(p + P_c) / log2(1 + p g)`` (W) [T]; 0 when ``P_c = 0``."""
    g = np.asarray(gain_to_noise_per_w, dtype=np.float64)
    if circuit_power_w == 0.0:
        return np.zeros_like(g)
    w0 = lambertw((circuit_power_w * g - 1.0) / math.e, k=0).real
    return np.expm1(1.0 + w0) / g


def frame_cost(
    bits: np.ndarray,  # [T]
    gain_to_noise_per_w: np.ndarray,  # [T]
    link: LinkConfig,
) -> FrameCost:
    """Optimal power, energy and latency of sending ``bits[t]`` in frame t.

    Raises:
        PowerError: bits or gains not positive and finite, or shapes differ.
    """
    d = np.asarray(bits, dtype=np.float64)
    g = np.asarray(gain_to_noise_per_w, dtype=np.float64)
    if d.shape != g.shape or d.ndim != 1:
        raise PowerError(f"bits {d.shape} and gain_to_noise_per_w {g.shape} must be equal 1-D")
    for name, arr in (("bits", d), ("gain_to_noise_per_w", g)):
        if not np.all(np.isfinite(arr) & (arr > 0.0)):
            raise PowerError(f"{name} must be finite and > 0 in every frame")
    p_dl = deadline_power_w(d, g, link.bandwidth_hz, link.deadline_s)
    meets = p_dl <= link.max_power_w
    p_ee = efficient_power_w(g, link.circuit_power_w)
    power = np.minimum(np.maximum(p_dl, p_ee), link.max_power_w)
    latency = d / rate_bps(power, g, link.bandwidth_hz)
    energy = (power + link.circuit_power_w) * latency
    return FrameCost(power_w=power, energy_j=energy, latency_s=latency, meets_deadline=meets)
