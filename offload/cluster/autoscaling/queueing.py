"""Queueing-model autoscaling: the fewest replicas whose M/M/c (M/G/c) latency meets the SLO.

Model: Poisson arrivals at rate lambda, ``c`` replicas each serving one request at a time with
mean service time ``S`` (rate mu = 1/S) and squared coefficient of variation ``cv2``, one
shared queue (the router sends each request to the least-loaded replica, which approximates
it). Offered load a = lambda S, utilisation rho = a / c < 1.

- Erlang C (probability that a request waits): ``C(c, a) = B / (1 - rho (1 - B))`` with the
  Erlang B recursion ``B(0) = 1, B(k) = a B(k-1) / (k + a B(k-1))`` (numerically stable).
- M/M/c: the wait is 0 with probability 1 - C and exponential with rate theta = c mu - lambda
  otherwise; the sojourn T = wait + service has ``P(T > t) = (1 - C) e^{-mu t} + C (theta
  e^{-mu t} - mu e^{-theta t}) / (theta - mu)`` (``(1 + mu t) e^{-mu t}`` form at theta = mu).
- M/G/c (two-moment approximation, Allen-Cunneen): the mean wait scales by (1 + cv2) / 2, so
  the conditional wait is exponential with rate theta (2 / (1 + cv2)); service times are Gamma
  with the measured mean and cv2; ``P(T > t) = P(S > t) + C E[e^{-theta'(t - S)}; S <= t]``.
  It equals the M/M/c formula at cv2 = 1.

Sizing: the smallest c with ``P(T > slo) <= target_violation + P(S > slo)`` (the second term:
what the service time alone exceeds, which no replica count can save) and
``rho <= max_utilization``.
The policy applies it to an arrival-rate estimate plus the queued backlog to be drained within
one SLO. The estimate is the mean over ``rate_window_s`` (60 s): the queueing model already
accounts for Poisson fluctuations within it, so reacting to them would only add replicas; but
when the last ``burst_window_s`` (10 s) holds significantly more arrivals than that mean predicts
(more than ``burst_z`` Poisson standard deviations above it) the short-window rate is used: a
burst or a level shift is served at once. The service time is divided by ``capacity_factor``,
and the highest count of the last ``scale_down_delay_s`` is kept before scaling down (scale-ups
are immediate).

Taxonomy (arXiv 2507.17128): model-based (analytical queueing) horizontal scaling, reactive;
objective: a latency SLO percentile at the least replicas; behaviour model: M/G/c queue.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from scipy import integrate, special

from offload.cluster.autoscaling.interface import (
    AutoscalingError,
    Bounds,
    Observation,
    check_positive,
)


def erlang_b(c: int, a: float) -> float:
    """Blocking probability of M/M/c/c with offered load ``a`` (Erlangs)."""
    if c < 0 or a < 0:
        raise AutoscalingError(f"erlang_b needs c >= 0 and a >= 0, got {c}, {a}")
    b = 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    return b


def erlang_c(c: int, a: float) -> float:
    """Probability that an arrival waits in M/M/c with offered load ``a`` (1 if a >= c)."""
    if c <= 0 or a >= c:
        return 1.0
    if a <= 0:
        return 0.0
    b = erlang_b(c, a)
    rho = a / c
    return b / (1.0 - rho * (1.0 - b))


def mmc_mean_wait_s(c: int, rate_hz: float, mean_s: float) -> float:
    """Mean queueing delay of M/M/c (inf when unstable)."""
    a = rate_hz * mean_s
    if a >= c:
        return math.inf
    return erlang_c(c, a) / (c / mean_s - rate_hz)


def sojourn_tail(c: int, rate_hz: float, mean_s: float, cv2: float, t_s: float) -> float:
    """P(response time > t) in M/G/c (exact M/M/c at cv2 = 1; see the module docstring)."""
    a = rate_hz * mean_s
    if a >= c:
        return 1.0
    if t_s <= 0:
        return 1.0
    wait_c = erlang_c(c, a)
    theta = (c / mean_s - rate_hz) * 2.0 / (1.0 + cv2)
    if cv2 < 1e-6:  # deterministic service
        return 1.0 if t_s < mean_s else wait_c * math.exp(-theta * (t_s - mean_s))
    k = 1.0 / cv2  # Gamma shape
    scale = mean_s * cv2
    tail_s = float(special.gammaincc(k, t_s / scale))
    r = 1.0 / scale - theta
    if r > 1e-9:
        # int_0^t f(s) e^{theta s} ds = (scale r)^-k P(k, r t), in logs against overflow
        log_conv = -theta * t_s - k * math.log(scale * r) + math.log(special.gammainc(k, r * t_s))
        conv = math.exp(log_conv) if special.gammainc(k, r * t_s) > 0 else 0.0
    else:  # rare (far more replicas than load with a very regular service): quadrature
        log_norm = special.gammaln(k) + k * math.log(scale)

        def integrand(x: float) -> float:
            if x <= 0:
                return 0.0
            return math.exp((k - 1) * math.log(x) - x / scale - log_norm - theta * (t_s - x))

        mode = [min(t_s, (k - 1) * scale)] if k > 1 else None
        conv = integrate.quad(integrand, 0.0, t_s, points=mode, limit=200)[0]
    return min(1.0, tail_s + wait_c * conv)


def replicas_for_slo(
    rate_hz: float,
    mean_s: float,
    cv2: float,
    slo_s: float,
    target_violation: float,
    max_utilization: float,
    limit: int,
) -> int:
    """Smallest c in [1, limit] with P(T > slo) <= target + P(S > slo) and rho <=
    max_utilization (limit if none does; 0 without load). P(S > slo), the share no number of
    replicas can save (service alone beyond the SLO), is added so that an SLO tighter than the
    service time's own tail still gets a finite answer: queueing may add ``target``."""
    if rate_hz <= 0:
        return 0
    a = rate_hz * mean_s
    c = max(1, math.ceil(a / max_utilization - 1e-9))
    target = target_violation + service_tail(mean_s, cv2, slo_s)
    while c < limit and sojourn_tail(c, rate_hz, mean_s, cv2, slo_s) > target:
        c += 1
    return min(c, limit)


