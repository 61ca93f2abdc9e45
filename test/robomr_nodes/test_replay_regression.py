"""Replay regression: a short bag recorded from the demo (test/data/demo_replay, made by
scripts/make_replay_fixture.py) replayed through the detector, planner and scheduler must
reproduce the recorded outputs.

Tolerances: the network runs in float32 and the planner's solver (CLARABEL) iterates to 1e-8;
a different CPU (SIMD width, BLAS) changes float results by ~1e-6 relative, which moves boxes by
micrometres and plans by far less than a centimetre. Boxes within 1 mm and scores within 1e-3,
paths within 5 cm catch any real change in behaviour (a retrained model or a changed cost moves
them by decimetres) while surviving such round-off. The scheduler's inputs are the recorded
images, bit for bit, so its decisions must be identical and its energies equal to 1e-9.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from robomr_nodes.bag import read_bag
from robomr_nodes.convert.detections import detections_to_boxes
from robomr_nodes.convert.path import path_to_poses
from robomr_nodes.diagnostics import diagnostic_values
from robomr_nodes.replay import replay

REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO / "test" / "data" / "demo_replay"


@pytest.fixture(scope="module")
def replayed(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict]:
    provenance = json.loads((FIXTURE / "provenance.json").read_text())
    model = hashlib.sha256((REPO / "models" / "detector.pt").read_bytes()).hexdigest()
    if model != provenance["model_sha256"]:
        pytest.fail(
            "models/detector.pt changed since the fixture was recorded: regenerate it "
            "with `python scripts/make_replay_fixture.py`"
        )
    out = tmp_path_factory.mktemp("replay") / "out"
    result = replay(FIXTURE / "bag", provenance["nodes"], out)
    assert result.errors == 0
    recorded, got = {}, {}
    for source, into in ((FIXTURE / "bag", recorded), (out, got)):
        for m in read_bag(source, [f"/robomr/{t}" for t in provenance["outputs"]]):
            into.setdefault(m.topic, []).append(m.decode())
    return recorded, got


def test_every_output_message_is_reproduced(replayed: tuple[dict, dict]) -> None:
    recorded, got = replayed
    assert {t: len(v) for t, v in got.items()} == {t: len(v) for t, v in recorded.items()}
    assert len(recorded["/robomr/detections"]) > 0 and len(recorded["/robomr/croa/path"]) > 0


def test_detections_match(replayed: tuple[dict, dict]) -> None:
    recorded, got = replayed
    for old, new in zip(recorded["/robomr/detections"], got["/robomr/detections"], strict=True):
        a, b = detections_to_boxes(old), detections_to_boxes(new)
        assert a.labels == b.labels
        np.testing.assert_allclose(b.boxes, a.boxes, atol=1e-3)
        np.testing.assert_allclose(b.scores, a.scores, atol=1e-3)


def test_paths_match(replayed: tuple[dict, dict]) -> None:
    recorded, got = replayed
    for old, new in zip(recorded["/robomr/croa/path"], got["/robomr/croa/path"], strict=True):
        (a, sa), (b, sb) = path_to_poses(old), path_to_poses(new)
        np.testing.assert_array_equal(sb, sa)
        np.testing.assert_allclose(b, a, atol=0.05)


def test_upload_decisions_match(replayed: tuple[dict, dict]) -> None:
    recorded, got = replayed
    pairs = zip(recorded["/robomr/gsclo/decision"], got["/robomr/gsclo/decision"], strict=True)
    for old, new in pairs:
        a, b = diagnostic_values(old)["gsclo"], diagnostic_values(new)["gsclo"]
        assert (b["stamp_ns"], b["upload"]) == (a["stamp_ns"], a["upload"])
        assert float(b["energy_j"]) == pytest.approx(float(a["energy_j"]), rel=1e-9)
        assert float(b["discrepancy"]) == pytest.approx(float(a["discrepancy"]), rel=1e-9)
