"""BrownoutServe's brownout control law (Hu et al., arXiv 2507.17133), as a pure function.

Formulation (the paper's dynamic brownout, as in the authors' follow-up code): a dial
tau in [tau_min, 1]. Every ``period_s`` the P90 latency of the requests answered in that period
(requests rejected or answered late count as infinitely late) is compared with the SLO:

    P90 > SLO                    ->  tau <- max(tau_min, decrease_factor x tau)   (0.8)
    P90 < low_fraction x SLO     ->  tau <- min(1, tau + increase_step)            (0.8, 0.1)
    otherwise                    ->  tau unchanged (the dead band between 0.8 SLO and SLO)

A period without any request holds tau. At tau < 1 a share 1 - tau of the requests takes the
model's cheaper path (for MoE in the paper: the united expert; here the detector's shorter range
or the renderer's lower resolution). :class:`PathGate` picks which requests, deterministically:
an error-diffusion counter sends exactly floor(k (1 - tau)) of k requests at constant tau.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from offload.serving.model import Path


class BrownoutError(ValueError):
    """A brownout setting or observation is invalid."""


@dataclass(frozen=True)
class BrownoutConfig:
    """Control-law settings (the paper's values as defaults)."""

    slo_s: float = 0.5  # latency objective (s), > 0
    period_s: float = 5.0  # control period (s), > 0
    decrease_factor: float = 0.8  # multiplicative decrease of tau on a violation, in (0, 1)
    increase_step: float = 0.1  # additive increase of tau when well below the SLO, in (0, 1]
    low_fraction: float = 0.8  # "well below" means P90 < low_fraction x SLO, in (0, 1]
    tau_min: float = 0.0  # smallest tau, in [0, 1]
    percentile: float = 90.0  # the latency percentile compared with the SLO, in (0, 100]

    def __post_init__(self) -> None:
        checks = {
            "slo_s": self.slo_s > 0,
            "period_s": self.period_s > 0,
            "decrease_factor": 0 < self.decrease_factor < 1,
            "increase_step": 0 < self.increase_step <= 1,
            "low_fraction": 0 < self.low_fraction <= 1,
            "tau_min": 0 <= self.tau_min <= 1,
            "percentile": 0 < self.percentile <= 100,
        }
        for name, ok in checks.items():
            if not ok:
                raise BrownoutError(f"{name}={getattr(self, name)} is out of its bounds")


@dataclass(frozen=True)
class BrownoutState:
    tau: float = 1.0  # share of requests on the full path


@dataclass(frozen=True)
class BrownoutObservation:
    """Latencies (s) of the requests answered in the last period; inf for rejected/late ones."""

    latencies_s: tuple[float, ...]


@dataclass(frozen=True)
class BrownoutDecision:
    tau: float
    action: Literal["decrease", "increase", "hold"]
    tail_latency_s: float | None  # the observed percentile (None: no request this period)


def decide(
    observation: BrownoutObservation, state: BrownoutState, config: BrownoutConfig
) -> tuple[BrownoutDecision, BrownoutState]:
    """One control period of the brownout law (see the module docstring)."""
    if not observation.latencies_s:
        return BrownoutDecision(state.tau, "hold", None), state
    lat = np.asarray(observation.latencies_s, dtype=np.float64)
    if np.any(np.isnan(lat)) or np.any(lat < 0):
        raise BrownoutError("latencies must be >= 0 (inf for rejected requests), not NaN")
    # "higher" keeps an infinite sample infinite instead of interpolating to NaN
    tail = float(np.percentile(lat, config.percentile, method="higher"))
    if tail > config.slo_s:
        tau, action = max(config.tau_min, state.tau * config.decrease_factor), "decrease"
    elif tail < config.low_fraction * config.slo_s:
        tau, action = min(1.0, state.tau + config.increase_step), "increase"
    else:
        tau, action = state.tau, "hold"
    if math.isclose(tau, state.tau) and action != "hold":
        action = "hold"  # at a bound: nothing changes
    return BrownoutDecision(tau, action, tail), replace(state, tau=tau)


class PathGate:
    """Assigns paths so that a share 1 - tau of requests takes the brownout path."""

    def __init__(self) -> None:
        self._debt = 0.0

    def path(self, tau: float) -> Path:
        """The path of the next request at dial ``tau`` in [0, 1]."""
        self._debt += 1.0 - min(max(tau, 0.0), 1.0)
        if self._debt >= 1.0 - 1e-9:
            self._debt -= 1.0
            return "brownout"
        return "full"


def violation_rate(latencies_s: Sequence[float], slo_s: float) -> float:
    """Share of requests slower than ``slo_s`` (rejected ones count as slower); 0 if none."""
    lat = np.asarray(latencies_s, dtype=np.float64)
    return float(np.mean(lat > slo_s)) if len(lat) else 0.0