def service_tail(mean_s: float, cv2: float, t_s: float) -> float:
    """P(S > t) for Gamma service times with the given mean and cv2 (a step at cv2 = 0)."""
    if cv2 < 1e-6:
        return 1.0 if t_s < mean_s else 0.0
    return float(special.gammaincc(1.0 / cv2, t_s / (mean_s * cv2)))


@dataclass(frozen=True)
class QueueingConfig:
    """Attributes:
    bounds: replica limits.
    target_violation: allowed P(latency > SLO), in (0, 1) (0.01: p99 at the SLO).
    max_utilization: utilisation cap rho <= this, in (0, 1) (the swept knob).
    rate_window_s: arrival rate averaged over this window (s).
    burst_window_s: the short window of the burst test (s).
    burst_z: Poisson standard deviations that make a burst.
    scale_down_delay_s: keep the highest count of this window before scaling down (s).
    period_s: decision period (s).
    """

    bounds: Bounds = field(default_factory=Bounds)
    target_violation: float = 0.01
    max_utilization: float = 0.85
    rate_window_s: float = 60.0
    burst_window_s: float = 10.0
    burst_z: float = 3.0
    scale_down_delay_s: float = 60.0
    period_s: float = 5.0

    def __post_init__(self) -> None:
        if not 0 < self.target_violation < 1 or not 0 < self.max_utilization < 1:
            raise AutoscalingError("target_violation and max_utilization must be in (0, 1)")
        check_positive(
            rate_window_s=self.rate_window_s,
            burst_window_s=self.burst_window_s,
            period_s=self.period_s,
        )
        if self.scale_down_delay_s < 0:
            raise AutoscalingError(f"scale_down_delay_s={self.scale_down_delay_s} must be >= 0")


@dataclass(frozen=True)
class RateState:
    """Recent (t_end_s, interval_s, arrivals) and the delay window (t_s, replicas)."""

    arrivals: tuple[tuple[float, float, int], ...] = ()
    delay: tuple[tuple[float, int], ...] = ()


def windowed_rate(
    arrivals: tuple[tuple[float, float, int], ...], now_s: float, w_s: float
) -> float:
    """Arrivals per second over the intervals that end within the last ``w_s`` seconds."""
    recent = [(length, n) for end, length, n in arrivals if end > now_s - w_s]
    span = sum(length for length, _ in recent)
    return sum(n for _, n in recent) / span if span > 0 else 0.0


def estimate_rate(arrivals: tuple, now_s: float, cfg: QueueingConfig) -> float:
    """The long-window rate, or the short-window one when it is a significant burst."""
    long_rate = windowed_rate(arrivals, now_s, cfg.rate_window_s)
    short = [(length, n) for end, length, n in arrivals if end > now_s - cfg.burst_window_s]
    span, count = sum(x for x, _ in short), sum(n for _, n in short)
    expected = long_rate * span
    if span > 0 and count > expected + cfg.burst_z * math.sqrt(max(expected, 1.0)):
        return count / span
    return long_rate


def push_arrivals(state: RateState, obs: Observation, keep_s: float) -> tuple:
    """The arrival record with this interval added and entries older than ``keep_s`` gone."""
    kept = tuple(a for a in state.arrivals if a[0] > obs.t_s - keep_s)
    return (*kept, (obs.t_s, obs.interval_s, obs.arrivals))


def hold_down(delay: tuple, now_s: float, window_s: float, desired: int) -> tuple[int, tuple]:
    """The highest desired count of the last ``window_s`` (scale-down delay), new window."""
    if window_s <= 0:
        return desired, ()
    window = (*tuple(d for d in delay if d[0] > now_s - window_s), (now_s, desired))
    return max(v for _, v in window), window


def size_for(obs: Observation, rate_hz: float, cfg: QueueingConfig) -> int:
    """Replicas for ``rate_hz`` plus the backlog (see the module docstring), before bounds."""
    mean_s = obs.service_time_s / obs.capacity_factor
    backlog = max(0.0, obs.concurrency - obs.ready_replicas)
    rate = rate_hz + backlog / obs.slo_s
    return replicas_for_slo(
        rate,
        mean_s,
        obs.service_cv2,
        obs.slo_s,
        cfg.target_violation,
        cfg.max_utilization,
        cfg.bounds.max_replicas,
    )


@dataclass(frozen=True)
class QueueingPolicy:
    """M/G/c sizing on the measured arrival rate (see the module docstring)."""

    config: QueueingConfig = field(default_factory=QueueingConfig)
    name: str = "queueing"

    @property
    def period_s(self) -> float:
        return self.config.period_s

    def initial_state(self) -> RateState:
        return RateState()

    def decide(self, obs: Observation, state: RateState) -> tuple[int, RateState]:
        cfg = self.config
        arrivals = push_arrivals(state, obs, cfg.rate_window_s + obs.interval_s)
        rate = estimate_rate(arrivals, obs.t_s, cfg)
        desired, delay = hold_down(
            state.delay, obs.t_s, cfg.scale_down_delay_s, size_for(obs, rate, cfg)
        )
        return cfg.bounds.clamp(desired), RateState(arrivals, delay)
