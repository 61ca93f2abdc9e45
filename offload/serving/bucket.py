"""BucketServe bucket batching (Zheng et al., arXiv 2507.17120), as a pure policy.

Formulation, per model and path:
- Buckets cover cost intervals [L_i, U_i) (cost in the model's unit); a request joins the
  bucket holding its cost. A batch is drawn from one bucket, so its requests are of similar size.
- Batch cap of a bucket from the memory budget M: cap_i = max(1, floor(M / m(U_i))), where
  m(c) = fixed bytes per request + c x bytes per unit (``MemoryModel.item_bytes``): BucketServe's
  floor(free memory / (U x bytes per unit)) with the per-request term added. A batch never
  exceeds M, whatever sizes its requests have inside the bucket. Beyond the cap (ours) a batch
  may grow while the actual costs of its requests fit M: the top bucket's edge is the model's
  largest admissible request, far above what arrives, and would hold its batches to one.
- Adaptive split and merge, every ``adapt_period_s``: a bucket splits at the median of its
  recent arrivals' costs when its queue no longer fits one batch in the memory budget, or, with
  ``split_on_padding`` (the paper's criterion, off by default here), when their mean padding
  1 - c / U_i exceeds ``split_padding`` (the cap is set by U_i, so small requests in a wide
  bucket waste the budget; with batches filled by actual costs they do not); two neighbours
  merge when both arrival rates (exponentially weighted, half-life ``rate_halflife_s``) are
  below ``merge_rate_hz`` and their queues fit the merged cap.
- Priority by SLO slack: slack(r) = deadline(r) - now - t_hat(r), with t_hat the online
  service-time prediction for r alone. The batch is drawn from the bucket holding the request of
  least slack; requests join in slack order while the predicted batch time still lets every
  member meet its deadline and the cap allows.
- No request waits past its slack: a request whose slack is negative (it cannot finish in time
  even alone, now) is answered at once instead of run, and with ``admission`` a request whose
  predicted finish (the work queued ahead of it by deadline and its own, as the batches they
  would run in: per bucket, chunks of the cap) is past its deadline is rejected on arrival, so
  the client can fall back at once. The loop is work-conserving: the
  model never idles while a request waits.
- Probing (ours, not the paper's): the service-time model learns only from batches that run, so
  when every queued request is predicted late and no batch ran for ``probe_interval_s``, the one
  closest to its deadline runs anyway (if its budget is at least ``probe_min_fraction`` of its
  predicted time); a pessimistic prediction cannot lock the service out.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from offload.serving.model import PATHS, Path
from offload.serving.policy import BatchPolicy, Dispatch, PolicyContext, PolicyError, QueuedRequest


@dataclass(frozen=True)
class BucketConfig:
    """BucketServe settings (units: the model's cost unit)."""

    # initial bucket edges, strictly increasing, first >= 0; the last bucket ends at max_cost + 1
    bounds: tuple[int, ...] = (0,)
    # largest admissible cost (the model's max_cost), >= the last edge
    max_cost: int = 1_000_000
    # a bucket narrower than twice this is not split, >= 1
    min_width_units: int = 1
    # split when the recent mean padding fraction 1 - cost / U exceeds this, in (0, 1) ...
    split_padding: float = 0.35
    # ... if on (the paper's criterion). Off by default: batches fill the memory budget by their
    # requests' actual costs, so a wide bucket wastes no memory, and splitting only fragments
    # the queue into smaller batches (measured: ``robomr bench serving``'s what-if)
    split_on_padding: bool = False
    # recent arrivals needed before a split is considered (and kept per bucket), >= 2
    split_min_arrivals: int = 16
    # merge neighbours whose arrival rates are both below this (requests/s), >= 0
    merge_rate_hz: float = 0.2
    # half-life of the arrival-rate estimate (s), > 0
    rate_halflife_s: float = 10.0
    # time between split/merge passes (s), > 0
    adapt_period_s: float = 1.0
    # most buckets per path, >= 1
    max_buckets: int = 16
    # reject on arrival when the predicted finish is past the deadline
    admission: bool = True
    # without a batch run for this long (s, > 0), the next request runs even if predicted late:
    # a pessimistic service-time model must not refuse everything forever (it learns only from
    # batches it runs)
    probe_interval_s: float = 1.0
    # ... if its latency budget is at least this fraction of its predicted time, in (0, 1]
    probe_min_fraction: float = 0.5

    def __post_init__(self) -> None:
        b = self.bounds
        if not b or b[0] < 0 or any(x >= y for x, y in itertools.pairwise(b)):
            raise PolicyError(f"bounds={b} must be strictly increasing and start at >= 0")
        if self.max_cost < b[-1]:
            raise PolicyError(f"max_cost={self.max_cost} must be >= the last edge {b[-1]}")
        if self.min_width_units < 1 or self.split_min_arrivals < 2 or self.max_buckets < 1:
            raise PolicyError("min_width_units, max_buckets >= 1 and split_min_arrivals >= 2")
        if not 0.0 < self.split_padding < 1.0:
            raise PolicyError(f"split_padding={self.split_padding} must be in (0, 1)")
        if self.merge_rate_hz < 0 or self.rate_halflife_s <= 0 or self.adapt_period_s <= 0:
            raise PolicyError("merge_rate_hz >= 0, rate_halflife_s > 0, adapt_period_s > 0")
        if not self.probe_interval_s > 0 or not 0 < self.probe_min_fraction <= 1:
            raise PolicyError("probe_interval_s must be > 0 and probe_min_fraction in (0, 1]")


@dataclass(eq=False)
class Bucket:
    """One cost interval [lower, upper) of one path, its queue and arrival statistics."""

    path: Path
    lower: int
    upper: int
    queue: list[QueuedRequest] = field(default_factory=list)
    recent: deque = field(default_factory=lambda: deque(maxlen=64))  # costs of recent arrivals
    rate_hz: float = 0.0
    rate_at_s: float = 0.0

    @property
    def label(self) -> str:
        return f"{self.path}:[{self.lower},{self.upper})"

    def decay_rate(self, now_s: float, halflife_s: float) -> None:
        self.rate_hz *= 0.5 ** (max(now_s - self.rate_at_s, 0.0) / halflife_s)
        self.rate_at_s = now_s

    def padding(self) -> float:
        """Mean fraction of the cap's per-request reservation the recent requests leave unused."""
        return 1.0 - float(np.mean(self.recent)) / self.upper if self.recent else 0.0


class BucketPolicy(BatchPolicy):
    """BucketServe (see the module docstring); one instance per model replica."""

    name = "bucket"

    def __init__(self, config: BucketConfig) -> None:
        self.config = config
        edges = [*config.bounds, config.max_cost + 1]
        self.buckets: dict[Path, list[Bucket]] = {
            p: [Bucket(p, lo, hi) for lo, hi in itertools.pairwise(edges)] for p in PATHS
        }
        self._next_adapt_s = -math.inf
        self._last_dispatch_s = -math.inf
        self.splits = 0
        self.merges = 0

    # -- queueing -------------------------------------------------------------------------
    def bucket_of(self, path: Path, cost: int) -> Bucket:
        for b in self.buckets[path]:
            if cost < b.upper:
                return b
        return self.buckets[path][-1]  # costs above max_cost are refused before they get here

    def add(self, request: QueuedRequest, now_s: float) -> None:
        b = self.bucket_of(request.path, request.cost)
        b.queue.append(request)
        b.recent.append(request.cost)
        b.decay_rate(now_s, self.config.rate_halflife_s)
        b.rate_hz += math.log(2.0) / self.config.rate_halflife_s  # one arrival of an EWMA rate

    def queued(self) -> Iterable[QueuedRequest]:
        return (r for bs in self.buckets.values() for b in bs for r in b.queue)

    def queue_lengths(self) -> dict[str, int]:
        return {b.label: len(b.queue) for bs in self.buckets.values() for b in bs}

    def cap(self, bucket: Bucket, ctx: PolicyContext) -> int:
        """Batch cap of ``bucket``: requests of cost just under U that fit the memory budget."""
        per_item = ctx.item_bytes(bucket.path, bucket.upper - 1)
        return max(1, int(ctx.memory_budget_bytes // per_item)) if per_item > 0 else 1 << 30

    # -- admission and dispatch -------------------------------------------------------------
    def _probe_due(self, now_s: float) -> bool:
        return now_s - self._last_dispatch_s >= self.config.probe_interval_s

    def admit(self, request: QueuedRequest, now_s: float, ctx: PolicyContext) -> bool:
        if not self.config.admission:
            return True
        idle = ctx.busy_until_s <= now_s and not any(True for _ in self.queued())
        if idle and self._probe_due(now_s) and self._probe_worthy(request, ctx):
            return True
        return self.predicted_finish_s(request, now_s, ctx) <= request.deadline_s

    def predicted_finish_s(self, request: QueuedRequest, now_s: float, ctx: PolicyContext) -> float:
        """The running batch, then the requests due no later than ``request`` (and itself) as
        the batches they would run in: per bucket, in deadline order, chunks of the bucket's
        cap. Where a batch costs less than its requests alone (a per-batch overhead), summing
        them one at a time would refuse work that batching serves in time."""
        groups: dict[int, tuple[Bucket, list[QueuedRequest]]] = {}
        for r in [*self.queued(), request]:
            if r is request or r.deadline_s <= request.deadline_s:
                b = self.bucket_of(r.path, r.cost)
                groups.setdefault(id(b), (b, []))[1].append(r)
        total = max(ctx.busy_until_s - now_s, 0.0)
        for b, members in groups.values():
            members.sort(key=lambda r: r.deadline_s)
            chunk: list[int] = []
            for r in members:
                if chunk and not self._fits(b, [*chunk, r.cost], ctx):
                    total += ctx.predict_s(b.path, sum(chunk), len(chunk))
                    chunk = []
                chunk.append(r.cost)
            total += ctx.predict_s(b.path, sum(chunk), len(chunk))
        return now_s + total

    def _fits(self, b: Bucket, costs: list[int], ctx: PolicyContext) -> bool:
        """Whether a batch of these costs from ``b`` fits: within the bucket's cap, or, where
        the cap (set by the bucket's upper edge) is smaller, within the memory budget by the
        requests' actual costs (the top bucket's edge is the model's largest admissible request,
        which would otherwise hold every batch there to one)."""
        if len(costs) <= self.cap(b, ctx):
            return True
        return ctx.batch_bytes(b.path, costs) <= ctx.memory_budget_bytes

    def next_dispatch(self, now_s: float, ctx: PolicyContext) -> Dispatch:
        if now_s >= self._next_adapt_s:
            self.adapt(now_s, ctx)
            self._next_adapt_s = now_s + self.config.adapt_period_s
        expired: list[QueuedRequest] = []
        best: tuple[float, Bucket] | None = None
        probe = self._probe(now_s, ctx) if self._probe_due(now_s) else None
        for b in (b for bs in self.buckets.values() for b in bs if b.queue):
            alone = {id(r): ctx.predict_s(b.path, r.cost, 1) for r in b.queue}
            late = [r for r in b.queue if now_s + alone[id(r)] > r.deadline_s and r is not probe]
            if late:
                expired += late
                gone = {id(r) for r in late}
                b.queue = [r for r in b.queue if id(r) not in gone]
            if not b.queue:
                continue
            b.queue.sort(key=lambda r: r.deadline_s - alone[id(r)])  # least slack first
            slack = b.queue[0].deadline_s - now_s - alone[id(b.queue[0])]
            if best is None or slack < best[0]:
                best = (slack, b)
        if best is None:
            return Dispatch(expired=tuple(expired))
        self._last_dispatch_s = now_s
        return Dispatch(self._form_batch(best[1], now_s, ctx), tuple(expired))

    def _probe_worthy(self, r: QueuedRequest, ctx: PolicyContext) -> bool:
        budget = r.deadline_s - r.arrival_s
        return budget >= self.config.probe_min_fraction * ctx.predict_s(r.path, r.cost, 1)

    def _probe(self, now_s: float, ctx: PolicyContext) -> QueuedRequest | None:
        """The request closest to its deadline's reach, to run although predicted late, when
        every queued request is predicted late (see ``probe_interval_s``); else None."""
        queued = [r for r in self.queued() if self._probe_worthy(r, ctx)]
        lateness = [now_s + ctx.predict_s(r.path, r.cost, 1) - r.deadline_s for r in queued]
        if not queued or min(lateness) <= 0:
            return None
        return queued[lateness.index(min(lateness))]

    def _form_batch(self, b: Bucket, now_s: float, ctx: PolicyContext) -> tuple[QueuedRequest, ...]:
        batch = [b.queue[0]]
        units, deadline = b.queue[0].cost, b.queue[0].deadline_s
        for r in b.queue[1:]:
            if not self._fits(b, [*(q.cost for q in batch), r.cost], ctx):
                continue
            finish = now_s + ctx.predict_s(b.path, units + r.cost, len(batch) + 1)
            if finish <= min(deadline, r.deadline_s):
                batch.append(r)
                units, deadline = units + r.cost, min(deadline, r.deadline_s)
        chosen = {id(r) for r in batch}
        b.queue = [r for r in b.queue if id(r) not in chosen]
        return tuple(batch)

    # -- split and merge ----------------------------------------------------------------------
    def adapt(self, now_s: float, ctx: PolicyContext) -> None:
        """One split/merge pass over every path's buckets (see the module docstring)."""
        for path, buckets in self.buckets.items():
            for b in buckets:
                b.decay_rate(now_s, self.config.rate_halflife_s)
            self.buckets[path] = self._merge(self._split(buckets, ctx), ctx)

    def _split(self, buckets: list[Bucket], ctx: PolicyContext) -> list[Bucket]:
        c = self.config
        out: list[Bucket] = []
        for i, b in enumerate(buckets):
            busy = b.rate_hz >= c.merge_rate_hz  # hysteresis: a quiet bucket would merge back
            wants = busy and len(b.recent) >= c.split_min_arrivals
            overflow = not self._fits(b, [r.cost for r in b.queue], ctx)
            padded = c.split_on_padding and b.padding() > c.split_padding
            wants = wants and (padded or overflow)
            room = len(out) + len(buckets) - i < c.max_buckets
            mid = int(np.median(b.recent)) + 1 if b.recent else b.lower
            mid = min(max(mid, b.lower + c.min_width_units), b.upper - c.min_width_units)
            if not (wants and room and b.lower < mid < b.upper):
                out.append(b)
                continue
            lo, hi = Bucket(b.path, b.lower, mid), Bucket(b.path, mid, b.upper)
            for part in (lo, hi):
                part.queue = [r for r in b.queue if part.lower <= r.cost < part.upper]
                part.recent.extend(x for x in b.recent if part.lower <= x < part.upper)
                share = len(part.recent) / len(b.recent)
                part.rate_hz, part.rate_at_s = b.rate_hz * share, b.rate_at_s
            out += [lo, hi]
            self.splits += 1
        return out

    def _merge(self, buckets: list[Bucket], ctx: PolicyContext) -> list[Bucket]:
        c = self.config
        out = [buckets[0]]
        for b in buckets[1:]:
            a = out[-1]
            merged = Bucket(b.path, a.lower, b.upper)
            quiet = a.rate_hz < c.merge_rate_hz and b.rate_hz < c.merge_rate_hz
            if quiet and len(a.queue) + len(b.queue) <= self.cap(merged, ctx):
                merged.queue = a.queue + b.queue
                merged.recent.extend([*a.recent, *b.recent])
                merged.rate_hz, merged.rate_at_s = a.rate_hz + b.rate_hz, b.rate_at_s
                out[-1] = merged
                self.merges += 1
            else:
                out.append(b)
        return out
