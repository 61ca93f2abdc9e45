"""Targets and decoding are inverse; peak finding, thresholds and rotated NMS."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from perception.model import DIRECTION_CHANNELS, REGRESSION_CHANNELS, HeadOutput
from perception.postprocess import Detections, decode, rotated_nms
from perception.targets import TargetConfig, TargetError, build_targets, gaussian_radius

BOXES = np.array(
    [
        [3.3, -2.1, -1.0, 4.5, 1.8, 1.5, 0.4],
        [-7.9, 6.05, -0.8, 8.0, 2.5, 3.1, -2.9],
        [9.5, 9.5, -1.1, 4.0, 1.7, 1.4, 3.0],
    ]
)
LABELS = np.array([0, 2, 1])


def head_from_targets(boxes, labels, config) -> HeadOutput:
    """A perfect network output: logit +10 at the centre cells, -10 elsewhere."""
    t = build_targets(boxes, labels, config, TargetConfig())
    _, h, w = t.heatmap.shape
    logits = np.where(t.heatmap >= 1.0, 10.0, -10.0).astype(np.float32)
    reg = np.zeros((len(REGRESSION_CHANNELS), h * w), dtype=np.float32)
    reg[:, t.indices[t.mask]] = t.regression[t.mask].T
    direction = np.zeros((len(DIRECTION_CHANNELS), h * w), dtype=np.float32)
    direction[:, t.indices[t.mask]] = t.direction[t.mask].T
    return HeadOutput(
        torch.from_numpy(logits[None]),
        torch.from_numpy(reg.reshape(1, -1, h, w)),
        torch.from_numpy(direction.reshape(1, -1, h, w)),
    )


def test_decoding_the_targets_recovers_the_boxes(small_config):
    (det,) = decode(head_from_targets(BOXES, LABELS, small_config), small_config)
    order = np.argsort(det.boxes[:, 0])
    expected = np.argsort(BOXES[:, 0])
    # float32 targets and decode arithmetic on 10 m coordinates: ~1e-6 m; 1e-4 leaves margin.
    np.testing.assert_allclose(det.boxes[order], BOXES[expected], atol=1e-4)
    assert det.labels[order].tolist() == LABELS[expected].tolist()
    assert np.all(det.scores > 0.99)


@pytest.mark.parametrize("yaw", np.linspace(-np.pi, np.pi, 17))
@pytest.mark.parametrize("noise", [0.0, 0.4])
def test_direction_vector_picks_the_heading_with_no_boundary_at_any_yaw(small_config, yaw, noise):
    """The old classifier's bin edge at +-pi/2 flipped headings there; the vector must not:
    a direction output 1.2 rad off (weak, uncertain) still picks the right end of the axis."""
    box = np.array([[3.3, -2.1, 1.0, 4.5, 1.8, 1.5, yaw]])
    out = head_from_targets(box, np.array([0]), small_config)
    if noise:  # turn the direction vector by 1.2 rad and shrink it: still within 90 degrees
        d = out.direction.clone()
        c, s = np.cos(1.2), np.sin(1.2)
        out.direction[:, 0] = noise * (c * d[:, 0] + s * d[:, 1])
        out.direction[:, 1] = noise * (c * d[:, 1] - s * d[:, 0])
    (det,) = decode(out, small_config)
    error = np.abs(np.angle(np.exp(1j * (det.boxes[0, 6] - yaw))))
    assert error < 1e-4  # float32 sin/cos of 2 yaw: ~1e-6 rad


def test_targets_peak_at_one_in_the_centre_cell_of_the_right_class(small_config):
    t = build_targets(BOXES[:1], LABELS[:1], small_config, TargetConfig())
    k, r, c = np.unravel_index(np.argmax(t.heatmap), t.heatmap.shape)
    assert (k, t.heatmap.max()) == (0, 1.0)
    cell = small_config.bev_cell_m[0]
    assert (c, r) == (int((3.3 + 12.8) // cell), int((-2.1 + 12.8) // cell))
    assert t.mask.sum() == 1 and t.indices[0] == r * t.heatmap.shape[2] + c


def test_targets_skip_boxes_outside_the_grid(small_config):
    far = BOXES[:1].copy()
    far[0, 0] = 30.0
    t = build_targets(far, LABELS[:1], small_config, TargetConfig())
    assert t.heatmap.max() == 0.0 and not t.mask.any()


@pytest.mark.parametrize(("length", "width"), [(5.6, 2.25), (13.0, 3.0), (1.0, 1.0)])
def test_gaussian_radius_grows_with_size_and_shrinks_with_required_overlap(length, width):
    r = gaussian_radius(length, width, 0.1)
    assert 0 < r < min(length, width)
    assert gaussian_radius(2 * length, 2 * width, 0.1) > r
    assert gaussian_radius(length, width, 0.7) < r


def test_score_threshold_and_max_detections_limit_the_output(small_config):
    out = head_from_targets(BOXES, LABELS, small_config)
    strict = replace(
        small_config, postprocess=replace(small_config.postprocess, score_threshold=0.99999)
    )
    assert len(decode(out, strict)[0]) == 0  # sigmoid(10) = 0.99995
    top1 = replace(small_config, postprocess=replace(small_config.postprocess, max_detections=1))
    assert len(decode(out, top1)[0]) == 1


def test_zero_threshold_returns_only_peaks(small_config):
    h, w = small_config.bev_shape
    rows, cols = np.mgrid[0:h, 0:w]
    # One cone per class: exactly one local maximum each, every other cell below a neighbour.
    cones = [-np.hypot(rows - 5 * k - 3, cols - 4 * k - 2) for k in range(4)]
    heat = torch.from_numpy(np.stack(cones)[None].astype(np.float32))
    out = HeadOutput(
        heat,
        torch.zeros((1, len(REGRESSION_CHANNELS), h, w)),
        torch.zeros((1, len(DIRECTION_CHANNELS), h, w)),
    )
    post = replace(small_config.postprocess, score_threshold=0.0, nms_iou_threshold=None)
    (det,) = decode(out, replace(small_config, postprocess=post))
    assert sorted(det.labels.tolist()) == [0, 1, 2, 3]


def test_rotated_nms_keeps_the_best_of_overlapping_boxes():
    boxes = np.array([[0, 0, 0, 4, 2, 1, 0.0], [0.2, 0, 0, 4, 2, 1, 0.1], [10, 0, 0, 4, 2, 1, 0]])
    keep = rotated_nms(boxes, np.array([0.5, 0.9, 0.7]), 0.2)
    assert keep.tolist() == [1, 2]


def test_detections_json_names_classes_and_rounds():
    det = Detections(BOXES[:1], np.array([2]), np.array([0.87654], dtype=np.float32))
    (entry,) = det.to_json()
    assert entry["class"] == "truck" and entry["score"] == 0.8765
    assert entry["center_m"] == [3.3, -2.1, -1.0] and len(Detections.empty()) == 0


@pytest.mark.parametrize(
    "kwargs", [{"gaussian_overlap": 1.0}, {"min_radius_cells": -1}, {"max_objects": 0}]
)
def test_target_config_rejects_out_of_bounds_values(kwargs):
    with pytest.raises(TargetError, match=next(iter(kwargs))):
        TargetConfig(**kwargs)
