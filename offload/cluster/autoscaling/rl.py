"""A learned autoscaler: a deep-RL (PPO) policy over a small set of sizing actions.

SealOS+ (arXiv 2505.23258) schedules resources with deep RL; here the agent is trained by PPO
(``rl_train``) in the cluster simulation on synthetic traces (diurnal, bursty, step with random
levels, shapes and start-up delays), never on the trace it is evaluated on.

- **Observation** (10 features, from the interface's Observation and the policy's memory):
  offered load over the last 10 s and 30 s per active replica, the load trend, the share of
  active replicas still starting, active / max replicas, mean concurrency per active replica,
  the last interval's SLO-violation share, mean CPU utilisation of the serving pods, start-up
  delay / 60 s, and the M/G/c size for the current rate (``queueing``) per active replica.
- **Actions** (discrete): ask for ``ceil(m x L)`` replicas with a headroom ``m`` in
  ``HEADROOMS`` over the offered load L = rate x service time / capacity factor plus the queued
  backlog; as in the other policies a scale-down waits ``scale_down_delay_s`` (the highest
  answer of that window is kept), so the agent learns the headroom, not the hysteresis.
- **Reward** per decision period: ``r = -(w_v v + w_c n / L_mean)`` with v the share of the
  period's requests that missed the SLO, n the replicas that existed (starting and draining
  ones included: they cost the same) and L_mean the episode's mean offered load (so the cost
  term is the over-provisioning ratio); defaults w_v = 10 (1% more violations weighs as
  much as 10% more replicas), w_c = 1.
- **Network**: an MLP (10 -> 64 -> 64) with a policy head (softmax over actions) and a value
  head. The policy acts greedily (argmax) when evaluated and samples (seeded by the step) when
  trained.

Taxonomy (arXiv 2507.17128): learned (reinforcement learning) horizontal scaling, reactive with
learned anticipation; objective: SLO violations against replica cost (the reward above);
behaviour model: learned from simulated experience (model-free).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from offload.cluster.autoscaling.interface import AutoscalingError, Bounds, Observation
from offload.cluster.autoscaling.queueing import (
    QueueingConfig,
    hold_down,
    push_arrivals,
    size_for,
    windowed_rate,
)

HEADROOMS = (1.0, 1.15, 1.3, 1.5, 1.75, 2.0, 2.5)
N_ACTIONS = len(HEADROOMS)
N_FEATURES = 10
DEFAULT_WEIGHTS = Path(__file__).resolve().parents[3] / "models" / "autoscaler_ppo.pt"


def make_net(hidden: int = 64) -> Any:
    import torch

    class ActorCritic(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = torch.nn.Sequential(
                torch.nn.Linear(N_FEATURES, hidden),
                torch.nn.Tanh(),
                torch.nn.Linear(hidden, hidden),
                torch.nn.Tanh(),
            )
            self.pi = torch.nn.Linear(hidden, N_ACTIONS)
            self.v = torch.nn.Linear(hidden, 1)

        def forward(self, x: Any) -> tuple[Any, Any]:  # x: [B, N_FEATURES]
            h = self.body(x)
            return self.pi(h), self.v(h).squeeze(-1)  # [B, N_ACTIONS], [B]

    return ActorCritic()


@dataclass(frozen=True)
class RlState:
    """Memory of the RL policy, and what the trainer reads back after each decision."""

    arrivals: tuple[tuple[float, float, int], ...] = ()
    delay: tuple[tuple[float, int], ...] = ()
    step: int = 0
    load_30s_ago: float = math.nan
    loads: tuple[float, ...] = ()
    features: tuple[float, ...] = ()
    action: int = 0
    logp: float = 0.0
    value: float = 0.0
    # outcome of the interval that ended at this decision (for the reward of the previous one)
    violations: int = 0
    arrivals_in_interval: int = 0
    replicas_existing: int = 0
    offered_load: float = 0.0


@dataclass(frozen=True)
class RlConfig:
    """Attributes:
    bounds: replica limits.
    period_s: decision period (s).
    scale_down_delay_s: keep the highest answer of this window before scaling down (s).
    greedy: act by argmax (evaluation) or sample (training).
    seed: sampling seed (training).
    """

    bounds: Bounds = field(default_factory=Bounds)
    period_s: float = 5.0
    scale_down_delay_s: float = 30.0
    greedy: bool = True
    seed: int = 0


def featurize(obs: Observation, state: RlState, bounds: Bounds) -> tuple[np.ndarray, RlState]:
    """The 10 features (see the module docstring) and the state with the rate memory added."""
    arrivals = push_arrivals(state, obs, 30.0 + obs.interval_s)  # type: ignore[arg-type]
    s = obs.service_time_s / obs.capacity_factor
    load10 = windowed_rate(arrivals, obs.t_s, 10.0) * s
    load30 = windowed_rate(arrivals, obs.t_s, 30.0) * s
    loads = (*state.loads, load10)[-6:]  # the last 30 s of 5-s decisions
    active = [p for p in obs.pods if not p.deleting]
    n_active = max(len(active), 1)
    starting = sum(1 for p in active if not p.ready)
    serving = [p for p in obs.pods if p.serving and p.cpu_millicores is not None]
    util = (
        float(np.mean([p.cpu_millicores / p.cpu_request_millicores for p in serving]))
        if serving
        else 0.0
    )
    q = QueueingConfig(bounds=bounds)
    c_q = size_for(obs, load10 / s, q) if load10 > 0 else 0
    trend = (load10 - loads[0]) / max(loads[0], 0.5) if len(loads) > 1 else 0.0
    x = np.array(
        [
            load10 / n_active,
            load30 / n_active,
            float(np.clip(trend, -2.0, 2.0)),
            starting / n_active,
            len(active) / bounds.max_replicas,
            obs.concurrency / n_active,
            obs.violations / max(obs.arrivals, 1),
            util,
            obs.startup_s / 60.0,
            c_q / n_active,
        ],
        dtype=np.float32,
    )
    new = replace(
        state,
        arrivals=arrivals,
        loads=loads,
        violations=obs.violations,
        arrivals_in_interval=obs.arrivals,
        replicas_existing=len(obs.pods),
        offered_load=load10,
    )
    return np.clip(x, -10.0, 10.0), new


def action_to_replicas(action: int, obs: Observation, load: float) -> int:
    """Action k asks for ceil(HEADROOMS[k] x (load + backlog))."""
    backlog = max(0.0, obs.concurrency - obs.ready_replicas) * obs.service_time_s / obs.slo_s
    return math.ceil(HEADROOMS[action] * (load + backlog) - 1e-9)


class RlPolicy:
    """The PPO policy as a :class:`~offload.cluster.autoscaling.interface.Policy`.

    Args:
        net: an ActorCritic from :func:`make_net` (weights fixed while it acts).
        config: bounds, period, greedy or sampling.
    """

    def __init__(self, net: Any, config: RlConfig | None = None, name: str = "rl") -> None:
        self.net, self.config, self.name = net, config or RlConfig(), name

    @property
    def period_s(self) -> float:
        return self.config.period_s

    @classmethod
    def load(cls, path: str | Path = DEFAULT_WEIGHTS, config: RlConfig | None = None) -> RlPolicy:
        """The shipped (or another) trained policy.

        Raises:
            AutoscalingError: a missing or incompatible weights file.
        """
        import torch

        net = make_net()
        try:
            net.load_state_dict(torch.load(Path(path), map_location="cpu", weights_only=True))
        except (OSError, RuntimeError) as err:
            raise AutoscalingError(f"cannot load RL weights {path}: {err}") from err
        return cls(net, config)

    def initial_state(self) -> RlState:
        return RlState()

    def decide(self, obs: Observation, state: RlState) -> tuple[int, RlState]:
        import torch

        cfg = self.config
        x, state = featurize(obs, state, cfg.bounds)
        with torch.no_grad():
            logits, value = self.net(torch.from_numpy(x[None, :]))
        logp_all = torch.log_softmax(logits[0], -1).numpy()
        if cfg.greedy:
            action = int(np.argmax(logp_all))
        else:
            rng = np.random.default_rng((cfg.seed, state.step))
            action = int(rng.choice(N_ACTIONS, p=np.exp(logp_all) / np.exp(logp_all).sum()))
        desired = action_to_replicas(action, obs, state.offered_load)
        desired, delay = hold_down(state.delay, obs.t_s, cfg.scale_down_delay_s, desired)
        state = replace(
            state,
            delay=delay,
            step=state.step + 1,
            features=tuple(float(v) for v in x),
            action=action,
            logp=float(logp_all[action]),
            value=float(value[0]),
        )
        return cfg.bounds.clamp(desired), state


def save(net: Any, path: Path, provenance: dict[str, Any]) -> None:
    """Writes the weights and ``<path>.json`` with their provenance (and sha256)."""
    import hashlib

    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    meta = {"model_file": path.name, "sha256": digest, **provenance}
    path.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
