"""Checking and recovering MCAP files (written by ``mcapfile`` or any other writer).

:func:`check_mcap` (MCAP spec, mcap.dev/spec): ``data_section_crc`` covers every byte from the
start of the file to the DataEnd record; ``summary_crc`` covers the summary section and the
footer's opcode, length and two offsets; each chunk's ``uncompressed_crc`` its records.
:class:`ChunkScan` reads a file without footer (its writer was killed) record by record: every
complete chunk is kept (and its CRC checked), the incomplete tail is skipped.
"""

from __future__ import annotations

import heapq
import struct
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import BinaryIO

from mcap.data_stream import ReadDataStream
from mcap.records import Channel, Chunk, Message, Metadata, Schema
from mcap.stream_reader import breakup_chunk

from robomr_nodes.bagio.errors import BagError
from robomr_nodes.bagio.mcapfile import (
    CUSTOM_RECORD,
    MAGIC,
    OP_CHANNEL,
    OP_CHUNK,
    OP_DATA_END,
    OP_MESSAGE,
    OP_METADATA,
    OP_SCHEMA,
)

_FOOTER_LEN = 1 + 8 + 20 + 8  # opcode, length, summary_start, summary_offset_start, crc; magic
_DATA_END_LEN = 1 + 8 + 4


def _custom_record(path: Path, offset: int, body: bytes) -> dict[str, str] | None:
    try:
        record = Metadata.read(ReadDataStream(BytesIO(body)))
    except Exception as err:  # a complete record that does not parse is corrupt
        raise BagError(f"{path}: the metadata record at byte {offset} is corrupt ({err})") from None
    return dict(record.metadata) if record.name == CUSTOM_RECORD else None


def stored_custom_data(path: Path) -> dict[str, str] | None:
    """The custom_data copy the robomr recorder stores right after the MCAP header (None for
    files from other writers). Reads only the records before the first chunk."""
    size = path.stat().st_size
    with path.open("rb") as fh:
        pos = len(MAGIC)
        fh.seek(pos)
        while pos + 9 <= size:
            op, length = struct.unpack("<BQ", fh.read(9))
            if op in (OP_CHUNK, OP_MESSAGE, OP_DATA_END) or pos + 9 + length > size:
                return None
            body = fh.read(length)
            if op == OP_METADATA and (found := _custom_record(path, pos, body)) is not None:
                return found
            pos += 9 + length
    return None


@dataclass(frozen=True)
class McapCheck:
    """What :func:`check_mcap` found: complete (footer present) and whether CRCs were stored."""

    complete: bool
    checksummed: bool


def _crc(fh: BinaryIO, start: int, end: int, crc: int = 0) -> int:
    fh.seek(start)
    left = end - start
    while left > 0:
        block = fh.read(min(left, 1 << 22))
        if not block:
            break
        crc = zlib.crc32(block, crc)
        left -= len(block)
    return crc


def check_mcap(path: Path, verify: bool = True) -> McapCheck:
    """Checks magic and footer, and with ``verify`` the summary and data-section CRCs.

    Raises:
        BagError: empty file, not an MCAP file, corrupt footer, or a CRC mismatch (the message
            says which part is corrupt and, for chunks, which one).
    """
    size = path.stat().st_size
    with path.open("rb") as fh:
        head = fh.read(len(MAGIC))
        if not head:
            raise BagError(f"{path} is empty: the recording stopped before writing anything")
        if head != MAGIC[: len(head)]:
            raise BagError(f"{path}: not an MCAP file (it does not start with the MCAP magic)")
        fh.seek(max(size - len(MAGIC), 0))
        if size < len(MAGIC) + _FOOTER_LEN or fh.read() != MAGIC:
            return McapCheck(complete=False, checksummed=False)
        fh.seek(size - _FOOTER_LEN)
        op, length, summary_start, offsets_start, summary_crc = struct.unpack(
            "<BQQQI", fh.read(_FOOTER_LEN - len(MAGIC))
        )
        footer_start = size - _FOOTER_LEN
        if op != 2 or length != 20 or not (summary_start == 0 or 8 < summary_start <= footer_start):
            raise BagError(f"{path}: corrupt MCAP footer (bytes changed after writing)")
        if verify and summary_crc:
            crc = _crc(fh, summary_start, footer_start) if summary_start else 0
            crc = zlib.crc32(struct.pack("<BQQQ", 2, 20, summary_start, offsets_start), crc)
            if crc != summary_crc:
                raise BagError(f"{path}: the summary section fails its CRC check (corrupt file)")
        data_end = (summary_start or footer_start) - _DATA_END_LEN
        fh.seek(max(data_end, 0))
        op, length, data_crc = struct.unpack("<BQI", fh.read(_DATA_END_LEN))
        if op != OP_DATA_END or length != 4:
            data_crc = 0
        if verify and data_crc and _crc(fh, 0, data_end) != data_crc:
            try:  # find the damaged record: the first chunk whose own CRC fails, ...
                ChunkScan(path)
                where = "outside the chunks, an index or header is corrupt"
            except BagError as err:
                where = str(err).removeprefix(f"{path}: ")
            raise BagError(f"{path}: the data section fails its CRC check: {where}")
    return McapCheck(complete=True, checksummed=bool(summary_crc or data_crc))


