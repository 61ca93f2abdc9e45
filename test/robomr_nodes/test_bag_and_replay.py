"""rosbag2 recording, independent decoding, clear errors, and deterministic replay."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from mcap.reader import make_reader
from mcap_ros2.decoder import DecoderFactory

from robomr_nodes.bag import BagError, BagRecorder, bag_info, digest, read_bag
from robomr_nodes.launch_yaml import load_launch
from robomr_nodes.messages import new_message
from robomr_nodes.replay import ReplayError, replay
from robomr_nodes.runner import RunOptions, run_plan

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1 s run of the shipped launch file, recorded."""
    bag = tmp_path_factory.mktemp("run") / "bag"
    plan = load_launch(REPO / "launch" / "synthetic.launch.yaml")
    result = run_plan(plan, RunOptions(duration_s=1.0, record=bag))
    assert result.executor.errors == []
    return bag


def test_bag_decodes_in_the_independent_mcap_reader(recorded: Path) -> None:
    (mcap_file,) = recorded.glob("*.mcap")
    with mcap_file.open("rb") as fh:
        decoded = list(
            make_reader(fh, decoder_factories=[DecoderFactory()]).iter_decoded_messages()
        )
    info = bag_info(recorded)
    assert len(decoded) == info.message_count > 0
    topics = {ch.topic for _, ch, _, _ in decoded}
    assert topics == set(info.topics)
    clouds = [m for _, ch, _, m in decoded if ch.topic.endswith("/points")]
    assert clouds and clouds[0].header.frame_id == "lidar" and clouds[0].width > 0


def test_recorded_metadata_holds_the_graph_and_qos(recorded: Path) -> None:
    meta = (recorded / "metadata.yaml").read_text()
    assert "robomr.graph" in meta and "synthetic_cloud" in meta
    assert "reliability: best_effort" in meta  # the cloud is on sensor-data QoS


def test_replay_is_byte_identical_twice_and_matches_the_recording(
    recorded: Path, tmp_path: Path
) -> None:
    first = replay(recorded, ["cloud_markers"], tmp_path / "r1")
    second = replay(recorded, ["cloud_markers"], tmp_path / "r2")
    assert first.inputs == ["/robomr/points"]
    assert first.messages_in > 0 and first.messages_out == 2 * first.messages_in
    assert first.digest == second.digest
    original = [m for m in read_bag(recorded) if m.topic in first.outputs]
    assert digest(original) == first.digest


def test_replay_with_unknown_node_or_no_inputs_is_an_error(recorded: Path, tmp_path: Path) -> None:
    with pytest.raises(ReplayError, match="no node"):
        replay(recorded, ["no_such_node"], tmp_path / "x")
    with pytest.raises(ReplayError, match="read none of the bag's topics"):
        replay(recorded, ["synthetic_cloud"], tmp_path / "y")


def test_truncated_bag_yields_its_complete_chunks_with_a_note(
    recorded: Path, tmp_path: Path
) -> None:
    bag = tmp_path / "cut"
    shutil.copytree(recorded, bag)
    (mcap_file,) = bag.glob("*.mcap")
    data = mcap_file.read_bytes()
    mcap_file.write_bytes(data[: len(data) // 2])
    info = bag_info(bag)
    assert len(info.notes) == 1 and "is truncated" in info.notes[0]
    kept = list(read_bag(bag))
    assert 0 < len(kept) == info.message_count < bag_info(recorded).message_count
    full = list(read_bag(recorded))
    assert [m.raw for m in kept] == [m.raw for m in full[: len(kept)]]  # a prefix, unchanged


@pytest.mark.parametrize(
    "make",
    [
        lambda p: p.mkdir(),  # a folder without metadata.yaml
        lambda p: p.write_bytes(b"#ROSBAG V2.0\n"),  # a ROS 1 bag file
        lambda p: None,  # nothing there
    ],
)
def test_foreign_or_missing_bags_are_clear_errors(tmp_path: Path, make) -> None:
    path = tmp_path / "foreign"
    make(path)
    with pytest.raises(BagError):
        list(read_bag(path))


def test_recorder_refuses_to_overwrite(tmp_path: Path) -> None:
    with BagRecorder(tmp_path / "b") as rec:
        rec.write("/s", "std_msgs/msg/String", 5, new_message("std_msgs/msg/String", data="x"))
    with pytest.raises(BagError, match="exists already"):
        BagRecorder(tmp_path / "b")
    assert [m.decode().data for m in read_bag(tmp_path / "b")] == ["x"]
