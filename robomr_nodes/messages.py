"""ROS 2 message types without ROS 2: the rosbags type store (Jazzy) plus vision_msgs.

Every message the stack publishes is a real ROS 2 type, serialized as ROS 2 CDR, so topics can
be recorded into rosbag2 files that ``ros2 bag``, RViz and Foxglove read. vision_msgs is not in
the rosbags store; its definitions (vision_msgs 4.x, as shipped with Humble/Jazzy) are
registered from their .msg text below.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np
from rosbags.typesys import Stores, get_types_from_msg
from rosbags.typesys.store import Typestore

VISION_MSGS: dict[str, str] = {
    "vision_msgs/msg/ObjectHypothesis": "string class_id\nfloat64 score\n",
    "vision_msgs/msg/ObjectHypothesisWithPose": (
        "vision_msgs/ObjectHypothesis hypothesis\ngeometry_msgs/PoseWithCovariance pose\n"
    ),
    "vision_msgs/msg/BoundingBox3D": "geometry_msgs/Pose center\ngeometry_msgs/Vector3 size\n",
    "vision_msgs/msg/Detection3D": (
        "std_msgs/Header header\nvision_msgs/ObjectHypothesisWithPose[] results\n"
        "vision_msgs/BoundingBox3D bbox\nstring id\n"
    ),
    "vision_msgs/msg/Detection3DArray": (
        "std_msgs/Header header\nvision_msgs/Detection3D[] detections\n"
    ),
}


class MessageError(ValueError):
    """Unknown message type, unknown field, or bytes that do not decode as the type."""


@cache
def typestore() -> Typestore:
    """The process-wide type store: ROS 2 Jazzy types plus vision_msgs."""
    from rosbags.typesys import get_typestore

    store = get_typestore(Stores.ROS2_JAZZY)
    for name, text in VISION_MSGS.items():
        store.register(get_types_from_msg(text, name))
    return store


def msg_class(typename: str) -> type:
    """The dataclass of a message type, e.g. ``sensor_msgs/msg/PointCloud2``."""
    try:
        return typestore().types[typename]
    except KeyError:
        raise MessageError(f"unknown message type {typename!r}") from None


def new_message(typename: str, **fields: Any) -> Any:
    """A message of ``typename`` with the given fields and ROS defaults for the rest.

    Defaults are what rclpy gives: zeros, empty strings, empty sequences, default sub-messages,
    and a unit quaternion's ``w = 1`` is *not* implied (ROS defaults to all zeros).

    Raises:
        MessageError: unknown type or a field the type does not have.
    """
    store = typestore()
    if typename not in store.fielddefs:
        raise MessageError(f"unknown message type {typename!r}")
    _, fielddefs = store.fielddefs[typename]
    known = {name for name, _ in fielddefs}
    unknown = set(fields) - known
    if unknown:
        raise MessageError(f"{typename} has no field(s) {sorted(unknown)}; fields: {sorted(known)}")
    values = {name: fields[name] if name in fields else _default(desc) for name, desc in fielddefs}
    return store.types[typename](**values)


_NUMPY_BASE = {
    "bool": np.bool_,
    "byte": np.uint8,
    "char": np.uint8,
    "int8": np.int8,
    "uint8": np.uint8,
    "int16": np.int16,
    "uint16": np.uint16,
    "int32": np.int32,
    "uint32": np.uint32,
    "int64": np.int64,
    "uint64": np.uint64,
    "float32": np.float32,
    "float64": np.float64,
}


def _default(desc: tuple) -> Any:
    kind, rest = desc
    kind = int(kind)
    if kind == 1:  # BASE
        base = rest[0]
        if base == "string":
            return ""
        return False if base == "bool" else 0.0 if base.startswith("float") else 0
    if kind == 2:  # NAME (nested message)
        return new_message(rest)
    if kind == 3:  # ARRAY (fixed length)
        (sub_kind, sub), length = rest
        if int(sub_kind) == 1 and sub[0] in _NUMPY_BASE:
            return np.zeros(length, dtype=_NUMPY_BASE[sub[0]])
        return [_default((sub_kind, sub)) for _ in range(length)]
    if kind == 4:  # SEQUENCE
        (sub_kind, sub), _ = rest
        if int(sub_kind) == 1 and sub[0] in _NUMPY_BASE:
            return np.zeros(0, dtype=_NUMPY_BASE[sub[0]])
        return []
    raise MessageError(f"unsupported field descriptor {desc!r}")


def serialize(msg: Any, typename: str) -> bytes:
    """ROS 2 CDR bytes (with the 4-byte encapsulation header) of a message."""
    return bytes(typestore().serialize_cdr(msg, typename))


def deserialize(raw: bytes | memoryview, typename: str) -> Any:
    """Decodes ROS 2 CDR bytes.

    Raises:
        MessageError: the bytes are truncated or are not a ``typename``.
    """
    try:
        return typestore().deserialize_cdr(bytes(raw), typename)
    except Exception as err:  # rosbags raises several error types for bad bytes
        raise MessageError(f"cannot decode {len(raw)} bytes as {typename}: {err}") from err


def time_msg(stamp_ns: int) -> Any:
    """builtin_interfaces/Time of an int nanosecond timestamp."""
    if stamp_ns < 0:
        raise MessageError(f"timestamp must be >= 0 ns, got {stamp_ns}")
    return new_message(
        "builtin_interfaces/msg/Time",
        sec=int(stamp_ns // 1_000_000_000),
        nanosec=int(stamp_ns % 1_000_000_000),
    )


def stamp_ns(time: Any) -> int:
    """Int nanoseconds of a builtin_interfaces/Time (rosbags or rclpy message)."""
    return int(time.sec) * 1_000_000_000 + int(time.nanosec)


def header(stamp: int, frame_id: str) -> Any:
    """std_msgs/Header stamped ``stamp`` (ns) in ``frame_id``."""
    return new_message("std_msgs/msg/Header", stamp=time_msg(stamp), frame_id=frame_id)


def message_definition(typename: str) -> str:
    """The .msg text of a type and its dependencies (the form rosbag2 stores)."""
    text, _ = typestore().generate_msgdef(typename, ros_version=2)
    return text
