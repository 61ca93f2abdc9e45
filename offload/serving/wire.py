"""The binary body format of the inference service: a small JSON header plus raw arrays.

Layout (all integers little-endian)::

    b"RMR1"                 4 bytes   magic and format version
    header_len              uint32    bytes of the JSON header that follows, <= MAX_HEADER_BYTES
    header                  UTF-8 JSON object; key "arrays" lists the arrays that follow:
                            [{"name": str, "dtype": one of DTYPES, "shape": [int, ...]}, ...]
    array bytes             each array's raw C-ordered bytes, in the listed order, no padding

The body ends exactly after the last array: trailing or missing bytes are an error. Only the
dtypes in :data:`DTYPES` (explicitly little-endian) are accepted, so nothing is ever unpickled
or interpreted as code, and every size is checked against :class:`WireLimits` before anything
is allocated. Requests and responses use the same format (``CONTENT_TYPE``).
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

MAGIC = b"RMR1"
CONTENT_TYPE = "application/x-robomr-arrays"
_PREFIX = struct.Struct("<4sI")
# Accepted element types (numpy dtype strings): explicitly little-endian or single-byte.
DTYPES: tuple[str, ...] = ("<f4", "<f8", "<i4", "<i8", "<u2", "|u1")


class WireError(ValueError):
    """A body that is not a valid message; the text says which field and which limit."""


class TooLargeError(WireError):
    """A body, header or array larger than the configured limit (HTTP 413)."""


@dataclass(frozen=True)
class WireLimits:
    """Size limits checked while decoding.

    Attributes:
        max_body_bytes: whole body, >= 64.
        max_header_bytes: the JSON header, >= 2 (the body limit applies too).
        max_arrays: arrays per message, >= 0.
        max_dims: dimensions per array, >= 1.
    """

    max_body_bytes: int = 64 * 2**20
    max_header_bytes: int = 64 * 2**10
    max_arrays: int = 8
    max_dims: int = 4

    def __post_init__(self) -> None:
        if self.max_body_bytes < 64:
            raise WireError(f"max_body_bytes={self.max_body_bytes} must be >= 64")
        if self.max_header_bytes < 2:
            raise WireError(f"max_header_bytes={self.max_header_bytes} must be >= 2")
        if self.max_arrays < 0 or self.max_dims < 1:
            raise WireError("max_arrays must be >= 0 and max_dims >= 1")


@dataclass(frozen=True)
class Message:
    """A decoded body: the header's fields (without "arrays") and the named arrays."""

    header: dict[str, Any]
    arrays: dict[str, np.ndarray]

    def array(
        self, name: str, dtype: str, ndim: int, min_shape: tuple[int, ...] = ()
    ) -> np.ndarray:
        """The array ``name`` checked for dtype, dimensions and minimum extents.

        Raises:
            WireError: missing, or of another dtype, rank or a smaller extent.
        """
        if name not in self.arrays:
            raise WireError(f"array {name!r} is missing (got {sorted(self.arrays)})")
        arr = self.arrays[name]
        if arr.dtype.str != np.dtype(dtype).str:
            raise WireError(f"array {name!r} must have dtype {dtype}, got {arr.dtype.str}")
        if arr.ndim != ndim:
            raise WireError(f"array {name!r} must have {ndim} dimensions, got shape {arr.shape}")
        for axis, least in enumerate(min_shape):
            if arr.shape[axis] < least:
                raise WireError(
                    f"array {name!r} needs at least {least} entries on axis {axis}, "
                    f"got shape {list(arr.shape)}"
                )
        return arr

    def field(self, name: str, kind: type, default: Any = None) -> Any:
        """Header field ``name`` of type ``kind`` (int fields reject bools), or ``default``.

        Raises:
            WireError: present with another type, or absent without a default.
        """
        if name not in self.header:
            if default is None:
                raise WireError(f"header field {name!r} is missing")
            return default
        value = self.header[name]
        ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value, ok = float(value), True
        if not ok or (isinstance(value, float) and not math.isfinite(value)):
            raise WireError(f"header field {name!r} must be a finite {kind.__name__}")
        return value


