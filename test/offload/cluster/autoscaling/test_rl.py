"""The learned (PPO) autoscaler trains in the simulation and beats a random policy."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from offload.cluster.autoscaling.calibration import ServiceModel
from offload.cluster.autoscaling.interface import AutoscalingError, Bounds, Observation
from offload.cluster.autoscaling.queueing import hold_down
from offload.cluster.autoscaling.rl import (
    N_ACTIONS,
    N_FEATURES,
    RlConfig,
    RlPolicy,
    action_to_replicas,
    featurize,
)
from offload.cluster.autoscaling.rl_train import TrainConfig, evaluate, gae, train

SERVICE = ServiceModel((0.0, 0.5, 1.0), (0.5, 0.9, 1.6), log_std=0.3)


@dataclass(frozen=True)
class RandomHeadroom:
    """Uniformly random actions of the same action space and the same scale-down delay."""

    seed: int = 7
    name: str = "random"
    period_s: float = 5.0

    def initial_state(self):
        return (0, ())

    def decide(self, obs: Observation, state):
        step, delay = state
        action = int(np.random.default_rng((self.seed, step)).integers(N_ACTIONS))
        load = obs.offered_load
        n, delay = hold_down(delay, obs.t_s, 30.0, action_to_replicas(action, obs, load))
        return max(n, 1), (step + 1, delay)


def test_gae_of_constant_rewards_with_exact_values_is_zero():
    rewards = np.full(5, -1.0, np.float32)
    gamma = 0.9
    values = np.full(5, -1.0 / (1 - gamma), np.float32)  # the infinite-horizon value
    assert np.allclose(gae(rewards, values, gamma, 0.95), 0.0, atol=1e-5)


def test_features_are_finite_and_bounded():
    from offload.cluster.autoscaling.interface import PodView

    obs = Observation(
        t_s=5.0,
        replicas=2,
        pods=(PodView("a"), PodView("b", ready=False)),
        interval_s=5.0,
        arrivals=40,
        service_time_s=0.5,
        slo_s=2.0,
    )
    x, _ = featurize(obs, RlPolicy(None).initial_state(), Bounds(1, 10))
    assert x.shape == (N_FEATURES,) and np.all(np.isfinite(x)) and np.all(np.abs(x) <= 10)
    assert x[3] == pytest.approx(0.5)  # one of two active replicas still starting


def test_ppo_beats_a_random_policy_on_a_tiny_trace():
    import torch

    torch.set_num_threads(1)
    # tiny: 12 updates of 4 diurnal episodes of 2.5-4 minutes, 3-6 replicas of load
    cfg = TrainConfig(
        updates=12,
        episodes_per_update=4,
        episode_s=(150.0, 240.0),
        seed=3,
        kinds=("diurnal",),
        startup_range_s=(5.0, 10.0),
        load_replicas=(3.0, 6.0),
        bounds=Bounds(1, 24),
    )
    net, _ = train(cfg, SERVICE)
    trained = RlPolicy(net, RlConfig(bounds=cfg.bounds))
    score_trained = evaluate(trained, cfg, SERVICE, episodes=6, seed=99)
    score_random = evaluate(RandomHeadroom(), cfg, SERVICE, episodes=6, seed=99)
    # same held-out episodes for both; the score is the reward the policy was trained on
    assert score_trained > score_random, (score_trained, score_random)


def test_missing_weights_is_a_clear_error(tmp_path):
    with pytest.raises(AutoscalingError, match="cannot load RL weights"):
        RlPolicy.load(tmp_path / "none.pt")
