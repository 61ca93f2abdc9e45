"""MCAP files that survive a killed process or a full disk, their checksums, and recovery.

Writing (:class:`DurableMcapWriter`): the ``mcap`` library's writer with chunk, data-section and
summary CRCs on and no compression (``ros2 bag record``'s default), on an unbuffered file, so a
chunk is in the kernel as soon as it is complete. A chunk closes at ``chunk_size`` bytes or
``flush_interval_s`` of wall time after its first message, so a hard kill loses at most that
much. After each complete chunk the file ends on a record boundary, its *committed* size. When
a write fails (ENOSPC, EFBIG), :meth:`DurableMcapWriter.abort` cuts the file back to that size
and appends a DataEnd record and a footer without summary (valid MCAP: readers scan it).

Checking (:func:`check_mcap`), MCAP spec (mcap.dev/spec): ``data_section_crc`` covers every byte
from the start of the file to the DataEnd record; ``summary_crc`` covers the summary section and
the footer's opcode, length and two offsets; each chunk's ``uncompressed_crc`` its records.

Recovering (:class:`ChunkScan`): a file without footer (its writer was killed) is read record by
record; every complete chunk is kept (and its CRC checked), the incomplete tail is skipped.
"""

from __future__ import annotations

import contextlib
import heapq
import os
import struct
import time
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib.metadata import version
from io import BytesIO
from pathlib import Path
from typing import BinaryIO

from mcap.data_stream import ReadDataStream
from mcap.records import Channel, Chunk, Message, Schema
from mcap.stream_reader import breakup_chunk
from mcap.writer import CompressionType, Writer

from robomr_nodes.bagio.errors import BagError

MAGIC = b"\x89MCAP0\r\n"
_FOOTER_LEN = 1 + 8 + 20 + 8  # opcode, length, summary_start, summary_offset_start, crc; magic
_DATA_END_LEN = 1 + 8 + 4
OP_CHUNK, OP_SCHEMA, OP_CHANNEL, OP_MESSAGE, OP_DATA_END = 0x06, 0x03, 0x04, 0x05, 0x0F
LIBRARY = f"robomr (mcap-python {version('mcap')})"


class DurableMcapWriter:
    """An MCAP file being written; also the unbuffered stream the ``mcap`` writer writes to.

    Raises (every method): OSError from the file system; the caller then calls :meth:`abort`.
    """

    def __init__(
        self, path: Path, chunk_size: int = 1 << 20, flush_interval_s: float = 1.0
    ) -> None:
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        self._pos = 0
        self._flush_interval_s = flush_interval_s
        self._chunk_started: float | None = None
        self._schemas: dict[str, int] = {}
        self._writer = Writer(
            self,  # type: ignore[arg-type]  (write/tell/flush is all it uses)
            chunk_size=chunk_size,
            compression=CompressionType.NONE,
            enable_crcs=True,
            enable_data_crcs=True,
        )
        self._writer.start(profile="ros2", library=LIBRARY)
        self.committed = self._pos

    # -- the stream protocol the mcap writer uses ---------------------------------------------
    def write(self, data: bytes | memoryview) -> int:
        view = memoryview(data)
        while view:
            n = os.write(self._fd, view)  # raises OSError (ENOSPC, EFBIG, EIO)
            view = view[n:]
            self._pos += n
        return len(data)

    def tell(self) -> int:
        return self._pos

    def flush(self) -> None:
        """Nothing is buffered in this process."""

    # -- recording ----------------------------------------------------------------------------
    def add_channel(self, topic: str, typename: str, msgdef: str, qos_yaml: str) -> int:
        """Registers ``topic`` (CDR, ``ros2msg`` schema); returns the channel id."""
        if typename not in self._schemas:
            self._schemas[typename] = self._writer.register_schema(
                typename, "ros2msg", msgdef.encode()
            )
        return self._writer.register_channel(
            topic, "cdr", self._schemas[typename], {"offered_qos_profiles": qos_yaml}
        )

    def add_message(self, channel_id: int, stamp_ns: int, raw: bytes) -> bool:
        """Appends a message; True when this committed a chunk to the file."""
        now = time.monotonic()
        if self._chunk_started is None:
            self._chunk_started = now
        self._writer.add_message(channel_id, stamp_ns, raw, stamp_ns)
        if now - self._chunk_started >= self._flush_interval_s:
            self._writer.flush()
        return self._commit()

    def _commit(self) -> bool:
        if self._pos == self.committed:
            return False
        self.committed = self._pos
        self._chunk_started = None
        return True

    def finish(self, rosbag2_metadata: str) -> None:
        """Writes the last chunk, the rosbag2 metadata record, summary and footer; closes."""
        self._writer.flush()
        self._commit()
        self._writer.add_metadata("rosbag2", {"serialized_metadata": rosbag2_metadata})
        self._commit()
        self._writer.finish()
        os.close(self._fd)
        self._fd = -1

    def abort(self) -> None:
        """Cuts the file to its last complete chunk and ends it with DataEnd and a footer
        (best effort: without space for them the file is left cut, which readers recover)."""
        if self._fd < 0:
            return
        try:
            os.ftruncate(self._fd, self.committed)
            os.lseek(self._fd, self.committed, os.SEEK_SET)
            tail = struct.pack("<BQI", OP_DATA_END, 4, 0) + struct.pack("<BQQQI", 2, 20, 0, 0, 0)
            os.write(self._fd, tail + MAGIC)
        except OSError:
            # without even that, the file keeps a partial record after its last chunk, which
            # ChunkScan skips
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self.committed)
        finally:
            os.close(self._fd)
            self._fd = -1


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
            ChunkScan(path)  # raises naming the first chunk whose own CRC fails
            raise BagError(
                f"{path}: the data section fails its CRC check outside the chunks "
                "(an index or header changed after writing: corrupt file)"
            )
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

    def __post_init__(self) -> None:
        schemas: dict[int, str] = {}
        times: list[int] = []
        for offset, op, body in self._records():
            if op == OP_DATA_END:
                self.footer = True
                break
            records = self._parse(offset, op, body)
            if any(isinstance(r, Message) for r in records):
                self.chunks.append((offset, len(body) + 9))
            for rec in records:
                if isinstance(rec, Schema):
                    schemas[rec.id] = rec.name
                elif isinstance(rec, Channel):
                    self.channels[rec.id] = (rec.topic, schemas.get(rec.schema_id, ""))
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
