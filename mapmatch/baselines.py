"""The simple baselines, in the engine's interface (:mod:`mapmatch.matcher`).

- :class:`HmmMatcher`: Newson & Krumm (2009), one global GNSS sigma and transition scale beta:
  emission N(d; 0, sigma), transition exp(-|route - great-circle| / beta) / beta.
- :class:`NearestMatcher`: each fix snapped to its nearest edge, consecutive edges joined by
  shortest paths.
"""

from __future__ import annotations

import numpy as np

from mapmatch.lattice import Batch
from mapmatch.matcher import LatticeMatcher, check_positive
from mapmatch.network import RoadNetwork
from mapmatch.ubodt import Ubodt


class HmmMatcher(LatticeMatcher):
    """Newson & Krumm (2009) HMM with one global sigma and beta (the baseline)."""

    name = "hmm"

    def __init__(
        self,
        network: RoadNetwork,
        ubodt: Ubodt,
        sigma_m: float = 20.0,
        beta_m: float = 50.0,
        radius_m: float = 100.0,
        k: int = 8,
        max_speed_mps: float = 0.0,
        uturn_penalty: float = 0.0,
    ):
        super().__init__(network, ubodt, k)
        check_positive("uturn_penalty", uturn_penalty, allow_zero=True)
        self.uturn_penalty = uturn_penalty
        for n, v in (("sigma_m", sigma_m), ("beta_m", beta_m), ("radius_m", radius_m)):
            check_positive(n, v)
        check_positive("max_speed_mps", max_speed_mps, allow_zero=True)
        self.sigma_m, self.beta_m, self.radius_m = sigma_m, beta_m, radius_m
        self.max_speed_mps = max_speed_mps

    def point_model(self, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = len(xy)
        return np.full(n, self.sigma_m), np.full(n, self.radius_m)

    def score(self, batch: Batch, route: np.ndarray, gc: np.ndarray) -> tuple:
        em = np.where(batch.cand.valid, -0.5 * (batch.cand.dist / self.sigma_m) ** 2, -np.inf)
        tr = -np.abs(route - gc[:, :, None, None]) / self.beta_m
        if self.max_speed_mps > 0:
            dt = np.diff(batch.t_s, axis=1)[:, :, None, None]
            tr = np.where(route > self.max_speed_mps * np.where(dt > 0, dt, np.inf), -np.inf, tr)
        return em, np.where(np.isfinite(route), tr, -np.inf)


class NearestMatcher(HmmMatcher):
    """Nearest-edge snapping joined by shortest paths (k = 1)."""

    name = "nearest"

    def __init__(self, network: RoadNetwork, ubodt: Ubodt, radius_m: float = 100.0):
        super().__init__(network, ubodt, sigma_m=1.0, beta_m=1.0, radius_m=radius_m, k=1)