def encode(header: dict[str, Any], arrays: dict[str, np.ndarray] | None = None) -> bytes:
    """One body from header fields (JSON-serialisable, no key "arrays") and named arrays.

    Raises:
        WireError: a reserved header key, an array dtype outside DTYPES (after converting to
            little-endian), or a header that is not JSON-serialisable.
    """
    if "arrays" in header:
        raise WireError('header key "arrays" is reserved for the array table')
    specs, chunks = [], []
    for name, value in (arrays or {}).items():
        arr = np.ascontiguousarray(value)
        arr = arr.astype(arr.dtype.newbyteorder("<"), copy=False)
        if arr.dtype.str not in DTYPES:
            raise WireError(f"array {name!r}: dtype {arr.dtype.str} is not one of {DTYPES}")
        specs.append({"name": name, "dtype": arr.dtype.str, "shape": list(arr.shape)})
        chunks.append(arr.tobytes())
    try:
        text = json.dumps({**header, "arrays": specs}, allow_nan=False).encode()
    except (TypeError, ValueError) as err:
        raise WireError(f"header is not JSON-serialisable: {err}") from err
    return b"".join([_PREFIX.pack(MAGIC, len(text)), text, *chunks])


def decode(body: bytes, limits: WireLimits | None = None) -> Message:
    """Parses and checks a body (see the module docstring).

    Raises:
        TooLargeError: the body, header or an array exceeds ``limits``.
        WireError: anything else malformed (bad magic, JSON, dtype, shape or length).
    """
    lim = limits or WireLimits()
    if len(body) > lim.max_body_bytes:
        raise TooLargeError(f"body of {len(body)} bytes exceeds the limit {lim.max_body_bytes}")
    if len(body) < _PREFIX.size:
        raise WireError(f"body of {len(body)} bytes is shorter than the {_PREFIX.size}-byte prefix")
    magic, header_len = _PREFIX.unpack_from(body)
    if magic != MAGIC:
        raise WireError(f"body must start with {MAGIC!r} (got {magic!r}); see offload.serving.wire")
    if header_len > lim.max_header_bytes:
        raise TooLargeError(f"header of {header_len} bytes exceeds {lim.max_header_bytes}")
    end = _PREFIX.size + header_len
    if end > len(body):
        raise WireError(f"header length {header_len} runs past the end of the body")
    try:
        header = json.loads(body[_PREFIX.size : end].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise WireError(f"header is not UTF-8 JSON: {err}") from err
    if not isinstance(header, dict):
        raise WireError("header must be a JSON object")
    specs = header.pop("arrays", [])
    if not isinstance(specs, list):
        raise WireError('header "arrays" must be a list')
    if len(specs) > lim.max_arrays:
        raise TooLargeError(f"{len(specs)} arrays exceed the limit {lim.max_arrays}")
    arrays: dict[str, np.ndarray] = {}
    offset = end
    for i, spec in enumerate(specs):
        name, dtype, shape = _check_spec(i, spec, lim)
        if name in arrays:
            raise WireError(f"array {name!r} is listed twice")
        nbytes = math.prod(shape) * dtype.itemsize
        if offset + nbytes > len(body):
            raise WireError(
                f"array {name!r} {shape} {dtype.str} needs {nbytes} bytes, "
                f"{len(body) - offset} are left"
            )
        arrays[name] = np.frombuffer(body, dtype=dtype, count=math.prod(shape), offset=offset)
        arrays[name] = arrays[name].reshape(shape)
        offset += nbytes
    if offset != len(body):
        raise WireError(f"{len(body) - offset} bytes follow the last array")
    return Message(header, arrays)


def _check_spec(i: int, spec: Any, lim: WireLimits) -> tuple[str, np.dtype, tuple[int, ...]]:
    if not isinstance(spec, dict) or set(spec) != {"name", "dtype", "shape"}:
        raise WireError(f"arrays[{i}] must be an object with exactly name, dtype and shape")
    name, dtype, shape = spec["name"], spec["dtype"], spec["shape"]
    if not isinstance(name, str) or not 0 < len(name) <= 64:
        raise WireError(f"arrays[{i}].name must be a string of 1..64 characters")
    if dtype not in DTYPES:
        raise WireError(f"arrays[{i}] ({name!r}): dtype {dtype!r} is not one of {DTYPES}")
    if not isinstance(shape, list) or not 1 <= len(shape) <= lim.max_dims:
        raise WireError(f"arrays[{i}] ({name!r}): shape must be a list of 1..{lim.max_dims} ints")
    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape):
        raise WireError(f"arrays[{i}] ({name!r}): shape entries must be ints >= 0, got {shape}")
    if math.prod(shape) * np.dtype(dtype).itemsize > lim.max_body_bytes:
        raise TooLargeError(f"array {name!r} of shape {shape} exceeds the body limit")
    return name, np.dtype(dtype), tuple(shape)
