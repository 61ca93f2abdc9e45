"""Token-level serving engine: continuous batching, KV-memory admission, streaming, brownout.

Contract: the owner (the HTTP service's loop, or a benchmark with a virtual clock) calls
``submit`` for new requests, ``step(now_s)`` whenever there is work, and gets the tokens made in
that step as ``TokenEvent``s, in order, to stream to clients. Each step:

1. runs one decode step for every running sequence (one batch, one token each);
2. retires sequences that produced EOS or ``max_tokens`` tokens, freeing their KV reservation;
3. asks the admission policy (``scheduling``) which waiting requests start; each returned group
   is prefilled together (padded to its longest prompt) and yields each request's first token.

Memory: a running sequence reserves ``backend.kv_bytes_for(prompt + max_tokens)`` bytes of the
KV budget for its whole life; the sum never exceeds ``kv_budget_bytes``, so the cache cannot
overflow however long the sequences run. Brownout: ``set_brownout(tau)`` switches the model's
experts (``united``); the control law that picks tau lives with the service: either periodic
(BrownoutServe's dial, the service calls ``set_brownout``) or per step (``level_law``, e.g. the
slack law of ``slack``: called at the start of every step with the waiting and running requests,
it returns the level of that step). ``tokens_at_level`` counts the tokens made at each level.
Optionally a ``prefill_guard`` (``prefill_guard.PrefillGuard``) holds back a group of step 3
for a step while its prefill would make a running sequence miss its TPOT objective and the
group's TTFT objective can afford the wait; ``deferred_groups`` counts the groups held back.
"""

from __future__ import annotations

import collections
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from offload.models.lm.backend import LMBackend
from offload.models.lm.generate import sample
from offload.models.lm.prefill_guard import PrefillGuard
from offload.models.lm.scheduling import ADMIT, AdmitObservation, PolicyConfig, PolicyName
from offload.models.lm.slack import RunningView, SlackObservation, WaitingView

FinishReason = Literal["stop", "length", "abort"]


class EngineError(ValueError):
    """A request does not fit the model or the memory budget, or a setting is out of bounds."""


class PromptTooLongError(EngineError):
    """Prompt + max_tokens exceeds the model's context or the KV budget (HTTP 413)."""


@dataclass(frozen=True)
class EngineConfig:
    """The engine's settings."""

    kv_budget_bytes: int  # KV-cache memory for all running sequences (bytes), >= 1
    policy: PolicyName = "bucket"
    policy_config: PolicyConfig = field(default_factory=PolicyConfig)
    seed: int = 0  # sampling generator seed

    def __post_init__(self) -> None:
        if self.kv_budget_bytes < 1:
            raise EngineError(f"kv_budget_bytes={self.kv_budget_bytes} must be >= 1")
        if self.policy not in ADMIT:
            raise EngineError(f"policy {self.policy!r}; expected one of {', '.join(ADMIT)}")


@dataclass
class LMRequest:
    """One completion request (token ids in, token ids out)."""

    request_id: str
    prompt: list[int]
    max_tokens: int  # tokens to generate at most, >= 1
    arrival_s: float  # engine clock
    ttft_slo_s: float = 1.0  # time-to-first-token objective
    temperature: float = 0.0  # 0 = greedy
    ignore_eos: bool = False  # generate exactly max_tokens (benchmarks)
    tpot_slo_s: float = math.inf  # time-per-output-token objective (the slack law reads it)

    @property
    def prompt_len(self) -> int:
        return len(self.prompt)

    @property
    def ttft_deadline_s(self) -> float:
        return self.arrival_s + self.ttft_slo_s


@dataclass(frozen=True)
class TokenEvent:
    """A token made by one step; ``finish`` is set on a request's last event."""

    request_id: str
    token: int | None  # None only for an abort
    index: int  # 0 for the first generated token
    finish: FinishReason | None


@dataclass
class _Running:
    req: LMRequest
    reserved: int
    first_token_s: float = 0.0  # engine clock of the step that made the first token
    generated: list[int] = field(default_factory=list)


