"""Reading rosbag2 bags back: robomr's MCAP bags with their recovery and CRC checks, other
bags through the rosbags reader (see ``robomr_nodes.bag`` for the public API).

A single-file MCAP bag is read from the MCAP file's own index (the file is CRC-protected and
metadata.yaml is not); a file without footer (a killed recording) from its complete chunks.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rosbags.interfaces import Qos
from rosbags.rosbag2 import Reader
from rosbags.rosbag2.metadata import parse_qos

from robomr_nodes.bagio import metadata as bagmeta
from robomr_nodes.bagio.errors import BagError
from robomr_nodes.bagio.mcapread import ChunkScan, check_mcap, stored_custom_data
from robomr_nodes.messages import MessageError, deserialize, typestore


@dataclass(frozen=True)
class BagMessage:
    """One message of a bag: topic, type, log time (ns) and CDR bytes."""

    topic: str
    typename: str
    stamp_ns: int
    raw: bytes

    def decode(self) -> Any:
        return deserialize(self.raw, self.typename)


@dataclass(frozen=True)
class BagInfo:
    """What a bag holds: topics with types and counts, time span, custom metadata, and notes
    on how it was read (e.g. the complete chunks of a truncated file)."""

    path: Path
    topics: dict[str, tuple[str, int]]
    start_ns: int
    end_ns: int
    message_count: int
    custom_data: dict[str, str]
    notes: tuple[str, ...] = ()


class _Bag:
    """An opened bag: validated metadata plus a rosbags reader, or a chunk scan of a
    truncated MCAP file."""

    def __init__(self, path: Path) -> None:
        if not path.exists():
            raise BagError(f"bag {path} does not exist")
        if path.is_file():
            raise BagError(
                f"{path} is a file; a rosbag2 bag is a folder with metadata.yaml "
                "(ROS 1 .bag files are not supported)"
            )
        if not (path / "metadata.yaml").exists():
            raise BagError(f"{path} has no metadata.yaml: not a rosbag2 folder")
        self.path = path
        self.meta = bagmeta.parse(path)
        self.scan: ChunkScan | None = None
        self.reader: Reader | None = None
        self.mcap: Path | None = None
        self.notes: list[str] = []
        files = [path / Path(f).name for f in self.meta["relative_file_paths"]]
        if self.meta["storage_identifier"] != "mcap" or len(files) != 1:
            self.reader = _open_reader(path)  # rosbags reads what robomr does not write
            return
        self.mcap = files[0]
        if not check_mcap(self.mcap, verify=False).complete:
            self.scan = ChunkScan(self.mcap)
            self.notes.append(_truncation_note(self.scan))
            return
        # The MCAP file is CRC-protected and metadata.yaml is not: read the file's own index,
        # and say so when metadata.yaml disagrees with it.
        try:
            self.reader = _open_reader(self.mcap)
        except BagError:
            check_mcap(self.mcap)  # a CRC mismatch explains the failure better
            raise
        listed = {
            t["topic_metadata"]["name"]: (t["topic_metadata"]["type"], t["message_count"])
            for t in self.meta["topics_with_message_count"]
        }
        held = {c.topic: (c.msgtype, c.msgcount) for c in self.reader.connections}
        if listed != held:
            self.notes.append(
                f"{path}/metadata.yaml disagrees with {self.mcap.name} on topics or counts "
                f"(stale or edited); read {self.mcap.name}'s own index"
            )

    def close(self) -> None:
        if self.reader is not None:
            self.reader.close()
            self.reader = None


def _truncation_note(scan: ChunkScan) -> str:
    n = sum(scan.counts.values())
    if scan.footer:
        return f"{scan.path} has no valid footer; all {len(scan.chunks)} chunks ({n} messages) read"
    return (
        f"{scan.path} is truncated (its recording was killed or ran out of space): read the "
        f"{n} messages of its {len(scan.chunks)} complete chunks, skipped the last "
        f"{scan.skipped_bytes} bytes (an incomplete chunk)"
    )


def _open_reader(path: Path) -> Reader:
    try:
        reader = Reader(path)
        reader.open()
    except Exception as err:  # rosbags raises several types; its words get a gloss
        text = " ".join(str(err).split())[:300]  # one line (ruamel's YAML errors span several)
        hint = " (the file is truncated or not an MCAP file)" if "magic" in text else ""
        raise BagError(f"cannot open bag {path}: {text}{hint}") from None
    return reader


def bag_info(path: str | Path) -> BagInfo:
    """Summary of a bag. Raises BagError for a missing, foreign or unreadable bag."""
    p = Path(path)
    bag = _Bag(p)
    custom = bagmeta.custom_data(bag.meta)
    try:
        if bag.scan is not None:
            s = bag.scan
            topics = {t: (ty, s.counts[c]) for c, (t, ty) in s.channels.items() if s.counts[c]}
            count, start, end = sum(s.counts.values()), s.start_ns, s.end_ns + 1
        else:
            r = bag.reader
            topics = {c.topic: (c.msgtype, c.msgcount) for c in r.connections}
            count, start, end = r.message_count, r.start_time, r.end_time
        return BagInfo(p, topics, start, end, count, custom, tuple(bag.notes))
    finally:
        bag.close()


def verify_bag(path: str | Path) -> list[str]:
    """Checks every stored CRC of the bag's MCAP file, and metadata.yaml's custom_data (the
    recorded graph) against the CRC-covered copy in the file; returns notes (truncation, no
    CRCs, metadata that disagrees with the file).

    Raises:
        BagError: a CRC does not match or custom_data differs (bytes changed after writing),
            or the bag is unreadable.
    """
    p = Path(path)
    bag = _Bag(p)
    bag.close()
    notes = list(bag.notes)
    if bag.mcap is None:
        return notes
    if bag.scan is None and not check_mcap(bag.mcap).checksummed:
        notes.append(f"{bag.mcap} stores no CRCs: corruption would go unnoticed")
    stored = bag.scan.custom_data if bag.scan is not None else stored_custom_data(bag.mcap)
    listed = bagmeta.custom_data(bag.meta)
    if stored is not None and stored != listed:
        keys = sorted(k for k in set(stored) | set(listed) if stored.get(k) != listed.get(k))
        raise BagError(
            f"{p}/metadata.yaml: custom_data {keys} differ from the CRC-checked copy in "
            f"{bag.mcap.name} (metadata.yaml was edited or is corrupt)"
        )
    return notes


def topic_qos(path: str | Path) -> dict[str, list[Qos]]:
    """The offered QoS profiles of each topic, as the MCAP file (or metadata.yaml, for
    bags robomr does not write) stores them."""
    bag = _Bag(Path(path))
    try:
        if bag.scan is not None:
            return {
                topic: _parse_qos(bag.scan.qos.get(cid, ""))
                for cid, (topic, _) in bag.scan.channels.items()
            }
        return {
            c.topic: list(getattr(c.ext, "offered_qos_profiles", []) or [])
            for c in bag.reader.connections
        }
    finally:
        bag.close()


def _parse_qos(text: str) -> list[Qos]:
    try:
        return parse_qos(text)
    except Exception:  # unreadable QoS is not worth failing a copy for: none offered
        return []


def read_bag(path: str | Path, topics: Iterable[str] | None = None) -> Iterator[BagMessage]:
    """Yields the bag's messages in log-time order (of a truncated MCAP file: the messages of
    its complete chunks).

    Raises:
        BagError: missing, foreign or corrupt bag (a chunk failing its CRC), or a message type
            the type store lacks.
    """
    p = Path(path)
    bag = _Bag(p)
    wanted = None if topics is None else set(topics)
    try:
        store = typestore().types
        if bag.scan is not None:
            chans = {
                c: tt for c, tt in bag.scan.channels.items() if wanted is None or tt[0] in wanted
            }
            _check_types(p, chans.values(), store)
            for cid, stamp, raw in bag.scan.messages(set(chans)):
                yield BagMessage(chans[cid][0], chans[cid][1], int(stamp), bytes(raw))
            return
        conns = [c for c in bag.reader.connections if wanted is None or c.topic in wanted]
        _check_types(p, [(c.topic, c.msgtype) for c in conns], store)
        if not conns:
            return  # rosbags reads every topic when given none
        try:
            for conn, stamp, raw in bag.reader.messages(connections=conns):
                yield BagMessage(conn.topic, conn.msgtype, int(stamp), bytes(raw))
        except (BagError, MessageError):
            raise
        except Exception as err:
            raise BagError(f"{p}: cannot read messages (corrupt file): {err}") from None
    finally:
        bag.close()


def _check_types(path: Path, topic_types: Iterable[tuple[str, str]], store: dict) -> None:
    for topic, typename in topic_types:
        if typename not in store:
            raise BagError(
                f"{path}: topic {topic} has type {typename!r}, unknown to robomr's type store"
            )
