"""The binary body format: round trips, and every malformed body is a WireError (never a crash,
never a silent misread), with size limits checked before allocation."""

from __future__ import annotations

import contextlib
import json
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from offload.serving.wire import (
    DTYPES,
    MAGIC,
    TooLargeError,
    WireError,
    WireLimits,
    decode,
    encode,
)

arrays = hnp.arrays(
    dtype=st.sampled_from(DTYPES),
    shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=6),
)


@settings(max_examples=80, deadline=None)
@given(items=st.dictionaries(st.text(min_size=1, max_size=8), arrays, max_size=4))
def test_arrays_round_trip_exactly(items: dict[str, np.ndarray]) -> None:
    msg = decode(encode({"model": "x", "n": 3}, items))
    assert msg.header == {"model": "x", "n": 3}
    assert list(msg.arrays) == list(items)
    for name, arr in items.items():
        assert msg.arrays[name].dtype.str == arr.dtype.str
        np.testing.assert_array_equal(msg.arrays[name], arr)


@settings(max_examples=200, deadline=None)
@given(body=st.binary(max_size=300))
def test_random_bytes_are_refused_with_a_wire_error(body: bytes) -> None:
    with contextlib.suppress(WireError):
        decode(body)


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_corrupted_valid_bodies_are_refused_or_decode_consistently(data) -> None:
    body = bytearray(encode({"k": 1}, {"points": np.ones((4, 3), np.float32)}))
    i = data.draw(st.integers(0, len(body) - 1))
    body[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(body)))
    try:
        msg = decode(bytes(body[:cut]))
    except WireError:
        return
    # whatever decodes must account for every byte exactly (no trailing or missing data)
    used = sum(a.nbytes for a in msg.arrays.values())
    header_len = struct.unpack_from("<I", body, 4)[0]
    assert 8 + header_len + used == cut


def _body(header: dict, payload: bytes = b"") -> bytes:
    text = json.dumps(header).encode()
    return MAGIC + struct.pack("<I", len(text)) + text + payload


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"XXXX" + struct.pack("<I", 2) + b"{}", "must start with"),
        (MAGIC + struct.pack("<I", 50) + b"{}", "runs past"),
        (_body([]), "JSON object"),  # type: ignore[arg-type]
        (_body({"arrays": [{"name": "p", "dtype": ">f4", "shape": [1]}]}, b"0000"), "dtype"),
        (_body({"arrays": [{"name": "p", "dtype": "|O", "shape": [1]}]}, b"0" * 8), "dtype"),
        (_body({"arrays": [{"name": "p", "dtype": "<f4", "shape": [2]}]}, b"0000"), "needs 8"),
        (_body({"arrays": [{"name": "p", "dtype": "<f4", "shape": [1]}]}, b"00000"), "follow"),
        (_body({"arrays": [{"name": "p", "dtype": "<f4", "shape": [-1]}]}), "ints >= 0"),
        (_body({"arrays": [{"name": "p", "dtype": "<f4", "shape": [True]}]}), "ints >= 0"),
        (_body({"arrays": [{"name": "p", "dtype": "<f4"}]}), "exactly name"),
        (_body({"arrays": "p"}), "must be a list"),
        (
            _body(
                {
                    "arrays": [
                        {"name": "p", "dtype": "|u1", "shape": [1]},
                        {"name": "p", "dtype": "|u1", "shape": [1]},
                    ]
                },
                b"ab",
            ),
            "twice",
        ),
        (MAGIC + struct.pack("<I", 4) + b"\xff\xfe{}", "UTF-8 JSON"),
    ],
)
def test_malformed_bodies_name_the_problem(body: bytes, fragment: str) -> None:
    with pytest.raises(WireError, match=fragment):
        decode(body)


@pytest.mark.parametrize(
    ("body", "limits"),
    [
        (encode({}, {"p": np.zeros(100, np.float32)}), WireLimits(max_body_bytes=256)),
        (encode({"x": "y" * 100}), WireLimits(max_header_bytes=50)),
        (encode({}, {f"a{i}": np.zeros(1, np.uint8) for i in range(3)}), WireLimits(max_arrays=2)),
        # a header that claims a huge array is refused before anything is allocated
        (_body({"arrays": [{"name": "p", "dtype": "<f8", "shape": [10**12]}]}), WireLimits()),
    ],
)
def test_limits_answer_too_large(body: bytes, limits: WireLimits) -> None:
    with pytest.raises(TooLargeError):
        decode(body, limits)


def test_encode_converts_big_endian_and_refuses_objects() -> None:
    msg = decode(encode({}, {"p": np.arange(3, dtype=">i4")}))
    assert msg.arrays["p"].dtype.str == "<i4" and msg.arrays["p"].tolist() == [0, 1, 2]
    with pytest.raises(WireError, match="dtype"):
        encode({}, {"p": np.array(["a"], dtype=object)})
    with pytest.raises(WireError, match="reserved"):
        encode({"arrays": 1})


@pytest.mark.parametrize(
    ("arrays", "call", "fragment"),
    [
        ({}, lambda m: m.array("points", "<f4", 2), "missing"),
        ({"points": np.zeros((3, 3), np.float64)}, lambda m: m.array("points", "<f4", 2), "dtype"),
        ({"points": np.zeros(3, np.float32)}, lambda m: m.array("points", "<f4", 2), "dimensions"),
        (
            {"points": np.zeros((3, 2), np.float32)},
            lambda m: m.array("points", "<f4", 2, (0, 3)),
            "at least 3",
        ),
    ],
)
def test_typed_array_access_checks_dtype_and_shape(arrays, call, fragment) -> None:
    with pytest.raises(WireError, match=fragment):
        call(decode(encode({}, arrays)))


@pytest.mark.parametrize(
    ("header", "kind", "fragment"),
    [({}, int, "missing"), ({"w": True}, int, "finite int"), ({"w": "3"}, int, "finite int")],
)
def test_typed_header_fields(header, kind, fragment) -> None:
    with pytest.raises(WireError, match=fragment):
        decode(encode(header)).field("w", kind)
    assert decode(encode({"w": 3})).field("w", float) == 3.0
