"""rosbag2 (MCAP) recording of embedded runs and reading bags back, with clear errors.

Bags are written with rosbags' rosbag2 writer (format version 9, MCAP storage, metadata.yaml
with offered QoS per topic), so ``ros2 bag info/play``, RViz (through ``ros2 bag play``) and
Foxglove open them, and the independent ``mcap`` + ``mcap-ros2-support`` readers decode them.
``ros_distro`` in the metadata names the distribution whose message definitions the bag holds
(:data:`ROS_DISTRO`); a copy keeps each topic's offered QoS, so ``ros2 bag play`` still offers a
latched topic as transient local.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from rosbags.interfaces import (
    Qos,
    QosDurability,
    QosHistory,
    QosLiveliness,
    QosReliability,
    QosTime,
)
from rosbags.rosbag2 import Reader, StoragePlugin, Writer

from robomr_nodes.api import QosProfile
from robomr_nodes.messages import MessageError, deserialize, serialize, typestore

ROS_DISTRO = "jazzy"  # robomr's messages are rosbags' Stores.ROS2_JAZZY (messages.py)


class BagError(RuntimeError):
    """A bag that cannot be written or read: missing, truncated, foreign, or unknown types."""


@dataclass(frozen=True)
class BagMessage:
    """One message of a bag: topic, type, log time (ns) and CDR bytes."""

    topic: str
    typename: str
    stamp_ns: int
    raw: bytes

    def decode(self) -> Any:
        return deserialize(self.raw, self.typename)


def _rosbag_qos(qos: QosProfile) -> Qos:
    zero = QosTime(0, 0)
    return Qos(
        history=QosHistory.KEEP_LAST,
        depth=qos.depth,
        reliability=QosReliability.RELIABLE
        if qos.reliability == "reliable"
        else QosReliability.BEST_EFFORT,
        durability=QosDurability.TRANSIENT_LOCAL
        if qos.durability == "transient_local"
        else QosDurability.VOLATILE,
        deadline=zero,
        lifespan=zero,
        liveliness=QosLiveliness.AUTOMATIC,
        liveliness_lease_duration=zero,
        avoid_ros_namespace_conventions=False,
    )


class BagRecorder:
    """Records messages into a new rosbag2 folder. Use as a context manager or call close().

    Args:
        path: bag folder to create (must not exist).
        topics: topics to record; None records every topic.
        custom_data: key/value strings stored in metadata.yaml (run settings, provenance).

    Raises:
        BagError: the folder exists or cannot be created.
    """

    def __init__(
        self,
        path: str | Path,
        topics: Iterable[str] | None = None,
        custom_data: dict[str, str] | None = None,
    ) -> None:
        self.path = Path(path)
        self._topics = None if topics is None else set(topics)
        try:
            self._writer = Writer(self.path, version=9, storage_plugin=StoragePlugin.MCAP)
            for key, value in (custom_data or {}).items():
                self._writer.set_custom_data(key, value)
            self._writer.open()
        except Exception as err:
            raise BagError(f"cannot create bag {self.path}: {err}") from err
        self._connections: dict[str, Any] = {}
        self.count = 0
        self._closed = False

    def write(
        self, topic: str, typename: str, stamp_ns: int, msg: Any, qos: QosProfile | None = None
    ) -> None:
        """Serializes ``msg`` and appends it at log time ``stamp_ns``."""
        self.write_raw(topic, typename, stamp_ns, serialize(msg, typename), qos)

    def write_raw(
        self, topic: str, typename: str, stamp_ns: int, raw: bytes, qos: QosProfile | None = None
    ) -> None:
        if self._topics is not None and topic not in self._topics:
            return
        conn = self._connections.get(topic)
        if conn is None:
            profiles = [_rosbag_qos(qos)] if qos is not None else []
            conn = self._writer.add_connection(
                topic, typename, typestore=typestore(), offered_qos_profiles=profiles
            )
            self._connections[topic] = conn
        self._writer.write(conn, stamp_ns, raw)
        self.count += 1

    def tap(self, topic: str, typename: str, stamp_ns: int, msg: Any, qos: QosProfile) -> None:
        """An executor tap (see EmbeddedExecutor.add_tap) that records every publish."""
        self.write(topic, typename, stamp_ns, msg, qos)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            _close_naming_distro(self._writer, self.path)

    def add_raw_connection(self, topic: str, typename: str, offered_qos: list[Qos]) -> None:
        """Declares a topic with rosbags QoS profiles as they are (a copy keeps them)."""
        self._connections[topic] = self._writer.add_connection(
            topic, typename, typestore=typestore(), offered_qos_profiles=offered_qos
        )

    def __enter__(self) -> BagRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class BagInfo:
    """What a bag holds: topics with types and counts, time span, custom metadata."""

    path: Path
    topics: dict[str, tuple[str, int]]
    start_ns: int
    end_ns: int
    message_count: int
    custom_data: dict[str, str]


def _open(path: Path) -> Reader:
    if not path.exists():
        raise BagError(f"bag {path} does not exist")
    if path.is_file():
        raise BagError(
            f"{path} is a file; a rosbag2 bag is a folder with metadata.yaml "
            "(ROS 1 .bag files are not supported)"
        )
    if not (path / "metadata.yaml").exists():
        raise BagError(f"{path} has no metadata.yaml: not a rosbag2 folder")
    try:
        reader = Reader(path)
        reader.open()
    except Exception as err:
        raise BagError(f"cannot open bag {path}: {err}") from err
    return reader


def bag_info(path: str | Path) -> BagInfo:
    """Summary of a bag. Raises BagError for a missing, foreign or unreadable bag."""
    p = Path(path)
    reader = _open(p)
    try:
        topics = {c.topic: (c.msgtype, c.msgcount) for c in reader.connections}
        meta = yaml.safe_load((p / "metadata.yaml").read_text()) or {}
        custom = meta.get("rosbag2_bagfile_information", {}).get("custom_data") or {}
        return BagInfo(
            p,
            topics,
            reader.start_time,
            reader.end_time,
            reader.message_count,
            {str(k): str(v) for k, v in custom.items()},
        )
    finally:
        reader.close()


def read_bag(path: str | Path, topics: Iterable[str] | None = None) -> Iterator[BagMessage]:
    """Yields the bag's messages in log-time order.

    Raises:
        BagError: missing, foreign or truncated bag, or a message type the type store lacks.
    """
    p = Path(path)
    reader = _open(p)
    wanted = None if topics is None else set(topics)
    try:
        conns = [c for c in reader.connections if wanted is None or c.topic in wanted]
        for conn in conns:
            if conn.msgtype not in typestore().types:
                raise BagError(
                    f"{p}: topic {conn.topic} has type {conn.msgtype}, unknown to "
                    "robomr's type store"
                )
        try:
            for conn, stamp, raw in reader.messages(connections=conns):
                yield BagMessage(conn.topic, conn.msgtype, int(stamp), bytes(raw))
        except (BagError, MessageError):
            raise
        except Exception as err:
            raise BagError(f"{p}: cannot read messages (truncated or corrupt?): {err}") from err
    finally:
        reader.close()


def copy_bag(src: str | Path, dst: str | Path, topics: Iterable[str]) -> int:
    """Copies the messages of ``topics`` and the custom metadata of ``src`` into a new bag
    ``dst``; returns the number of messages copied.

    Raises:
        BagError: ``src`` is unreadable or ``dst`` exists.
    """
    wanted = set(topics)
    with BagRecorder(dst, topics=wanted, custom_data=bag_info(src).custom_data) as out:
        reader = _open(Path(src))
        try:
            for conn in reader.connections:
                if conn.topic in wanted and conn.topic not in out._connections:
                    qos = list(getattr(conn.ext, "offered_qos_profiles", []) or [])
                    out.add_raw_connection(conn.topic, conn.msgtype, qos)
        finally:
            reader.close()
        for m in read_bag(src, wanted):
            out.write_raw(m.topic, m.typename, m.stamp_ns, m.raw)
        return out.count


def _close_naming_distro(writer: Writer, path: Path) -> None:
    """Closes the writer with ``ros_distro: ROS_DISTRO`` (rosbags writes "rosbags") in both
    metadata.yaml and the metadata record that the MCAP file carries for rosbag2."""
    storage = writer.storage
    if storage is not None:
        close_storage = storage.close
        storage.close = lambda version, meta: close_storage(  # type: ignore[method-assign]
            version, meta.replace("ros_distro: rosbags", f"ros_distro: {ROS_DISTRO}")
        )
    writer.close()
    meta = path / "metadata.yaml"
    if meta.exists():
        text = meta.read_text()
        meta.write_text(text.replace("ros_distro: rosbags", f"ros_distro: {ROS_DISTRO}"))


def digest(messages: Iterable[BagMessage]) -> str:
    """SHA-256 over (topic, type, stamp, bytes) of messages: equal digests, identical outputs."""
    h = hashlib.sha256()
    for m in messages:
        h.update(f"{m.topic}\0{m.typename}\0{m.stamp_ns}\0".encode())
        h.update(m.raw)
    return h.hexdigest()
