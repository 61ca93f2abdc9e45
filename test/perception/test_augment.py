"""Augmentation keeps points and boxes consistent; pasting adds free-standing objects."""

from __future__ import annotations

import math

import numpy as np
import pytest

from geometry.boxes import points_in_boxes
from perception.augment import (
    AugmentConfig,
    AugmentError,
    ObjectBank,
    Sample,
    augment,
    global_transform,
)
from perception.dataset import SimDataset
from perception.iou import bev_iou


@pytest.fixture(scope="module")
def frames(synthetic_dataset):
    ds = SimDataset(synthetic_dataset)
    return [ds[i] for i in range(len(ds))]


def owners(sample: Sample) -> np.ndarray:
    # 2 cm range noise of the synthetic lidar: grow boxes by 10 cm to own their points.
    return points_in_boxes(sample.points, sample.boxes, margin_m=0.1)


def box_coordinates(sample: Sample) -> np.ndarray:
    """|Coordinates| [M, N, 3] of every point in every box's frame, in units of the box size."""
    rel = sample.points[None, :, :3].astype(np.float64) - sample.boxes[:, None, :3]  # [M, N, 3]
    c, s = np.cos(sample.boxes[:, 6])[:, None], np.sin(sample.boxes[:, 6])[:, None]
    local = np.stack(
        [c * rel[..., 0] + s * rel[..., 1], -s * rel[..., 0] + c * rel[..., 1], rel[..., 2]],
        axis=-1,
    )
    return np.abs(local / sample.boxes[:, None, 3:6])  # abs: a mirror flips the local y sign


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("flip", [0.0, 1.0])
def test_global_transform_moves_points_with_their_boxes(frames, seed, flip):
    sample = Sample.from_frame(frames[0])
    config = AugmentConfig(rotation_rad=math.pi, flip_probability=flip, scale_range=(0.9, 1.1))
    moved = global_transform(sample, np.random.default_rng(seed), config)
    # float32 points at <= 40 m carry ~4e-6 m rounding; over sizes >= 1.3 m that is < 1e-5.
    np.testing.assert_allclose(box_coordinates(moved), box_coordinates(sample), atol=1e-5)
    assert moved.points.dtype == sample.points.dtype
    np.testing.assert_array_equal(moved.points[:, 3:], sample.points[:, 3:])  # intensity, ring


def test_flip_mirrors_y_and_negates_yaw(frames):
    sample = Sample.from_frame(frames[0])
    config = AugmentConfig(rotation_rad=0.0, flip_probability=1.0, scale_range=(1.0, 1.0))
    flipped = global_transform(sample, np.random.default_rng(0), config)
    np.testing.assert_allclose(flipped.boxes[:, 1], -sample.boxes[:, 1])
    np.testing.assert_allclose(flipped.boxes[:, 6], -sample.boxes[:, 6])
    np.testing.assert_allclose(flipped.points[:, 1], -sample.points[:, 1])


def test_pasted_objects_do_not_overlap_and_bring_their_points(frames):
    bank = ObjectBank(frames, min_points=5)
    # The small scenes are crowded: paste into frame 0's ground alone.
    ground = frames[0].points[frames[0].point_object < 0]
    sample = Sample(ground, np.zeros((0, 7)), np.zeros(0, np.int64), np.zeros(0, np.int64))
    pasted = bank.paste(sample, np.random.default_rng(1), (8, 8, 8, 8))
    added = len(pasted.boxes) - len(sample.boxes)
    assert added > 0
    iou = bev_iou(pasted.boxes, pasted.boxes)
    assert np.all(iou[~np.eye(len(iou), dtype=bool)] == 0.0)
    counts = np.bincount(owners(pasted)[owners(pasted) >= 0], minlength=len(pasted.boxes))
    # Each pasted box holds at least the points it was banked with (>= 5).
    assert np.all(counts[-added:] >= pasted.num_points[-added:]) and np.all(counts[-added:] >= 5)


def test_augmentation_is_reproducible_from_the_seed(frames):
    bank = ObjectBank(frames, min_points=5)
    sample = Sample.from_frame(frames[1])
    a = augment(sample, np.random.default_rng(9), AugmentConfig(), bank)
    b = augment(sample, np.random.default_rng(9), AugmentConfig(), bank)
    np.testing.assert_array_equal(a.points, b.points)
    np.testing.assert_array_equal(a.boxes, b.boxes)


def test_an_empty_bank_or_zero_count_pastes_nothing(frames):
    sample = Sample.from_frame(frames[0])
    assert ObjectBank([], min_points=5).paste(sample, np.random.default_rng(0), (4,) * 4) is sample
    assert ObjectBank(frames, 5).paste(sample, np.random.default_rng(0), (0,) * 4) is sample


@pytest.mark.parametrize(
    "kwargs",
    [
        {"rotation_rad": 4.0},
        {"flip_probability": 1.5},
        {"scale_range": (1.1, 0.9)},
        {"paste_targets": (-1, 0, 0, 0)},
        {"beam_drop_probability": 1.5},
        {"point_keep_range": (0.0, 1.0)},
        {"height_noise_m": -0.1},
    ],
)
def test_augment_config_rejects_out_of_bounds_values(kwargs):
    with pytest.raises(AugmentError, match=next(iter(kwargs))):
        AugmentConfig(**kwargs)
