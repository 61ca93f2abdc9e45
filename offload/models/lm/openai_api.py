"""The OpenAI completions wire format, as pure functions (no HTTP here; the service is thin).

Follows the OpenAI API reference for ``POST /v1/completions`` and ``GET /v1/models`` (the shapes
the ``openai`` Python client parses): a request body with ``model``, ``prompt``, ``max_tokens``
(default 16), ``temperature`` (default 1), ``stream``, ``stop``; a ``text_completion`` object, or
with ``stream`` server-sent events of ``text_completion`` chunks ending in ``data: [DONE]``.
Supported subset: one prompt (a string, a list with one string, or a list of token ids), n = 1,
no logprobs/echo/suffix/best_of; asking for those is a 400 naming the field, not a silent
difference. A prompt longer than the model's context is a 413 (never truncated silently).
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

MAX_STOP_SEQUENCES = 4  # as OpenAI
MAX_STOP_CHARS = 64


class CompletionRequestError(ValueError):
    """The request body is not a valid completions request (HTTP 400)."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


@dataclass(frozen=True)
class CompletionParams:
    """A validated completions request."""

    model: str
    prompt: str | list[int]  # text, or token ids
    max_tokens: int
    temperature: float
    stream: bool
    stop: tuple[str, ...]
    ignore_eos: bool  # extension (vLLM's name): generate exactly max_tokens


def _number(body: dict[str, Any], name: str, default: float, lo: float, hi: float) -> float:
    value = body.get(name, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
        raise CompletionRequestError(f"'{name}' must be a number in [{lo}, {hi}]", name)
    return float(value)


def parse_completion_request(body: Any, max_tokens_limit: int) -> CompletionParams:
    """Validates a decoded JSON body.

    Raises:
        CompletionRequestError: a field is missing, of the wrong type, out of range, or asks for
            an unsupported feature; the message names the field.
    """
    if not isinstance(body, dict):
        raise CompletionRequestError("the request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise CompletionRequestError("'model' is required and must be a string", "model")
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    is_ids = isinstance(prompt, list) and all(
        isinstance(t, int) and not isinstance(t, bool) for t in prompt
    )
    if not (isinstance(prompt, str) or is_ids) or not prompt:
        raise CompletionRequestError(
            "'prompt' must be a non-empty string, a list with one string, or a list of token ids",
            "prompt",
        )
    for name, allowed in (("n", (None, 1)), ("best_of", (None, 1)), ("echo", (None, False))):
        if body.get(name) not in allowed:
            raise CompletionRequestError(f"'{name}' other than {allowed[1]} is not supported", name)
    for name in ("logprobs", "suffix"):
        if body.get(name) is not None:
            raise CompletionRequestError(f"'{name}' is not supported", name)
    max_tokens = _number(body, "max_tokens", 16, 1, max_tokens_limit)
    if max_tokens != int(max_tokens):
        raise CompletionRequestError("'max_tokens' must be an integer", "max_tokens")
    stop = body.get("stop")
    stops = (stop,) if isinstance(stop, str) else tuple(stop or ())
    if (
        not all(isinstance(s, str) and 0 < len(s) <= MAX_STOP_CHARS for s in stops)
        or len(stops) > MAX_STOP_SEQUENCES
    ):
        raise CompletionRequestError(
            f"'stop' must be a string or up to {MAX_STOP_SEQUENCES} non-empty strings of at most "
            f"{MAX_STOP_CHARS} characters",
            "stop",
        )
    stream = body.get("stream", False)
    ignore_eos = body.get("ignore_eos", False)
    if not isinstance(stream, bool) or not isinstance(ignore_eos, bool):
        raise CompletionRequestError("'stream' and 'ignore_eos' must be booleans", "stream")
    return CompletionParams(
        model=model,
        prompt=prompt,
        max_tokens=int(max_tokens),
        temperature=_number(body, "temperature", 1.0, 0.0, 2.0),
        stream=stream,
        stop=stops,
        ignore_eos=ignore_eos,
    )


def error_body(
    message: str, kind: str = "invalid_request_error", param: str | None = None
) -> dict[str, Any]:
    """OpenAI's error object."""
    return {"error": {"message": message, "type": kind, "param": param, "code": None}}


def new_completion_id() -> str:
    return f"cmpl-{uuid.uuid4().hex}"


def completion_body(
    completion_id: str,
    model: str,
    text: str,
    finish: str | None,
    prompt_tokens: int,
    completion_tokens: int,
) -> dict[str, Any]:
    """A whole ``text_completion`` object (non-streaming response)."""
    return {
        "id": completion_id,
        "object": "text_completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"text": text, "index": 0, "logprobs": None, "finish_reason": finish}],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def sse_chunk(completion_id: str, model: str, text: str, finish: str | None) -> bytes:
    """One server-sent event carrying a ``text_completion`` chunk."""
    body = {
        "id": completion_id,
        "object": "text_completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"text": text, "index": 0, "logprobs": None, "finish_reason": finish}],
    }
    return f"data: {json.dumps(body)}\n\n".encode()


SSE_DONE = b"data: [DONE]\n\n"


def models_body(names: list[str], created: int) -> dict[str, Any]:
    """``GET /v1/models``."""
    return {
        "object": "list",
        "data": [
            {"id": n, "object": "model", "created": created, "owned_by": "robomr"} for n in names
        ],
    }


class TextAssembler:
    """Turns generated token ids into text deltas, holding back what could still become a stop
    sequence or an incomplete UTF-8 character; ``stopped`` is set once a stop sequence appears
    (the text before it is kept, the stop sequence itself is not returned, as OpenAI does)."""

    def __init__(self, decode: Any, stops: tuple[str, ...]) -> None:
        self._decode = decode
        self._stops = stops
        self._ids: list[int] = []
        self._sent = 0  # characters already returned
        self.stopped = False

    def add(self, token: int) -> str:
        """The new text that is safe to send after ``token``."""
        self._ids.append(token)
        text = self._decode(self._ids)
        for stop in self._stops:
            at = text.find(stop, max(0, self._sent - len(stop)))
            if at >= 0:
                self.stopped = True
                delta = text[self._sent : at]
                self._sent = at
                return delta
        if text.endswith("\ufffd"):  # a byte-level token ended inside a UTF-8 character
            return ""
        hold = max((len(s) - 1 for s in self._stops), default=0)
        safe = max(self._sent, len(text) - hold)
        delta = text[self._sent : safe]
        self._sent = safe
        return delta

    def flush(self) -> str:
        """The held-back text at the end of generation (no stop sequence appeared)."""
        if self.stopped:
            return ""
        text = self._decode(self._ids)
        delta = text[self._sent :]
        self._sent = len(text)
        return delta
