"""Admission policies of the token-level engine: which waiting requests start (prefill) now.

Contract (vLLM v1 scheduler style): the engine calls ``admit`` once per step with the waiting
requests, the time, the free KV-cache memory and the number of running sequences; the policy
returns groups of requests, each prefilled together (padded to its longest prompt), in order.
Policies are pure: they read the observation and return a decision, nothing else.

* ``fifo``: continuous batching in arrival order (vLLM's first-come-first-served): admit while
  the next request's KV reservation fits, stop at the first that does not (no overtaking).
* ``static``: request-level batching (the Triton/TorchServe dynamic batcher): only when nothing
  runs, start a batch once ``max_batch`` requests wait or the oldest has waited
  ``max_queue_delay_s``; the batch runs to completion before the next starts.
* ``bucket``: BucketServe (arXiv 2507.17120): requests are grouped by total length (prompt +
  max_tokens) into buckets [L, U); buckets are served in order of their most urgent request (SLO
  slack = TTFT deadline - now); each bucket's group is prefilled on its own (little padding), and
  its members are admitted in slack order while their KV reservations fit. A group that is not
  yet full may wait for more members while its TTFT slack allows (``_dispatch_now``): fewer,
  fuller prefills stall the running sequences' decoding less often. The BucketServe cap
  ``floor(free KV / (U x bytes per token))`` is the case where each member reserves its bucket's
  bound U; requests here state max_tokens, so each reserves exactly prompt + max_tokens, which
  admits at least as many and still can never overflow.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

PolicyName = Literal["bucket", "fifo", "static"]
POLICIES: tuple[PolicyName, ...] = ("bucket", "fifo", "static")


class SchedulingError(ValueError):
    """A policy setting is out of bounds."""


class Pending(Protocol):
    """What a policy sees of a waiting request."""

    @property
    def prompt_len(self) -> int: ...
    @property
    def max_tokens(self) -> int: ...
    @property
    def arrival_s(self) -> float: ...
    @property
    def ttft_deadline_s(self) -> float: ...


@dataclass(frozen=True)
class AdmitObservation:
    """The engine's state as a policy sees it at one step."""

    waiting: list[Pending]  # in arrival order
    now_s: float
    free_kv_bytes: int  # KV budget minus the reservations of running sequences
    running: int  # sequences decoding now
    kv_bytes_for: Callable[[int], int]  # reservation of a sequence of n tokens (bytes)


@dataclass(frozen=True)
class PolicyConfig:
    """Settings shared by the policies (each uses the ones it names)."""

    max_batch: int = 32  # sequences running at once, [1, 4096]
    max_prefill_tokens: int = 4096  # padded prompt tokens prefilled per step, >= 1
    max_queue_delay_s: float = 0.05  # static: longest wait before a partial batch starts, >= 0
    bucket_bounds: tuple[int, ...] = (32, 64, 128, 256)  # bucket: upper bounds U, increasing
    bucket_min_batch: int = 4  # bucket: a group this size starts at once, >= 1
    bucket_max_wait: float = 0.25  # bucket: share of its TTFT objective a request may wait, [0, 1]

    def __post_init__(self) -> None:
        if not 1 <= self.max_batch <= 4096:
            raise SchedulingError(f"max_batch={self.max_batch} is out of bounds [1, 4096]")
        if self.max_prefill_tokens < 1:
            raise SchedulingError(f"max_prefill_tokens={self.max_prefill_tokens} must be >= 1")
        if self.max_queue_delay_s < 0:
            raise SchedulingError(f"max_queue_delay_s={self.max_queue_delay_s} must be >= 0")
        if self.bucket_min_batch < 1:
            raise SchedulingError(f"bucket_min_batch={self.bucket_min_batch} must be >= 1")
        if not 0.0 <= self.bucket_max_wait <= 1.0:
            raise SchedulingError(f"bucket_max_wait={self.bucket_max_wait} is out of bounds [0, 1]")
        b = self.bucket_bounds
        if not b or list(b) != sorted(set(b)) or b[0] < 1:
            raise SchedulingError(f"bucket_bounds={b} must be positive and increasing")


