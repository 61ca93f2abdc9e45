"""Bags as ROS 2 reads them: ros_distro names the message distribution, copies keep QoS."""

from __future__ import annotations

from pathlib import Path

import yaml
from mcap.reader import make_reader

from robomr_nodes.api import qos_profile
from robomr_nodes.bag import ROS_DISTRO, BagRecorder, copy_bag
from robomr_nodes.messages import new_message


def _record(path: Path) -> None:
    with BagRecorder(path) as bag:
        for topic, qos in (("/map", "latched"), ("/points", "sensor_data"), ("/cmd", "reliable")):
            msg = new_message("std_msgs/msg/String", data=topic)
            bag.write(topic, "std_msgs/msg/String", 1_000, msg, qos_profile(qos))


def _offered(path: Path) -> dict[str, tuple[str, str, int]]:
    info = yaml.safe_load((path / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    out = {}
    for t in info["topics_with_message_count"]:
        profiles = t["topic_metadata"]["offered_qos_profiles"]  # a list in version 9
        (profile,) = yaml.safe_load(profiles) if isinstance(profiles, str) else profiles
        out[t["topic_metadata"]["name"]] = (
            profile["durability"],
            profile["reliability"],
            profile["depth"],
        )
    return out


def test_metadata_names_the_ros_distribution_of_the_messages(tmp_path: Path) -> None:
    _record(tmp_path / "bag")
    meta = yaml.safe_load((tmp_path / "bag" / "metadata.yaml").read_text())
    assert meta["rosbag2_bagfile_information"]["ros_distro"] == ROS_DISTRO == "jazzy"
    (mcap_file,) = (tmp_path / "bag").glob("*.mcap")
    with mcap_file.open("rb") as f:  # the copy rosbag2's MCAP plugin reads without the yaml
        (record,) = [m for m in make_reader(f).iter_metadata() if m.name == "rosbag2"]
    assert f"ros_distro: {ROS_DISTRO}" in record.metadata["serialized_metadata"]


def test_a_copied_bag_keeps_each_topics_offered_qos(tmp_path: Path) -> None:
    _record(tmp_path / "bag")
    copy_bag(tmp_path / "bag", tmp_path / "copy", ["/map", "/points"])
    original, copied = _offered(tmp_path / "bag"), _offered(tmp_path / "copy")
    assert copied == {t: original[t] for t in ("/map", "/points")}
    assert copied["/map"][0] == "transient_local" and copied["/points"][1] == "best_effort"
