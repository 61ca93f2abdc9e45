"""GSCLO: content switching (image or pose) and transmit power per frame, solved by APO.

Paper: GSRMR / GSCLO / APO, arXiv 2504.13697 (INFOCOM 2025 workshop). The formulation and its
reduction to a covering knapsack are in :mod:`planning.gsclo.problem`, the closed-form power
in :mod:`planning.gsclo.power`, APO in :mod:`planning.gsclo.apo`, exact references in
:mod:`planning.gsclo.exact`, baselines in :mod:`planning.gsclo.baselines`, the channel model in
:mod:`planning.gsclo.channel` and the per-frame control law in :mod:`planning.gsclo.scheduler`.
"""

from planning.gsclo.apo import ApoConfig, solve_apo
from planning.gsclo.baselines import (
    never_upload_schedule,
    random_schedule,
    robomr_schedule,
    threshold_schedule,
)
from planning.gsclo.channel import (
    FadingConfig,
    LinkConfig,
    PayloadConfig,
    simulate_channel_gain,
)
from planning.gsclo.exact import solve_exact
from planning.gsclo.problem import GscloProblem, Schedule, evaluate_schedule
from planning.gsclo.scheduler import (
    GscloDecision,
    GscloObservation,
    GscloScheduler,
    GscloState,
    SchedulerConfig,
)

__all__ = [
    "ApoConfig",
    "FadingConfig",
    "GscloDecision",
    "GscloObservation",
    "GscloProblem",
    "GscloScheduler",
    "GscloState",
    "LinkConfig",
    "PayloadConfig",
    "Schedule",
    "SchedulerConfig",
    "evaluate_schedule",
    "never_upload_schedule",
    "random_schedule",
    "robomr_schedule",
    "simulate_channel_gain",
    "solve_apo",
    "solve_exact",
    "threshold_schedule",
]
