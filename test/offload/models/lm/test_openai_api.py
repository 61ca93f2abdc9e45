"""The OpenAI completions wire format: request validation (400s) and streamed text assembly."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from offload.models.lm.openai_api import (
    SSE_DONE,
    CompletionRequestError,
    TextAssembler,
    completion_body,
    parse_completion_request,
    sse_chunk,
)


def test_defaults_follow_the_openai_reference():
    p = parse_completion_request({"model": "m", "prompt": "hi"}, 100)
    assert (p.max_tokens, p.temperature, p.stream, p.stop) == (16, 1.0, False, ())


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"model": "m", "prompt": ["hi"]}, "hi"),
        ({"model": "m", "prompt": [5, 6, 7]}, [5, 6, 7]),
        ({"model": "m", "prompt": "hi", "stop": "\n"}, "hi"),
    ],
)
def test_accepted_prompt_forms(body, expected):
    assert parse_completion_request(body, 100).prompt == expected


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ([], None),
        ({"prompt": "hi"}, "model"),
        ({"model": "m"}, "prompt"),
        ({"model": "m", "prompt": ""}, "prompt"),
        ({"model": "m", "prompt": ["a", "b"]}, "prompt"),
        ({"model": "m", "prompt": [1, "x"]}, "prompt"),
        ({"model": "m", "prompt": "hi", "max_tokens": 0}, "max_tokens"),
        ({"model": "m", "prompt": "hi", "max_tokens": 101}, "max_tokens"),
        ({"model": "m", "prompt": "hi", "max_tokens": 2.5}, "max_tokens"),
        ({"model": "m", "prompt": "hi", "max_tokens": "10"}, "max_tokens"),
        ({"model": "m", "prompt": "hi", "temperature": -1}, "temperature"),
        ({"model": "m", "prompt": "hi", "temperature": True}, "temperature"),
        ({"model": "m", "prompt": "hi", "n": 2}, "n"),
        ({"model": "m", "prompt": "hi", "logprobs": 3}, "logprobs"),
        ({"model": "m", "prompt": "hi", "echo": True}, "echo"),
        ({"model": "m", "prompt": "hi", "stop": ["a"] * 5}, "stop"),
        ({"model": "m", "prompt": "hi", "stop": [""]}, "stop"),
        ({"model": "m", "prompt": "hi", "stream": "yes"}, "stream"),
    ],
)
def test_malformed_requests_name_the_field(body, param):
    with pytest.raises(CompletionRequestError) as err:
        parse_completion_request(body, 100)
    assert err.value.param == param


def test_response_shapes_parse_as_openai_objects():
    body = completion_body("cmpl-1", "m", "text", "length", 3, 2)
    assert body["object"] == "text_completion" and body["usage"]["total_tokens"] == 5
    chunk = sse_chunk("cmpl-1", "m", "te", None)
    assert chunk.startswith(b"data: ") and chunk.endswith(b"\n\n")
    assert json.loads(chunk[6:])["choices"][0]["text"] == "te"
    assert SSE_DONE == b"data: [DONE]\n\n"


def chars_decoder(ids: list[int]) -> str:
    return "".join(chr(i) for i in ids)


@settings(max_examples=80, deadline=None)
@given(
    text=st.text(alphabet="ab\n.", min_size=0, max_size=30),
    stop=st.sampled_from(["\n", "ab.", "bb"]),
)
def test_streamed_deltas_equal_the_text_up_to_the_stop_sequence(text, stop):
    asm = TextAssembler(chars_decoder, (stop,))
    out = ""
    for ch in text:
        out += asm.add(ord(ch))
        if asm.stopped:
            break
    out += asm.flush()
    expected = text.split(stop)[0]
    assert out == expected
    assert asm.stopped == (stop in text)


def test_incomplete_utf8_is_held_back():
    pieces = {1: "\ufffd", 2: "é"}  # a byte-level token that ends mid-character, then completes

    def decode(ids: list[int]) -> str:
        return "é" if ids == [1, 2] else pieces[ids[0]]

    asm = TextAssembler(decode, ())
    assert asm.add(1) == "" and asm.add(2) == "é"