@dataclass
class ChunkScan:
    """Channels, counts and complete chunks of an MCAP file, read record by record.

    Attributes:
        channels: channel id -> (topic, type name).
        counts: messages per channel id in complete chunks.
        chunks: (offset, length) of every complete chunk record.
        footer: whether the data section ended properly (DataEnd found).
        skipped_bytes: bytes after the last complete record (an incomplete chunk).
    """

    path: Path
    channels: dict[int, tuple[str, str]] = field(default_factory=dict)
    counts: Counter = field(default_factory=Counter)
    chunks: list[tuple[int, int]] = field(default_factory=list)
    start_ns: int = 0
    end_ns: int = 0
    footer: bool = False
    skipped_bytes: int = 0
    custom_data: dict[str, str] | None = None
    qos: dict[int, str] = field(default_factory=dict)  # channel id -> offered QoS (YAML)

    def __post_init__(self) -> None:
        schemas: dict[int, str] = {}
        times: list[int] = []
        for offset, op, body in self._records():
            if op == OP_DATA_END:
                self.footer = True
                break
            if op == OP_METADATA and self.custom_data is None:
                self.custom_data = _custom_record(self.path, offset, body)
            records = self._parse(offset, op, body)
            if any(isinstance(r, Message) for r in records):
                self.chunks.append((offset, len(body) + 9))
            for rec in records:
                if isinstance(rec, Schema):
                    schemas[rec.id] = rec.name
                elif isinstance(rec, Channel):
                    self.channels[rec.id] = (rec.topic, schemas.get(rec.schema_id, ""))
                    self.qos[rec.id] = rec.metadata.get("offered_qos_profiles", "")
                elif isinstance(rec, Message):
                    self.counts[rec.channel_id] += 1
                    times.append(rec.log_time)
        if times:
            self.start_ns, self.end_ns = min(times), max(times)

    def _records(self) -> Iterator[tuple[int, int, bytes]]:
        size = self.path.stat().st_size
        with self.path.open("rb") as fh:
            pos = len(MAGIC)
            fh.seek(pos)
            while pos + 9 <= size:
                op, length = struct.unpack("<BQ", fh.read(9))
                if pos + 9 + length > size:
                    break
                yield pos, op, fh.read(length)
                pos += 9 + length
            self.skipped_bytes = size - pos

    def _parse(self, offset: int, op: int, body: bytes) -> list:
        """The schema, channel and message records of a top-level record (chunks unpacked,
        their CRC checked); other records give []."""
        stream = ReadDataStream(BytesIO(body))
        try:
            if op == OP_CHUNK:
                return breakup_chunk(Chunk.read(stream), validate_crc=True)
            if op == OP_SCHEMA:
                return [Schema.read(stream)]
            if op == OP_CHANNEL:
                return [Channel.read(stream)]
            if op == OP_MESSAGE:
                return [Message.read(stream, len(body))]
        except Exception as err:  # any parse failure of a complete record means corruption
            raise BagError(
                f"{self.path}: the record at byte {offset} is corrupt ({err}); "
                "bytes changed after writing"
            ) from None
        return []

    def messages(self, channel_ids: set[int]) -> Iterator[tuple[int, int, bytes]]:
        """(channel id, log time ns, CDR bytes) of the complete chunks, in log-time order."""
        with self.path.open("rb") as fh:

            def chunk_messages(k: int, offset: int, length: int) -> Iterator[tuple]:
                fh.seek(offset)
                op = fh.read(9)[0]
                # a chunk starts with its message_start_time: a sentinel that keeps the merge
                # from unpacking chunks before their time comes
                first = struct.unpack("<Q", fh.read(8))[0] if op == OP_CHUNK else 0
                yield (first, k, -1, 0, b"")
                fh.seek(offset + 9)
                recs = self._parse(offset, op, fh.read(length - 9))
                msgs = [r for r in recs if isinstance(r, Message) and r.channel_id in channel_ids]
                for i, m in sorted(enumerate(msgs), key=lambda im: im[1].log_time):
                    yield (m.log_time, k, i, m.channel_id, m.data)

            sources = [chunk_messages(k, o, n) for k, (o, n) in enumerate(self.chunks)]
            for stamp, _k, i, cid, data in heapq.merge(*sources):
                if i >= 0:
                    yield cid, stamp, data
