"""OpenAI-compatible ``POST /v1/completions`` of a replica serving a token-level language model.

Thin: the body is validated by ``offload.models.lm.openai_api`` (pure functions), the request
goes to the model's engine runner (``offload.serving.models.lm``), and its tokens come back
either as one ``text_completion`` object or, with ``"stream": true``, as server-sent events
ending in ``data: [DONE]`` (what the ``openai`` client and ``curl -N`` read). A client that goes
away mid-stream aborts its request, so its KV reservation is freed at the next engine step.

Errors use OpenAI's error object: 400 malformed JSON or field (the field named in ``param``),
401 missing or wrong bearer token, 404 unknown model, 413 prompt + max_tokens longer than the
context or the KV budget (never truncated silently), 429 too many requests in flight, 503 not
ready or draining.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from offload.models.lm.engine import EngineError, PromptTooLongError
from offload.models.lm.openai_api import (
    SSE_DONE,
    CompletionRequestError,
    TextAssembler,
    completion_body,
    error_body,
    new_completion_id,
    parse_completion_request,
    sse_chunk,
)
from offload.serving.auth import authorized

MAX_BODY_BYTES = 1 << 20  # a completions body is JSON text: 1 MiB is far beyond any prompt


def _error(
    code: int, message: str, kind: str, param: str | None = None, headers: Any = None
) -> JSONResponse:
    return JSONResponse(error_body(message, kind, param), status_code=code, headers=headers)


def add_completion_routes(app: FastAPI, replica: Any, name: str) -> None:
    """Mounts ``POST /v1/completions`` for the token-level model ``name`` of ``replica``."""

    async def completions(request: Request) -> Response:
        return await _complete(replica, name, request)

    app.add_api_route("/v1/completions", completions, methods=["POST"], name=name)


async def _complete(replica: Any, name: str, request: Request) -> Response:
    count = replica.metrics.requests
    if not authorized(request.headers.get("authorization"), replica.token):
        count.labels(name, "", "401").inc()
        return _error(401, "missing or wrong bearer token", "authentication_error")
    model = replica.engines.get(name)
    if model is None or replica.draining:
        why = replica.load_error or ("draining" if replica.draining else "the model is loading")
        return _error(503, why, "service_unavailable", headers={"Retry-After": "1"})
    body = await request.body()
    try:
        if len(body) > MAX_BODY_BYTES:
            raise PromptTooLongError(f"body of {len(body)} bytes exceeds {MAX_BODY_BYTES}")
        try:
            data = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise CompletionRequestError(f"the body is not JSON: {err}") from err
        params = parse_completion_request(data, model.max_tokens_limit)
        if params.model not in (name, model.backend.name):
            count.labels(name, "", "404").inc()
            return _error(404, f"model {params.model!r} is not served here", "not_found", "model")
        ids = _prompt_ids(model, params.prompt)
        if model.in_flight >= replica.config.max_queued:
            count.labels(name, "", "429").inc()
            msg = f"{model.in_flight} requests in flight"
            return _error(429, msg, "rate_limit_error", headers={"Retry-After": "1"})
        req = model.request(ids, params.max_tokens, params.temperature, params.ignore_eos)
        stream = model.runner.submit(req)
    except PromptTooLongError as err:
        count.labels(name, "", "413").inc()
        return _error(413, str(err), "invalid_request_error", "prompt")
    except CompletionRequestError as err:
        count.labels(name, "", "400").inc()
        return _error(400, str(err), "invalid_request_error", err.param)
    except EngineError as err:
        count.labels(name, "", "400").inc()
        return _error(400, str(err), "invalid_request_error")
    count.labels(name, "full", "200").inc()
    cid = new_completion_id()
    tokens = _tokens(model, req.request_id, stream, TextAssembler(model.backend.decode_text,
                                                                  params.stop))  # fmt: skip
    if params.stream:

        async def events() -> AsyncIterator[bytes]:
            async for text, finish, _ in tokens:
                if text or finish is not None:
                    yield sse_chunk(cid, params.model, text, finish)
            yield SSE_DONE

        return StreamingResponse(events(), media_type="text/event-stream")
    parts: list[str] = []
    last: tuple[str | None, int] = (None, 0)
    async for text, finish, n in tokens:
        parts.append(text)
        last = (finish, n)
    body_out = completion_body(cid, params.model, "".join(parts), last[0], len(ids), last[1])
    return JSONResponse(body_out)


def _prompt_ids(model: Any, prompt: str | list[int]) -> list[int]:
    if isinstance(prompt, str):
        return model.backend.encode(prompt)
    vocab = model.vocab_size
    if any(not 0 <= t < vocab for t in prompt):
        raise CompletionRequestError(f"prompt token ids must be in [0, {vocab})", "prompt")
    return list(prompt)


async def _tokens(
    model: Any, rid: str, stream: asyncio.Queue, text: TextAssembler
) -> AsyncIterator[tuple[str, str | None, int]]:
    """(text delta, finish reason or None, tokens so far) per token; aborts the request if the
    client leaves or a stop sequence ends it early."""
    model.in_flight += 1
    done, n = False, 0
    try:
        while not done:
            event = await stream.get()
            finish = event.finish
            if event.token is not None and finish != "abort":
                n += 1
                eos = finish == "stop" and event.token == model.backend.eos_id
                delta = "" if eos else text.add(event.token)
                if text.stopped and finish is None:
                    model.runner.abort(rid)  # a stop sequence: no more tokens are needed
                    finish = "stop"
            else:
                delta = ""
            done = finish is not None
            if done:
                delta += text.flush()
            yield delta, ("stop" if finish == "abort" else finish), n
    finally:
        model.in_flight -= 1
        if not done:
            model.runner.abort(rid)  # the client went away
