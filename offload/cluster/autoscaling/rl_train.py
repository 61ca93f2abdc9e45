"""PPO training of the learned autoscaler (``rl``) in the cluster simulation.

Episodes: a synthetic trace (diurnal, bursty or step; mean rate, shape and length drawn per
episode), a start-up delay drawn from ``startup_range_s`` and the calibrated service model
scaled so that the mean offered load is 2 to 10 replicas. The evaluation traces (the Azure trace
and any CSV given to the benchmark) are never used. PPO (Schulman et al. 2017): clipped
surrogate objective (0.2), generalised advantage estimation (gamma 0.97, lambda 0.92), value
loss weight 0.5, entropy bonus 0.01, Adam, several epochs of minibatches per update. The reward
is ``rl``'s: ``-(w_v x violation share + w_c x replicas / mean offered load)`` per period.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from offload.cluster.autoscaling.calibration import ServiceModel, StartupModel
from offload.cluster.autoscaling.interface import AutoscalingError, Bounds
from offload.cluster.autoscaling.rl import RlConfig, RlPolicy, make_net
from offload.cluster.autoscaling.simulate import SimConfig, simulate
from offload.cluster.autoscaling.traces import SYNTHETIC, Trace, synthetic

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    """PPO and episode settings (see the module docstring)."""

    updates: int = 120
    episodes_per_update: int = 8
    episode_s: tuple[float, float] = (600.0, 1200.0)
    rate_hz: tuple[float, float] = (2.0, 8.0)
    load_replicas: tuple[float, float] = (2.0, 10.0)
    startup_range_s: tuple[float, float] = (3.0, 30.0)
    slo_factor: float = 3.0  # SLO = this x the mean service time
    kinds: tuple[str, ...] = SYNTHETIC
    bounds: Bounds = field(default_factory=lambda: Bounds(1, 24))
    w_violation: float = 10.0
    w_cost: float = 1.0
    gamma: float = 0.97
    lam: float = 0.92
    clip: float = 0.2
    epochs: int = 4
    minibatch: int = 256
    lr: float = 1e-3
    entropy: float = 0.01
    value_weight: float = 0.5
    seed: int = 0

    def __post_init__(self) -> None:
        if self.updates < 1 or self.episodes_per_update < 1 or self.w_violation < 0:
            raise AutoscalingError("updates, episodes_per_update >= 1; w_violation >= 0")
        if any(k not in SYNTHETIC for k in self.kinds):
            raise AutoscalingError(f"training traces must be synthetic ({SYNTHETIC})")


def episode(
    cfg: TrainConfig, service: ServiceModel, rng: np.random.Generator
) -> tuple[Trace, SimConfig, float]:
    """One random training episode: (trace, simulation settings, mean offered load)."""
    kind = str(rng.choice(cfg.kinds))
    rate = float(rng.uniform(*cfg.rate_hz))
    duration = float(rng.uniform(*cfg.episode_s))
    seed = int(rng.integers(1 << 30))
    trace = synthetic(
        kind,
        rate,
        duration,
        seed,
        period_s=float(rng.uniform(300, 1500)),
        amplitude=float(rng.uniform(0.3, 0.8)),
        burst_factor=float(rng.uniform(2.0, 4.0)),
        bursts_per_hour=float(rng.uniform(4, 16)),
        step_factor=float(rng.uniform(1.5, 3.5)),
    )
    mean_s, _ = service.moments()
    load = float(rng.uniform(*cfg.load_replicas))
    factor = load / (trace.mean_rate_hz * mean_s)
    startup = StartupModel.constant(float(rng.uniform(*cfg.startup_range_s)))
    slo = cfg.slo_factor * mean_s * factor
    sim = SimConfig(
        service.scaled(factor), startup, slo, initial_replicas=max(1, round(load)), seed=seed
    )
    return trace, sim, load


def rollout(policy: RlPolicy, trace: Trace, sim: SimConfig, load: float, cfg: TrainConfig):
    """(features [T, F], actions [T], logp [T], values [T], rewards [T]) of one episode."""
    run = simulate(trace, policy, sim, keep_states=True)
    s = run.states
    if len(s) < 2:
        raise AutoscalingError(f"episode on {trace.name} too short for a decision")
    feats = np.array([st.features for st in s[:-1]], np.float32)
    actions = np.array([st.action for st in s[:-1]])
    logp = np.array([st.logp for st in s[:-1]], np.float32)
    values = np.array([st.value for st in s[:-1]], np.float32)
    nxt = s[1:]
    viol = np.array([st.violations / max(st.arrivals_in_interval, 1) for st in nxt])
    cost = np.array([st.replicas_existing / load for st in nxt])
    rewards = -(cfg.w_violation * viol + cfg.w_cost * cost).astype(np.float32)
    return feats, actions, logp, values, rewards


def gae(rewards: np.ndarray, values: np.ndarray, gamma: float, lam: float) -> np.ndarray:
    """Generalised advantage estimates (the episode's end bootstraps with its last value)."""
    adv = np.zeros_like(rewards)
    last = 0.0
    for t in range(len(rewards) - 1, -1, -1):
        next_v = values[t + 1] if t + 1 < len(values) else values[t]
        delta = rewards[t] + gamma * next_v - values[t]
        last = delta + gamma * lam * last
        adv[t] = last
    return adv


def train(
    cfg: TrainConfig,
    service: ServiceModel,
    progress: Callable[[str], None] | None = None,
    net: Any = None,
) -> tuple[Any, list[dict[str, float]]]:
    """Trains a policy; returns (network, per-update log of mean return and losses)."""
    import torch

    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    net = net or make_net()
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    log: list[dict[str, float]] = []
    for update in range(cfg.updates):
        batch = []
        returns = []
        for k in range(cfg.episodes_per_update):
            trace, sim, load = episode(cfg, service, rng)
            policy = RlPolicy(net, RlConfig(cfg.bounds, greedy=False, seed=update * 1000 + k))
            f, a, lp, v, r = rollout(policy, trace, sim, load, cfg)
            adv = gae(r, v, cfg.gamma, cfg.lam)
            batch.append((f, a, lp, adv, adv + v))
            returns.append(float(r.mean()))
        f, a, lp, adv, ret = (np.concatenate(x) for x in zip(*batch, strict=True))
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        t = {
            "f": torch.from_numpy(f),
            "a": torch.from_numpy(a),
            "lp": torch.from_numpy(lp),
            "adv": torch.from_numpy(adv.astype(np.float32)),
            "ret": torch.from_numpy(ret.astype(np.float32)),
        }
        stats = _ppo_epochs(net, opt, t, cfg, rng)
        log.append({"update": update, "mean_reward": float(np.mean(returns)), **stats})
        if progress and (update % 10 == 0 or update == cfg.updates - 1):
            progress(f"update {update + 1}/{cfg.updates}: mean reward {np.mean(returns):.3f}")
    return net, log


def _ppo_epochs(net: Any, opt: Any, t: dict[str, Any], cfg: TrainConfig, rng) -> dict[str, float]:
    import torch

    n = len(t["a"])
    pl = vl = ent = 0.0
    for _ in range(cfg.epochs):
        order = rng.permutation(n)
        for start in range(0, n, cfg.minibatch):
            idx = torch.from_numpy(order[start : start + cfg.minibatch])
            logits, value = net(t["f"][idx])
            logp_all = torch.log_softmax(logits, -1)
            logp = logp_all.gather(1, t["a"][idx, None]).squeeze(1)
            ratio = torch.exp(logp - t["lp"][idx])
            adv = t["adv"][idx]
            surrogate = torch.min(ratio * adv, ratio.clamp(1 - cfg.clip, 1 + cfg.clip) * adv)
            policy_loss = -surrogate.mean()
            value_loss = torch.nn.functional.mse_loss(value, t["ret"][idx])
            entropy = -(logp_all.exp() * logp_all).sum(-1).mean()
            loss = policy_loss + cfg.value_weight * value_loss - cfg.entropy * entropy
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 0.5)
            opt.step()
            pl, vl, ent = (float(v.detach()) for v in (policy_loss, value_loss, entropy))
    return {"policy_loss": pl, "value_loss": vl, "entropy": ent}


def evaluate(
    policy: Any, cfg: TrainConfig, service: ServiceModel, episodes: int, seed: int
) -> float:
    """Mean per-period reward of ``policy`` on ``episodes`` fresh random episodes."""
    rng = np.random.default_rng(seed)
    totals = []
    for _ in range(episodes):
        trace, sim, load = episode(cfg, service, rng)
        run = simulate(trace, policy, sim, keep_states=False)
        viol = run.slo_violation_rate
        cost = run.replica_seconds / trace.duration_s / load
        totals.append(-(cfg.w_violation * viol + cfg.w_cost * cost))
    return float(np.mean(totals))


def provenance(cfg: TrainConfig, service: ServiceModel, log: list[dict[str, float]]) -> dict:
    """What the weights file's JSON records: settings, data, losses."""
    return {
        "train_config": asdict(cfg),  # nested dataclasses (bounds) become dicts too
        "service_model": asdict(service),
        "training_traces": f"synthetic {', '.join(cfg.kinds)} (offload.cluster.autoscaling."
        "traces.synthetic), random settings per episode; no evaluation trace",
        "reward": "-(w_violation x SLO-violation share + w_cost x replicas / mean offered load) "
        "per decision period",
        "log_every_10": log[::10] + log[-1:],
    }
