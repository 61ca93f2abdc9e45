"""The MoE language model as a token-level served model (``POST /v1/completions``, OpenAI).

Unlike the detector and the renderer, a language model is served token by token: the replica
does not batch whole requests through ``ModelWorker`` but runs the model's own continuous-
batching engine (``offload.models.lm.engine``) on one worker thread (``EngineRunner``). This class
is what the replica holds for it (``token_level = True``): it loads the weights and tokenizer,
builds the engine with the replica's batching policy and KV budget, and drives united-expert
brownout with the serving issue's control law (``offload.serving.brownout.decide``).

Brownout (``--brownout-law``): ``slack`` (the default, as for the other models): before every
engine step the per-step slack law (``offload.models.lm.slack``) picks the mildest level that
keeps the waiting and running requests in their TTFT/TPOT objectives, predicted with step costs
measured at start-up. ``paper`` (the reference): each finished request's latency normalised by
its objectives, ``max(TTFT / TTFT SLO, TPOT / TPOT SLO)`` (1 = exactly at the SLO), goes to
BrownoutServe's law with SLO 1; every period the P90 decides tau (x 0.8 above 1, + 0.1 below
0.8). Either way the engine serves ``round(tau E)`` of the E experts per layer exactly and the
rest by one united expert (``offload.models.lm.united``). HTTP lives in
``offload.serving.completions``.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path as FilePath
from typing import Any

from offload.serving.brownout import (
    BrownoutConfig,
    BrownoutObservation,
    BrownoutState,
    decide,
)
from offload.serving.model import ModelError

log = logging.getLogger(__name__)
DEFAULT_MODEL = FilePath(__file__).resolve().parents[3] / "models" / "lm" / "mixsga.safetensors"
SLACK_LEVELS = (1.0, 0.75, 0.5, 0.25, 0.0)  # levels the slack law chooses from
# the service's policy names -> the engine's admission policies ("none": one sequence at a time)
_POLICY = {"bucket": "bucket", "fifo": "fifo", "static": "static", "none": "static"}


def expert_level_law(config: BrownoutConfig, n_experts: int) -> Callable[[Sequence[float]], float]:
    """BrownoutServe's law on normalised latencies (1 = the SLO), its tau rounded to whole
    experts (the level the engine applies); the law's own state keeps the unrounded tau."""
    state = [BrownoutState()]

    def law(normalized: Sequence[float]) -> float:
        _, state[0] = decide(BrownoutObservation(tuple(normalized)), state[0], config)
        return round(state[0].tau * n_experts) / n_experts

    return law


def _on_finished(level: Callable[[Sequence[float]], float]) -> Callable[[list[Any]], float]:
    """The runner's hook: finished requests (``runner.Finished``) -> their normalised latency."""
    return lambda done: level([f.normalized for f in done])


