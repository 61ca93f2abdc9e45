"""Map matching of sparse GNSS trajectories: LNSP (arXiv 2505.23123) and baselines.

Pure library (numpy, scipy, shapely, pyproj; pyrosm for OSM files): networks
(:mod:`mapmatch.loaders`), bounded shortest-path tables (:mod:`mapmatch.ubodt`), the LED model
(:mod:`mapmatch.led`), matchers (:mod:`mapmatch.lnsp`, :mod:`mapmatch.matcher`), FMM's file
formats (:mod:`mapmatch.fmm_io`), synthetic evaluation data (:mod:`mapmatch.synthetic`) and
route metrics (:mod:`mapmatch.metrics`).
"""

from __future__ import annotations

from mapmatch.baselines import HmmMatcher, NearestMatcher
from mapmatch.led import LedConfig, LedModel, fit_led
from mapmatch.lnsp import LnspConfig, LnspMatcher
from mapmatch.matcher import LatticeMatcher, MatcherError
from mapmatch.network import RoadNetwork
from mapmatch.result import MatchResult, Status, Trajectory
from mapmatch.ubodt import Ubodt, build_ubodt

METHODS = ("lnsp", "hmm", "nearest")


def make_matcher(
    method: str,
    network: RoadNetwork,
    ubodt: Ubodt,
    sigma_m: float,
    radius_m: float,
    k: int = 8,
    led: LedModel | None = None,
    beta_m: float | None = None,
    max_speed_mps: float = 0.0,
) -> LatticeMatcher:
    """A matcher by name with FMM-style settings (GPS error ``sigma_m``, search radius).

    LNSP uses ``led`` when given, else one sigma and radius everywhere; the HMM's beta
    defaults to twice sigma.

    Raises:
        MatcherError: unknown method or settings out of bounds.
    """
    if method == "lnsp":
        model = led if led is not None else LedModel.uniform(sigma_m, radius_m)
        return LnspMatcher(network, ubodt, model, LnspConfig(k=k, max_speed_mps=max_speed_mps))
    if method == "hmm":
        beta = beta_m if beta_m is not None else 2.0 * sigma_m
        return HmmMatcher(network, ubodt, sigma_m, beta, radius_m, k, max_speed_mps)
    if method == "nearest":
        return NearestMatcher(network, ubodt, radius_m)
    raise MatcherError(f"unknown method {method!r}; known: {', '.join(METHODS)}")


__all__ = [
    "METHODS",
    "HmmMatcher",
    "LatticeMatcher",
    "LedConfig",
    "LedModel",
    "LnspConfig",
    "LnspMatcher",
    "MatchResult",
    "MatcherError",
    "NearestMatcher",
    "RoadNetwork",
    "Status",
    "Trajectory",
    "Ubodt",
    "build_ubodt",
    "fit_led",
    "make_matcher",
]