def bucket_of(total_tokens: int, bounds: tuple[int, ...]) -> int:
    """Index of the bucket [bounds[i-1], bounds[i]) holding ``total_tokens`` (last if above)."""
    for i, upper in enumerate(bounds):
        if total_tokens < upper:
            return i
    return len(bounds) - 1


def _take(
    candidates: list[Pending],
    obs: AdmitObservation,
    cfg: PolicyConfig,
    reserve: Callable[[Pending], int],
    slots: int,
    prefill_budget: int,
    stop_at_first_misfit: bool,
) -> tuple[list[Pending], int, int]:
    """Greedy group: members fit in memory, in batch slots and in the padded prefill budget."""
    group: list[Pending] = []
    free = obs.free_kv_bytes
    longest = 0
    for req in candidates:
        need = reserve(req)
        padded = max(longest, req.prompt_len) * (len(group) + 1)
        if len(group) >= slots or need > free or padded > prefill_budget:
            if stop_at_first_misfit:
                break
            continue
        group.append(req)
        free -= need
        longest = max(longest, req.prompt_len)
    return group, obs.free_kv_bytes - free, longest * len(group)


def admit_fifo(obs: AdmitObservation, cfg: PolicyConfig) -> list[list[Pending]]:
    group, _, _ = _take(
        obs.waiting,
        obs,
        cfg,
        lambda r: obs.kv_bytes_for(r.prompt_len + r.max_tokens),
        cfg.max_batch - obs.running,
        cfg.max_prefill_tokens,
        stop_at_first_misfit=True,
    )
    return [group] if group else []


def admit_static(obs: AdmitObservation, cfg: PolicyConfig) -> list[list[Pending]]:
    if obs.running or not obs.waiting:
        return []
    oldest = obs.waiting[0].arrival_s
    if len(obs.waiting) < cfg.max_batch and obs.now_s - oldest < cfg.max_queue_delay_s:
        return []
    return admit_fifo(obs, cfg)


def admit_bucket(obs: AdmitObservation, cfg: PolicyConfig) -> list[list[Pending]]:
    bounds = cfg.bucket_bounds
    buckets: dict[int, list[Pending]] = {}
    for req in obs.waiting:
        buckets.setdefault(bucket_of(req.prompt_len + req.max_tokens, bounds), []).append(req)
    for members in buckets.values():
        members.sort(key=lambda r: r.ttft_deadline_s - obs.now_s)  # least slack first
    order = sorted(buckets, key=lambda b: buckets[b][0].ttft_deadline_s)
    groups: list[list[Pending]] = []
    free, slots, prefill = obs.free_kv_bytes, cfg.max_batch - obs.running, cfg.max_prefill_tokens
    for b in order:
        view = AdmitObservation(obs.waiting, obs.now_s, free, obs.running, obs.kv_bytes_for)
        group, used, padded = _take(
            buckets[b],
            view,
            cfg,
            lambda r: obs.kv_bytes_for(r.prompt_len + r.max_tokens),
            slots,
            prefill,
            stop_at_first_misfit=False,
        )
        if group and _dispatch_now(buckets[b], group, obs, cfg):
            groups.append(group)
            free, slots, prefill = free - used, slots - len(group), prefill - padded
    return groups


def _dispatch_now(
    members: list[Pending], group: list[Pending], obs: AdmitObservation, cfg: PolicyConfig
) -> bool:
    """Start a bucket's group now, or let it fill while its requests' TTFT slack allows.

    Each prefill stalls every running sequence's decode, so fewer, fuller prefills keep time
    per output token low. A group starts when nothing is running (no stall to save), when it is
    full (``bucket_min_batch`` requests, or more waiting than fit), or when its most urgent
    request has used ``bucket_max_wait`` of its TTFT objective waiting.
    """
    if obs.running == 0 or len(group) >= cfg.bucket_min_batch or len(members) > len(group):
        return True
    return any(
        obs.now_s - r.arrival_s >= cfg.bucket_max_wait * (r.ttft_deadline_s - r.arrival_s)
        for r in group
    )


ADMIT: dict[PolicyName, Callable[[AdmitObservation, PolicyConfig], list[list[Pending]]]] = {
    "bucket": admit_bucket,
    "fifo": admit_fifo,
    "static": admit_static,
}
