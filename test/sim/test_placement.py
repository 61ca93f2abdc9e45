"""Separating-axis overlap of convex footprints and the placer built on it."""

from __future__ import annotations

import numpy as np
import pytest

from sim.placement import Placer, convex_overlap, footprint

SQUARE = footprint(np.array([0.0, 0.0, 0.0, 2.0, 2.0, 1.0, 0.0]))  # [-1, 1]^2


@pytest.mark.parametrize(
    ("box", "margin", "overlap"),
    [
        ((1.5, 0.0, 0, 2.0, 2.0, 1, 0.0), 0.0, True),  # shares x in [0.5, 1]
        ((2.5, 0.0, 0, 2.0, 2.0, 1, 0.0), 0.0, False),  # 0.5 m gap
        ((2.5, 0.0, 0, 2.0, 2.0, 1, 0.0), 0.6, True),  # the gap is below the margin
        # A diamond off the corner: its edge x + y = 2c - sqrt(2) clears the corner x + y = 2
        # (separated on the diagonal axis) for c = 1.9 and cuts it for c = 1.6.
        ((1.9, 1.9, 0, 2.0, 2.0, 1, np.pi / 4), 0.0, False),
        ((1.6, 1.6, 0, 2.0, 2.0, 1, np.pi / 4), 0.0, True),
    ],
)
def test_convex_overlap_matches_hand_cases(box, margin, overlap) -> None:
    assert convex_overlap(SQUARE, footprint(np.array(box)), margin) is overlap
    assert convex_overlap(footprint(np.array(box)), SQUARE, margin) is overlap


def test_placer_refuses_overlaps_and_ignores_deactivated_footprints() -> None:
    placer = Placer()
    handle = placer.add(SQUARE)
    moved = footprint(np.array([1.0, 0.0, 0.0, 2.0, 2.0, 1.0, 0.0]))
    assert not placer.try_add(moved)
    placer.set_active(handle, False)
    assert placer.try_add(moved)
    placer.set_active(handle, True)
    assert not placer.is_free(SQUARE)
