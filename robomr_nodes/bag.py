"""rosbag2 (MCAP) recording of embedded runs and reading bags back, with clear errors.

Bags are rosbag2 folders (format version 9, MCAP storage, metadata.yaml with offered QoS per
topic), so ``ros2 bag info/play``, RViz (through ``ros2 bag play``) and Foxglove open them, and
the rosbags reader and the independent ``mcap`` + ``mcap-ros2-support`` readers decode them.

``ros_distro`` in the metadata names the distribution whose message definitions the bag holds
(:data:`ROS_DISTRO`); a copy keeps each topic's offered QoS, so ``ros2 bag play`` still offers a
latched topic as transient local.

Reliability (docs/reliability.md): metadata.yaml is written when recording starts and after
every chunk, and every complete chunk is on disk at once, so a killed run leaves a bag that
:func:`read_bag` opens (the complete chunks of a truncated MCAP, with a note saying so). The
first failed write (disk full) stops recording: the file is cut back to its last complete chunk
and :class:`BagWriteError` names the file and the cause. Chunk, data and summary CRCs are
written; :func:`verify_bag` checks them.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterable
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
from rosbags.rosbag2.metadata import dump_qos_v9

from robomr_nodes import shutdown
from robomr_nodes.api import QosProfile
from robomr_nodes.bagio import metadata as bagmeta
from robomr_nodes.bagio.errors import BagError, BagWriteError
from robomr_nodes.bagio.mcapfile import DurableMcapWriter
from robomr_nodes.bagio.metadata import ROS_DISTRO
from robomr_nodes.bagio.reading import (
    BagInfo,
    BagMessage,
    bag_info,
    read_bag,
    topic_qos,
    verify_bag,
)
from robomr_nodes.messages import serialize, typestore
from robomr_nodes.outputs import OutputError, check_creatable

__all__ = [
    "ROS_DISTRO",
    "BagError",
    "BagInfo",
    "BagMessage",
    "BagRecorder",
    "BagWriteError",
    "bag_info",
    "check_new_bag_path",
    "copy_bag",
    "digest",
    "read_bag",
    "verify_bag",
]


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


def check_new_bag_path(path: Path) -> None:
    """Checks, creating nothing, that a bag folder can be created at ``path``.

    Raises:
        BagError: ``path`` exists, or its nearest existing parent is not a writable folder.
    """
    if path.exists() or path.is_symlink():
        raise BagError(f"bag {path} exists already: choose a new folder (nothing overwritten)")
    try:
        check_creatable(path)
    except OutputError as err:
        raise BagError(f"bag: {err}") from None


class BagRecorder:
    """Records messages into a new rosbag2 folder. Use as a context manager or call close().

    Args:
        path: bag folder to create (must not exist).
        topics: topics to record; None records every topic.
        custom_data: key/value strings stored in metadata.yaml (run settings, provenance).
        flush_interval_s: wall time after which an open chunk is written out (a hard kill
            loses at most this much).
        on_failure: called once with the :class:`BagWriteError` when a write fails (the
            runner stops the graph with it).

    Raises:
        BagError: the folder exists or cannot be created.
    """

    def __init__(
        self,
        path: str | Path,
        topics: Iterable[str] | None = None,
        custom_data: dict[str, str] | None = None,
        flush_interval_s: float = 1.0,
        on_failure: Callable[[BagWriteError], None] | None = None,
    ) -> None:
        self.path = Path(path)
        self._topics = None if topics is None else set(topics)
        self._custom = {str(k): str(v) for k, v in (custom_data or {}).items()}
        self._on_failure = on_failure
        self._channels: dict[str, tuple[int, bagmeta.TopicMeta]] = {}
        self._written: Counter = Counter()
        self._committed: Counter = Counter()
        self._span: list[int] = []  # [first, last] stamp written
        self._committed_span: list[int] = []
        self.count = 0
        self.error: BagWriteError | None = None
        self._closed = False
        self._flush_interval_s = flush_interval_s
        self._listed: set[str] = set()
        self._meta_due = 0.0
        check_new_bag_path(self.path)
        try:
            self.path.mkdir(parents=True)
            self._file = DurableMcapWriter(
                self.path / f"{self.path.name}.mcap",
                flush_interval_s=flush_interval_s,
                custom_data=self._custom,
            )
            self._write_metadata()
        except OSError as err:
            shutil.rmtree(self.path, ignore_errors=True)
            raise BagError(f"cannot create bag {self.path}: {err.strerror or err}") from None

    def _meta(self) -> dict[str, Any]:
        topics = [
            bagmeta.TopicMeta(m.topic, m.typename, m.type_hash, m.offered_qos, n)
            for _, m in self._channels.values()
            if (n := self._committed[m.topic])
        ]
        first, last = self._committed_span or (0, 0)
        return bagmeta.build(self._file.path.name, topics, first, last, self._custom)

    def _write_metadata(self) -> None:
        bagmeta.write(self.path, self._meta())
        self._listed = {t for t, n in self._committed.items() if n}
        self._meta_due = time.monotonic() + self._flush_interval_s

    def _channel(self, topic: str, typename: str, qos: QosProfile | None) -> int:
        if topic in self._channels:
            return self._channels[topic][0]
        return self._add_channel(topic, typename, [_rosbag_qos(qos)] if qos is not None else [])

    def add_raw_connection(self, topic: str, typename: str, offered_qos: list[Qos]) -> None:
        """Declares a topic with rosbags QoS profiles as they are (a copy keeps them)."""
        if topic not in self._channels:
            with shutdown.critical():
                try:
                    self._add_channel(topic, typename, offered_qos)
                except OSError as err:
                    self._fail(err)

    def _add_channel(self, topic: str, typename: str, offered_qos: list[Qos]) -> int:
        store = typestore()
        msgdef, _ = store.generate_msgdef(typename, ros_version=2)
        qos_dicts = tuple(dump_qos_v9(offered_qos))
        cid = self._file.add_channel(
            topic, typename, msgdef, yaml.safe_dump(list(qos_dicts), sort_keys=True)
        )
        meta = bagmeta.TopicMeta(topic, typename, store.hash_rihs01(typename), qos_dicts, 0)
        self._channels[topic] = (cid, meta)
        return cid

    def write(
        self, topic: str, typename: str, stamp_ns: int, msg: Any, qos: QosProfile | None = None
    ) -> None:
        """Serializes ``msg`` and appends it at log time ``stamp_ns``.

        Raises:
            BagWriteError: this or an earlier write failed (the bag keeps what was committed).
            MessageError: ``msg`` does not serialize as ``typename``.
        """
        self.write_raw(topic, typename, stamp_ns, serialize(msg, typename), qos)

    def write_raw(
        self, topic: str, typename: str, stamp_ns: int, raw: bytes, qos: QosProfile | None = None
    ) -> None:
        """Appends CDR bytes; see :meth:`write`."""
        if self.error is not None:
            raise self.error
        if self._closed:
            raise BagError(f"bag {self.path} is closed")
        if self._topics is not None and topic not in self._topics:
            return
        with shutdown.critical():  # a signal waits until the record is complete
            try:
                cid = self._channel(topic, typename, qos)
                self._written[topic] += 1
                first, last = self._span or (stamp_ns, stamp_ns)
                self._span = [min(first, stamp_ns), max(last, stamp_ns)]
                if self._file.add_message(cid, stamp_ns, raw):
                    self._committed, self._committed_span = Counter(self._written), self._span
                    # at most once per flush interval, and at once for a new topic: a YAML
                    # dump per 1 MB chunk would halve the recording rate
                    fresh = set(self._committed) - self._listed
                    if fresh or time.monotonic() >= self._meta_due:
                        self._write_metadata()
            except OSError as err:
                self._fail(err)
        self.count += 1

    def _fail(self, err: OSError) -> None:
        where = err.filename or self._file.path
        kept = sum(self._committed.values())
        span = self._committed_span or [0, 0]
        self._file.abort()
        with contextlib.suppress(OSError):  # else the last one written stays: it lists less
            self._write_metadata()
        self.error = BagWriteError(
            f"cannot write {where}: {err.strerror or err}; recording stopped, the bag keeps "
            f"the {kept} messages of the first {(span[1] - span[0]) / 1e9:.2f} s, readable"
        )
        if self._on_failure is not None:
            self._on_failure(self.error)
        raise self.error from None

    def tap(self, topic: str, typename: str, stamp_ns: int, msg: Any, qos: QosProfile) -> None:
        """An executor tap (see EmbeddedExecutor.add_tap) that records every publish. After a
        failed write it records nothing more (``on_failure`` has stopped the run)."""
        if self.error is None and not self._closed:
            with contextlib.suppress(BagWriteError):
                self.write(topic, typename, stamp_ns, msg, qos)

    def close(self) -> None:
        """Writes the last chunk, the summary and the final metadata.yaml.

        Raises:
            BagWriteError: the final writes failed (the bag keeps what was committed).
        """
        if self._closed:
            return
        self._closed = True
        if self.error is not None:
            return
        with shutdown.critical():
            before = self._file.committed
            old = self._committed, self._committed_span
            try:
                self._committed, self._committed_span = Counter(self._written), self._span
                self._file.finish(yaml.safe_dump(self._meta()[bagmeta.TOP_KEY], sort_keys=True))
                self._write_metadata()
            except OSError as err:
                if self._file.committed == before:  # the last chunk did not reach the file
                    self._committed, self._committed_span = old
                self._fail(err)

    def __enter__(self) -> BagRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def copy_bag(src: str | Path, dst: str | Path, topics: Iterable[str]) -> int:
    """Copies the messages of ``topics`` and the custom metadata of ``src`` into a new bag
    ``dst``; returns the number of messages copied.

    Raises:
        BagError: ``src`` is unreadable or corrupt, or ``dst`` exists or cannot be written.
    """
    wanted = set(topics)
    verify_bag(src)
    info = bag_info(src)
    with BagRecorder(dst, topics=wanted, custom_data=info.custom_data) as out:
        for topic, qos in topic_qos(src).items():  # keep each topic's offered QoS
            if topic in wanted:
                out.add_raw_connection(topic, info.topics[topic][0], qos)
        for m in read_bag(src, wanted):
            out.write_raw(m.topic, m.typename, m.stamp_ns, m.raw)
        return out.count


def digest(messages: Iterable[BagMessage]) -> str:
    """SHA-256 over (topic, type, stamp, bytes) of messages: equal digests, identical outputs."""
    h = hashlib.sha256()
    for m in messages:
        h.update(f"{m.topic}\0{m.typename}\0{m.stamp_ns}\0".encode())
        h.update(m.raw)
    return h.hexdigest()
