"""Images, detections, paths and markers <-> numpy."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from robomr_nodes.convert.detections import (
    BoxList,
    DetectionError,
    boxes_to_detections,
    detections_to_boxes,
)
from robomr_nodes.convert.image import (
    ImageError,
    array_to_image,
    camera_info,
    camera_info_to_k,
    image_to_array,
)
from robomr_nodes.convert.markers import boxes_to_markers
from robomr_nodes.convert.path import PathError, path_to_poses, poses_to_path
from robomr_nodes.messages import deserialize, header, serialize


@pytest.mark.parametrize(
    ("encoding", "dtype", "channels"),
    [
        ("rgb8", np.uint8, 3),
        ("mono8", np.uint8, 1),
        ("32FC1", np.float32, 1),
        ("mono16", np.uint16, 1),
        ("bgra8", np.uint8, 4),
    ],
)
def test_image_round_trip(encoding: str, dtype: type, channels: int) -> None:
    rng = np.random.default_rng(0)
    px = (rng.random((5, 7, channels)) * 200).astype(dtype)
    msg = array_to_image(px, header(1, "cam"), encoding)
    np.testing.assert_array_equal(image_to_array(msg), px)


def test_image_with_row_padding_and_big_endian() -> None:
    px = np.arange(12, dtype=np.uint16).reshape(3, 4, 1)
    msg = array_to_image(px, header(1, "cam"), "mono16")
    rows = px.astype(">u2").reshape(3, 4).tobytes()
    msg.is_bigendian, msg.step = 1, 10
    msg.data = np.frombuffer(
        b"".join(rows[r * 8 : (r + 1) * 8] + b"\0\0" for r in range(3)), np.uint8
    )
    np.testing.assert_array_equal(image_to_array(msg), px)


def test_bad_images_are_errors() -> None:
    with pytest.raises(ImageError, match="needs dtype uint8"):
        array_to_image(np.zeros((2, 2, 3), np.float32), header(1, "c"), "rgb8")
    msg = array_to_image(np.zeros((2, 2, 3), np.uint8), header(1, "c"))
    msg.data = msg.data[:5]
    with pytest.raises(ImageError, match="expected 2 x 6"):
        image_to_array(msg)
    msg.encoding = "yuv422"
    with pytest.raises(ImageError, match="unsupported encoding"):
        image_to_array(msg)


def test_camera_info_keeps_intrinsics() -> None:
    k = np.array([[200.0, 0, 160], [0, 200, 120], [0, 0, 1]])
    np.testing.assert_array_equal(camera_info_to_k(camera_info(header(1, "c"), k, 320, 240)), k)


box_arrays = arrays(
    np.float64, st.tuples(st.integers(0, 6), st.just(7)), elements=st.floats(0.1, 50.0)
)


@settings(max_examples=40, deadline=None)
@given(boxes=box_arrays)
def test_detections_round_trip_through_cdr(boxes: np.ndarray) -> None:
    boxes = boxes.copy()
    boxes[:, 6] = np.linspace(-3.0, 3.0, len(boxes))  # yaw within (-pi, pi]
    labels = ["car"] * len(boxes)
    scores = np.linspace(0.1, 0.9, len(boxes))
    msg = boxes_to_detections(BoxList(boxes, labels, scores), header(3, "lidar"))
    msg = deserialize(
        serialize(msg, "vision_msgs/msg/Detection3DArray"), "vision_msgs/msg/Detection3DArray"
    )
    back = detections_to_boxes(msg)
    # yaw goes through a quaternion: float64 round-off only
    np.testing.assert_allclose(back.boxes, boxes, atol=1e-9)
    np.testing.assert_allclose(back.scores, scores)
    assert back.labels == labels


def test_box_list_rejects_inconsistent_lengths_and_nans() -> None:
    with pytest.raises(DetectionError, match="lengths must agree"):
        BoxList(np.zeros((2, 7)), ["car"], np.ones(2))
    with pytest.raises(DetectionError, match="finite"):
        BoxList(np.full((1, 7), np.nan), ["car"], np.ones(1))


def test_path_round_trip_with_stamps() -> None:
    poses = np.array([[0.0, 0.0, 0.0], [1.0, 0.5, 0.3], [2.0, 1.5, -2.0]])
    stamps = np.array([10, 20, 30])
    poses_back, stamps_back = path_to_poses(poses_to_path(poses, header(10, "map"), stamps))
    np.testing.assert_allclose(poses_back, poses, atol=1e-12)
    np.testing.assert_array_equal(stamps_back, stamps)
    with pytest.raises(PathError):
        poses_to_path(np.array([[0.0, np.nan, 0.0]]), header(1, "map"))


def test_box_markers_clear_then_draw_each_box() -> None:
    arr = boxes_to_markers(
        header(1, "lidar"), np.array([[0, 0, 0, 4, 2, 1.5, 0.2]]), ["car"], np.array([0.8])
    )
    kinds = [(m.action, m.type) for m in arr.markers]
    assert kinds == [(3, 0), (0, 5), (0, 9)]  # DELETEALL, LINE_LIST, TEXT
    assert len(arr.markers[1].points) == 24  # 12 edges
    assert arr.markers[2].text == "car 0.80"