class Engine:
    """Continuous-batching engine over one backend (not thread-safe: one owner calls it)."""

    def __init__(
        self,
        backend: LMBackend,
        cfg: EngineConfig,
        level_law: Callable[[SlackObservation], float] | None = None,
        rate_window_s: float = 0.5,
        prefill_guard: PrefillGuard | None = None,
    ) -> None:
        self.backend = backend
        self.cfg = cfg
        self.level_law = level_law
        self.prefill_guard = prefill_guard
        self.deferred_groups = 0  # admission groups the prefill guard held back a step
        if not rate_window_s > 0:
            raise EngineError(f"rate_window_s={rate_window_s} must be > 0")
        self.rate_window_s = rate_window_s  # arrivals counted for the law's arrival rate
        self._arrivals: collections.deque[float] = collections.deque()
        self.tokens_at_level: dict[float, int] = {}
        self.waiting: list[LMRequest] = []
        self.running: list[_Running] = []
        self._state: Any = None  # the backend's batch state; row i = self.running[i]
        self._gen = torch.Generator().manual_seed(cfg.seed)
        self.brownout_tau = 1.0
        self.steps = itertools.count()

    @property
    def reserved_bytes(self) -> int:
        return sum(r.reserved for r in self.running)

    @property
    def idle(self) -> bool:
        return not self.waiting and not self.running

    def check(self, prompt_len: int, max_tokens: int) -> None:
        """Raises ``PromptTooLongError``/``EngineError`` if such a request can never run."""
        if prompt_len < 1:
            raise EngineError("the prompt is empty")
        if max_tokens < 1:
            raise EngineError(f"max_tokens={max_tokens} must be >= 1")
        total = prompt_len + max_tokens
        if total > self.backend.max_seq_len:
            raise PromptTooLongError(
                f"prompt ({prompt_len} tokens) + max_tokens ({max_tokens}) exceeds the "
                f"model's context of {self.backend.max_seq_len} tokens"
            )
        if self.backend.kv_bytes_for(total) > self.cfg.kv_budget_bytes:
            raise PromptTooLongError(
                f"a {total}-token sequence needs more KV memory than the budget of "
                f"{self.cfg.kv_budget_bytes} bytes"
            )

    def submit(self, req: LMRequest) -> None:
        """Queues a request (validated with ``check``)."""
        self.check(req.prompt_len, req.max_tokens)
        if req.temperature < 0:
            raise EngineError(f"temperature={req.temperature} must be >= 0")
        self.waiting.append(req)
        self._arrivals.append(req.arrival_s)
        while self._arrivals[0] <= req.arrival_s - self.rate_window_s:  # bounded without a law
            self._arrivals.popleft()

    def abort(self, request_id: str) -> bool:
        """Drops a waiting or running request (client gone); True if it was found."""
        for i, req in enumerate(self.waiting):
            if req.request_id == request_id:
                del self.waiting[i]
                return True
        for i, run in enumerate(self.running):
            if run.req.request_id == request_id:
                keep = [j for j in range(len(self.running)) if j != i]
                self._state = self.backend.select(self._state, keep) if keep else None
                del self.running[i]
                return True
        return False

    def set_brownout(self, tau: float) -> None:
        if tau != self.brownout_tau:
            self.backend.set_brownout(tau)
            self.brownout_tau = tau

    def step(self, now_s: float) -> list[TokenEvent]:
        """One scheduling step (see the module docstring); returns the tokens it made."""
        next(self.steps)
        if self.level_law is not None:
            self.set_brownout(self.level_law(self.observe(now_s)))
        events: list[TokenEvent] = []
        old = len(self.running)
        if old:
            last = torch.tensor([r.generated[-1] for r in self.running])
            logits = self.backend.decode(last, self._state)
            self._emit(logits, self.running, events)
        keep = [i for i, r in enumerate(self.running) if not self._done(r)]
        finished = [r for r in self.running if self._done(r)]  # last tokens made this step
        if len(keep) < old:
            self._state = self.backend.select(self._state, keep) if keep else None
        self.running = [self.running[i] for i in keep]
        new_states, new_runs = self._admit(now_s, events, finished)  # memory is free now
        states = ([self._state] if self.running else []) + new_states
        self.running += new_runs
        self._state = self.backend.concat(states) if states else None
        if events:
            tau = self.brownout_tau
            self.tokens_at_level[tau] = self.tokens_at_level.get(tau, 0) + len(events)
        return events

    def observe(self, now_s: float) -> SlackObservation:
        """The waiting and running requests as a per-step brownout law sees them, and the
        arrival rate over the last ``rate_window_s``."""
        while self._arrivals and self._arrivals[0] <= now_s - self.rate_window_s:
            self._arrivals.popleft()
        return SlackObservation(
            now_s,
            self._running_views(),
            tuple(_waiting_view(w) for w in self.waiting),
            len(self._arrivals) / self.rate_window_s,
        )

    def _running_views(self) -> tuple[RunningView, ...]:
        return tuple(
            RunningView(len(r.generated), r.req.max_tokens, r.first_token_s, r.req.tpot_slo_s)
            for r in self.running
        )

    def _protected(self, finished: list[_Running]) -> tuple[RunningView, ...]:
        """The sequences the prefill guard protects this step: the running ones, and those
        that made their last token in it (no tokens left): the step's tokens reach their
        clients when the step, prefills included, is over."""
        done = tuple(
            RunningView(len(r.generated), len(r.generated), r.first_token_s, r.req.tpot_slo_s)
            for r in finished
        )
        return self._running_views() + done

    def _admit(
        self, now_s: float, events: list[TokenEvent], finished: list[_Running]
    ) -> tuple[list[Any], list[_Running]]:
        obs = AdmitObservation(
            waiting=list(self.waiting),
            now_s=now_s,
            free_kv_bytes=self.cfg.kv_budget_bytes - self.reserved_bytes,
            running=len(self.running),
            kv_bytes_for=self.backend.kv_bytes_for,
        )
        groups = ADMIT[self.cfg.policy](obs, self.cfg.policy_config)
        states, runs = [], []
        guard, tau = self.prefill_guard, self.brownout_tau
        protected = self._protected(finished) if guard is not None and groups else ()
        stalled_s = 0.0  # predicted prefill time admitted so far this step (the guard's S)
        for group in groups:
            reqs: list[LMRequest] = group  # type: ignore[assignment]
            if guard is not None:  # ``prefill_guard`` module: hold the group back a step?
                views = [_waiting_view(r) for r in reqs]
                if guard.defers(now_s, tau, protected, views, stalled_s):
                    self.deferred_groups += 1
                    continue
                stalled_s += guard.prefill_s(tau, views)
            taken = {id(r) for r in reqs}
            self.waiting = [r for r in self.waiting if id(r) not in taken]
            logits, state = self.backend.prefill([r.prompt for r in reqs])
            group_runs = [
                _Running(r, self.backend.kv_bytes_for(r.prompt_len + r.max_tokens), now_s)
                for r in reqs
            ]
            self._emit(logits, group_runs, events)
            alive = [i for i, r in enumerate(group_runs) if not self._done(r)]
            if alive:
                states.append(
                    state if len(alive) == len(reqs) else self.backend.select(state, alive)
                )
                runs += [group_runs[i] for i in alive]
        return states, runs

    def _emit(self, logits: torch.Tensor, runs: list[_Running], events: list[TokenEvent]) -> None:
        temps = torch.tensor([r.req.temperature for r in runs])
        tokens = sample(logits, temps, self._gen).tolist()
        for run, tok in zip(runs, tokens, strict=True):
            run.generated.append(tok)
            events.append(
                TokenEvent(run.req.request_id, tok, len(run.generated) - 1, self._finish(run))
            )

    def _finish(self, run: _Running) -> FinishReason | None:
        if not run.req.ignore_eos and run.generated[-1] == self.backend.eos_id:
            return "stop"
        if len(run.generated) >= run.req.max_tokens:
            return "length"
        return None

    def _done(self, run: _Running) -> bool:
        return self._finish(run) is not None


def _waiting_view(req: LMRequest) -> WaitingView:
    return WaitingView(req.prompt_len, req.max_tokens, req.ttft_deadline_s, req.tpot_slo_s)
