"""Regenerates test/data/demo_replay: a short bag of the demo for the replay regression test.

Run after retraining the detector or changing a node's behaviour on purpose:
    .venv/bin/python scripts/make_replay_fixture.py
It runs `robomr demo --quick` for DURATION_S of sim time, keeps the inputs and outputs of the
replayed nodes (lidar_detector, croa_planner, gsclo_scheduler) and writes provenance.json
(command, model hash) beside the bag.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from robomr_nodes.bag import copy_bag  # noqa: E402
from robomr_nodes.demo.run import DemoOptions, run_demo  # noqa: E402

DURATION_S = 1.2  # two planning cycles (replan period 1 s), six camera frames: about 3.5 MB
NODES = ["lidar_detector", "croa_planner", "gsclo_scheduler"]
# relative to /robomr unless absolute; /tf_static carries map -> odom (REP 105)
INPUTS = ["points", "odom", "map/obstacles", "target_request", "camera/image", "gs/image"]
INPUTS += ["gs/forecast"]  # the scheduler's window of future L_t from gs_render
INPUTS += ["/tf_static"]
OUTPUTS = [
    "detections",
    "detections/markers",
    "croa/path",
    "croa/viewpoint",
    "croa/markers",
    "gsclo/uploaded",
    "gsclo/operator_view",
    "gsclo/decision",
]
OUT = REPO / "test" / "data" / "demo_replay"


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        run = run_demo(DemoOptions(out=Path(tmp) / "run", duration_s=DURATION_S, quick=True))
        shutil.rmtree(OUT, ignore_errors=True)
        OUT.mkdir(parents=True)
        topics = [t if t.startswith("/") else f"/robomr/{t}" for t in INPUTS + OUTPUTS]
        count = copy_bag(run.out / "bag", OUT / "bag", topics)
    model = REPO / "models" / "detector.pt"
    provenance = {
        "command": "python scripts/make_replay_fixture.py",
        "demo": {"scenario": "urban-clutter", "quick": True, "duration_s": DURATION_S},
        "nodes": NODES,
        "inputs": INPUTS,
        "outputs": OUTPUTS,
        "messages": count,
        "model_sha256": hashlib.sha256(model.read_bytes()).hexdigest(),
    }
    (OUT / "provenance.json").write_text(json.dumps(provenance, indent=2) + "\n")
    print(f"wrote {OUT} ({count} messages)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
