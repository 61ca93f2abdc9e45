"""metadata.yaml of a rosbag2 folder (format version 9, as rosbag2 Jazzy and rosbags write it).

The recorder writes it when recording starts and again after every chunk that reaches the disk
(write to ``metadata.yaml.tmp``, then ``os.replace``: a reader sees the old or the new file,
never half of one), so a killed recording still has one. Reading validates every key robomr
and the rosbags reader use and names the first one at fault (rosbags' own messages, such as
"'NoneType' object is not subscriptable" for an empty file, do not).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from robomr_nodes.bagio.errors import BagError
from robomr_nodes.yamlfile import load_yaml_file

VERSION = 9
# the distribution whose message definitions the bag holds: robomr's messages are rosbags'
# Stores.ROS2_JAZZY (messages.py); ros2 bag stores its distro here too
ROS_DISTRO = "jazzy"
TOP_KEY = "rosbag2_bagfile_information"
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml: ~10x faster


@dataclass(frozen=True)
class TopicMeta:
    """One topic of a bag: name, type, RIHS01 type hash, offered QoS (v9 dicts), count."""

    topic: str
    typename: str
    type_hash: str
    offered_qos: tuple[dict[str, Any], ...]
    count: int


def build(
    file_name: str,
    topics: Sequence[TopicMeta],
    start_ns: int,
    end_ns: int,
    custom_data: dict[str, str],
) -> dict[str, Any]:
    """The metadata of a one-file MCAP bag holding ``topics`` between start and end (ns)."""
    count = sum(t.count for t in topics)
    start = start_ns if count else 0
    duration = max(0, end_ns - start_ns) if count else 0
    return {
        TOP_KEY: {
            "version": VERSION,
            "storage_identifier": "mcap",
            "relative_file_paths": [file_name],
            "duration": {"nanoseconds": duration},
            "starting_time": {"nanoseconds_since_epoch": start},
            "message_count": count,
            "topics_with_message_count": [
                {
                    "topic_metadata": {
                        "name": t.topic,
                        "type": t.typename,
                        "serialization_format": "cdr",
                        "offered_qos_profiles": list(t.offered_qos),
                        "type_description_hash": t.type_hash,
                    },
                    "message_count": t.count,
                }
                for t in topics
            ],
            "compression_format": "",
            "compression_mode": "",
            "files": [
                {
                    "path": file_name,
                    "starting_time": {"nanoseconds_since_epoch": start},
                    "duration": {"nanoseconds": duration},
                    "message_count": count,
                }
            ],
            "custom_data": dict(custom_data) or None,
            "ros_distro": ROS_DISTRO,
        }
    }


def write(bag_dir: Path, meta: dict[str, Any]) -> None:
    """Replaces ``bag_dir/metadata.yaml`` atomically.

    Raises:
        OSError: the temporary file could not be written (it is removed again).
    """
    path = bag_dir / "metadata.yaml"
    tmp = path.with_name("metadata.yaml.tmp")
    try:
        tmp.write_text(yaml.dump(meta, Dumper=_DUMPER, sort_keys=True), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise


def _get(node: Any, keys: str, kind: type | tuple[type, ...], where: str) -> Any:
    """``node[k1][k2]...`` checked for presence and type; errors name the dotted key."""
    value = node
    walked = []
    for key in keys.split("."):
        walked.append(key)
        if not isinstance(value, dict):
            raise BagError(f"{where}: {'.'.join(walked[:-1]) or TOP_KEY} is not a mapping")
        if key not in value:
            raise BagError(f"{where}: key {'.'.join(walked)} is missing")
        value = value[key]
    is_int = kind is int
    if (is_int and (isinstance(value, bool) or not isinstance(value, int))) or (
        not is_int and not isinstance(value, kind)
    ):
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise BagError(f"{where}: key {keys} = {value!r:.60} is not a {names}")
    if is_int and value < 0:
        raise BagError(f"{where}: key {keys} = {value} is negative")
    return value


def parse(bag_dir: Path) -> dict[str, Any]:
    """The validated ``rosbag2_bagfile_information`` mapping of ``bag_dir/metadata.yaml``.

    Raises:
        BagError: unreadable, empty or invalid YAML, a missing or mistyped key (named), an
            unsupported version, or a listed storage file that does not exist.
    """
    path = bag_dir / "metadata.yaml"
    doc = load_yaml_file(path, BagError, "bag metadata")
    if doc is None:
        raise BagError(f"{path} is empty: not a rosbag2 metadata file")
    if not isinstance(doc, dict) or not isinstance(doc.get(TOP_KEY), dict):
        raise BagError(f"{path}: no {TOP_KEY} mapping: not a rosbag2 metadata file")
    info = doc[TOP_KEY]
    where = str(path)
    version = _get(info, "version", int, where)
    if not 1 <= version <= VERSION:
        raise BagError(f"{where}: rosbag2 version {version} is not supported (1..{VERSION})")
    storage = _get(info, "storage_identifier", str, where)
    if storage not in ("mcap", "sqlite3"):
        raise BagError(f"{where}: storage_identifier {storage!r} is not mcap or sqlite3")
    files = _get(info, "relative_file_paths", list, where)
    if not files:
        raise BagError(f"{where}: key relative_file_paths lists no storage file")
    for i, name in enumerate(files):
        if not isinstance(name, str) or not Path(name).name:
            raise BagError(f"{where}: relative_file_paths[{i}] = {name!r:.60} is not a file name")
        if not (bag_dir / Path(name).name).is_file():
            raise BagError(f"{where}: lists storage file {name}, which is missing")
    _get(info, "duration.nanoseconds", int, where)
    _get(info, "starting_time.nanoseconds_since_epoch", int, where)
    _get(info, "message_count", int, where)
    for i, entry in enumerate(_get(info, "topics_with_message_count", list, where)):
        key = f"topics_with_message_count[{i}]"
        _get({key: entry}, f"{key}.message_count", int, where)
        for field in ("name", "type", "serialization_format"):
            _get({key: entry}, f"{key}.topic_metadata.{field}", str, where)
    custom = info.get("custom_data")
    if custom is not None and not isinstance(custom, dict):
        raise BagError(f"{where}: key custom_data is not a mapping")
    return info


def custom_data(info: dict[str, Any]) -> dict[str, str]:
    """The ``custom_data`` of validated metadata as strings."""
    return {str(k): str(v) for k, v in (info.get("custom_data") or {}).items()}