class LMModel:
    """A language model behind the service, served token by token.

    Args:
        backend: an ``LMBackend`` (``MoEBackend`` or ``HFBackend``).
        kv_budget_mb: KV-cache memory of all running sequences (MiB).
        tpot_slo_ms: time-per-output-token objective (ms); the TTFT objective is the replica's SLO.
        max_tokens_limit: the largest ``max_tokens`` a request may ask for.
        prefill_guard: admit through the decode-protecting prefill guard
            (``offload.models.lm.prefill_guard``; step costs measured at start, like the slack
            law's); only for the project's own models (``MoEBackend``).
    """

    name = "lm"
    route = "/v1/completions"
    unit = "tokens"
    has_brownout = True
    token_level = True

    def __init__(
        self,
        backend: Any,
        kv_budget_mb: float = 64.0,
        tpot_slo_ms: float = 200.0,
        max_tokens_limit: int = 256,
        prefill_guard: bool = True,
    ) -> None:
        if not kv_budget_mb > 0 or not tpot_slo_ms > 0 or max_tokens_limit < 1:
            raise ModelError("kv_budget_mb and tpot_slo_ms must be > 0, max_tokens_limit >= 1")
        self.backend = backend
        self.has_brownout = bool(backend.supports_brownout)
        self.kv_budget_bytes = int(kv_budget_mb * 2**20)
        self.tpot_slo_s = tpot_slo_ms / 1e3
        self.max_tokens_limit = min(max_tokens_limit, backend.max_seq_len - 1)
        self.prefill_guard = bool(prefill_guard)
        self.max_cost = backend.max_seq_len
        self.version = backend.name
        self.ttft_slo_s = 1.0
        cfg = getattr(backend.model, "cfg", None)  # MoELM's config, else a transformers one
        self.vocab_size = int((cfg or backend.model.config).vocab_size)
        self.runner: Any = None
        self.in_flight = 0  # requests between submission and their last token (event loop only)
        self._ids = itertools.count()

    @classmethod
    def from_options(
        cls,
        model_path: str = "",
        hf_dir: str = "",
        kv_budget_mb: float = 64.0,
        tpot_slo_ms: float = 200.0,
        max_tokens_limit: int = 256,
        prefill_guard: bool = True,
    ) -> LMModel:
        """Loads ``model_path`` (a ``robomr lm train`` .safetensors with ``tokenizer.json``
        beside it; empty: the shipped ``models/lm/mixsga.safetensors``) or, with ``hf_dir``, a
        local Hugging Face checkpoint folder.

        Raises:
            ModelError: missing or unreadable weights or tokenizer, unsupported architecture.
        """
        from offload.models.lm.backend import MoEBackend
        from offload.models.lm.checkpoint import CheckpointError, load_model
        from offload.models.lm.hf import HFBackend, HFCheckpointError
        from offload.models.lm.tokenizer import TokenizerError, load_tokenizer

        try:
            if hf_dir:
                backend: Any = HFBackend(hf_dir)
            else:
                path = FilePath(model_path) if model_path else DEFAULT_MODEL
                model = load_model(path)
                backend = MoEBackend(model, load_tokenizer(path.parent / "tokenizer.json"))
                log.info("lm: %s, brownout by the %s merge", path.name, model.merge_method)
        except (CheckpointError, HFCheckpointError, TokenizerError, OSError) as err:
            hint = "" if model_path or hf_dir else " (train it: docs/lm.md, `robomr lm train`)"
            raise ModelError(f"lm: {err}{hint}") from err
        return cls(backend, kv_budget_mb, tpot_slo_ms, max_tokens_limit, prefill_guard)

    def start(
        self,
        policy: str,
        ttft_slo_s: float,
        brownout: BrownoutConfig | None,
        max_batch: int = 32,
        law_name: str = "slack",
        headroom: float = 0.8,
    ) -> None:
        """Builds the engine and starts its worker thread (the replica calls this once).

        ``law_name``: "slack" (per engine step, ``offload.models.lm.slack``, with step costs
        measured now on this machine's wall clock) or "paper" (BrownoutServe's periodic law).
        """
        from offload.models.lm.engine import Engine, EngineConfig
        from offload.models.lm.prefill_guard import PrefillGuard, PrefillGuardConfig
        from offload.models.lm.runner import EngineRunner
        from offload.models.lm.scheduling import PolicyConfig
        from offload.models.lm.slack import SlackLawConfig
        from offload.models.lm.slack import step_law as step_law_of

        self.ttft_slo_s = ttft_slo_s
        pcfg = PolicyConfig(max_batch=1 if policy == "none" else max_batch)
        on = brownout is not None and self.has_brownout
        slack = on and law_name == "slack"
        guarded = self._guarded()
        costs = self._step_costs(SLACK_LEVELS if on else (1.0,), slack or guarded)
        step_law = None
        if slack:
            cfg = SlackLawConfig(costs, headroom=headroom, max_batch=pcfg.max_batch)
            step_law = step_law_of(cfg)
        guard = PrefillGuard(PrefillGuardConfig(costs)) if guarded else None
        engine = Engine(
            self.backend,
            EngineConfig(self.kv_budget_bytes, _POLICY[policy], pcfg),
            level_law=step_law,
            prefill_guard=guard,
        )
        law = None
        if on and law_name != "slack":
            level = expert_level_law(
                BrownoutConfig(slo_s=1.0, period_s=brownout.period_s),
                self.backend.model.cfg.n_experts,
            )
            law = _on_finished(level)
        period = brownout.period_s if brownout is not None else 5.0
        self.runner = EngineRunner(engine, self.tpot_slo_s, law, period)
        self.runner.start()
        self.warm_up()

    def _guarded(self) -> bool:
        """The prefill guard runs: asked for, and the project's own model (costs measurable)."""
        from offload.models.lm.backend import MoEBackend

        return self.prefill_guard and isinstance(self.backend, MoEBackend)

    def _step_costs(self, levels: tuple[float, ...], needed: bool) -> tuple[Any, ...]:
        """Step costs at ``levels`` measured on this machine's wall clock (about a second per
        level), what the slack law and the prefill guard predict with; () if not ``needed``."""
        from offload.models.lm.stepcost import measure_step_costs

        if not needed:
            return ()
        return measure_step_costs(self.backend.model, levels, clock=time.perf_counter)

    def warm_up(self) -> None:
        """One short greedy completion through the engine (first-call costs before ready)."""
        import asyncio

        async def once() -> None:
            stream = self.runner.submit(self.request([1, 2, 3], 2, 0.0, True))
            while (await stream.get()).finish is None:
                pass

        asyncio.run(once())

    def request(self, prompt: list[int], max_tokens: int, temperature: float, ignore_eos: bool):
        """An engine request arriving now with the replica's TTFT objective."""
        from offload.models.lm.engine import LMRequest

        rid = f"{self.name}-{next(self._ids)}-{time.monotonic_ns()}"
        return LMRequest(
            rid,
            prompt,
            max_tokens,
            self.runner.now,
            self.ttft_slo_s,
            temperature,
            ignore_eos,
            self.tpot_slo_s,
        )

    @property
    def tau(self) -> float:
        return 1.0 if self.runner is None else float(self.runner.engine.brownout_tau)

    def stop(self, drain: bool = True) -> None:
        if self.runner is not None:
            self.runner.stop(drain)
