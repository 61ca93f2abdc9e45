"""CROA: clutter-resilient occlusion avoidance (arXiv 2412.18453) as a pure planning library.

Entry points (docs/croa.md has the formulation and the API):

- ``CroaPlanner(config).plan(observation, state) -> (PlanResult, PlannerState)``
- baselines with the same ``plan``: ``StayPlanner``, ``StraightPlanner``, ``GreedyNbvPlanner``,
  ``ObcaOffsetPlanner``
- ``MadController(config).decide(observation, state) -> (MadDecision, MadState)``
- ``exact_occlusion`` (evaluation), ``run_episode`` (one method on one scene),
  ``plot_plans`` (figure)
"""

from planning.croa.baselines import (
    GreedyNbvPlanner,
    ObcaOffsetPlanner,
    StayPlanner,
    StraightPlanner,
)
from planning.croa.config import (
    BaselineConfig,
    ConfigError,
    CostWeights,
    CroaConfig,
    RobotModel,
    ScpConfig,
    SurrogateConfig,
    ViewpointConfig,
)
from planning.croa.evaluate import EpisodeResult, TargetDetection, geometric_occlusion, run_episode
from planning.croa.mad import (
    MadAction,
    MadConfig,
    MadController,
    MadDecision,
    MadObservation,
    MadState,
)
from planning.croa.occlusion import exact_occlusion
from planning.croa.planner import CroaPlanner
from planning.croa.plotting import plot_plans
from planning.croa.types import (
    CroaInputError,
    Planner,
    PlannerState,
    PlanObservation,
    PlanResult,
    PlanStatus,
    PlanTimings,
    Polytope,
    RobotState,
    Trajectory,
)

__all__ = [
    "BaselineConfig",
    "ConfigError",
    "CostWeights",
    "CroaConfig",
    "CroaInputError",
    "CroaPlanner",
    "EpisodeResult",
    "GreedyNbvPlanner",
    "MadAction",
    "MadConfig",
    "MadController",
    "MadDecision",
    "MadObservation",
    "MadState",
    "ObcaOffsetPlanner",
    "PlanObservation",
    "PlanResult",
    "PlanStatus",
    "PlanTimings",
    "Planner",
    "PlannerState",
    "Polytope",
    "RobotModel",
    "RobotState",
    "ScpConfig",
    "StayPlanner",
    "StraightPlanner",
    "SurrogateConfig",
    "TargetDetection",
    "Trajectory",
    "ViewpointConfig",
    "exact_occlusion",
    "geometric_occlusion",
    "plot_plans",
    "run_episode",
]
