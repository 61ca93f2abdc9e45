"""Message construction and ROS 2 CDR serialization (incl. vision_msgs)."""

from __future__ import annotations

import numpy as np
import pytest

from robomr_nodes.messages import (
    MessageError,
    deserialize,
    header,
    message_definition,
    new_message,
    serialize,
    stamp_ns,
    time_msg,
)


def test_new_message_fills_ros_defaults() -> None:
    marker = new_message("visualization_msgs/msg/Marker", ns="x")
    assert marker.ns == "x" and marker.id == 0 and marker.points == []
    assert marker.pose.orientation.w == 0.0  # ROS default, not identity
    info = new_message("sensor_msgs/msg/CameraInfo")
    assert info.k.shape == (9,) and info.k.dtype == np.float64


def test_unknown_type_and_field_are_clear_errors() -> None:
    with pytest.raises(MessageError, match="unknown message type"):
        new_message("nope_msgs/msg/Nothing")
    with pytest.raises(MessageError, match=r"has no field\(s\) \['colour'\]"):
        new_message("visualization_msgs/msg/Marker", colour=1)


@pytest.mark.parametrize("stamp", [0, 1, 1_000_000_000, 1_700_000_000_123_456_789])
def test_time_round_trip(stamp: int) -> None:
    assert stamp_ns(time_msg(stamp)) == stamp


def test_vision_msgs_round_trip_through_cdr() -> None:
    det = new_message("vision_msgs/msg/Detection3D", header=header(5, "lidar"), id="7")
    det.bbox.size.x = 4.5
    det.results.append(
        new_message(
            "vision_msgs/msg/ObjectHypothesisWithPose",
            hypothesis=new_message("vision_msgs/msg/ObjectHypothesis", class_id="car", score=0.9),
        )
    )
    arr = new_message(
        "vision_msgs/msg/Detection3DArray", header=header(5, "lidar"), detections=[det]
    )
    back = deserialize(
        serialize(arr, "vision_msgs/msg/Detection3DArray"), "vision_msgs/msg/Detection3DArray"
    )
    assert back.detections[0].bbox.size.x == 4.5
    assert back.detections[0].results[0].hypothesis.class_id == "car"
    assert back.detections[0].id == "7"
    assert "vision_msgs/Detection3D[] detections" in message_definition(
        "vision_msgs/msg/Detection3DArray"
    )


def test_truncated_bytes_give_message_error() -> None:
    raw = serialize(new_message("std_msgs/msg/String", data="hello world"), "std_msgs/msg/String")
    with pytest.raises(MessageError, match="cannot decode"):
        deserialize(raw[:9], "std_msgs/msg/String")
