"""An MCAP writer that survives a killed process or a full disk (see also ``mcapread``).

:class:`DurableMcapWriter` uses the ``mcap`` library's writer with chunk, data-section and
summary CRCs on and no compression (``ros2 bag record``'s default), on an unbuffered file, so a
chunk is in the kernel as soon as it is complete. A chunk closes at ``chunk_size`` bytes or
``flush_interval_s`` of wall time after its first message, so a hard kill loses at most that
much. After each complete chunk the file ends on a record boundary, its *committed* size. When
a write fails (ENOSPC, EFBIG), :meth:`DurableMcapWriter.abort` cuts the file back to that size
and appends a DataEnd record and a footer without summary (valid MCAP: readers scan it). The
bag's custom_data is stored as an MCAP metadata record right after the header, where the data
CRC covers it.
"""

from __future__ import annotations

import contextlib
import os
import struct
import time
from importlib.metadata import version
from pathlib import Path

from mcap.writer import CompressionType, Writer

MAGIC = b"\x89MCAP0\r\n"
OP_CHUNK, OP_SCHEMA, OP_CHANNEL, OP_MESSAGE, OP_DATA_END = 0x06, 0x03, 0x04, 0x05, 0x0F
LIBRARY = f"robomr (mcap-python {version('mcap')})"
CUSTOM_RECORD = "robomr.custom_data"  # MCAP metadata record holding the bag's custom_data
OP_METADATA = 0x0C


class DurableMcapWriter:
    """An MCAP file being written; also the unbuffered stream the ``mcap`` writer writes to.

    Raises (every method): OSError from the file system; the caller then calls :meth:`abort`.
    """

    def __init__(
        self,
        path: Path,
        chunk_size: int = 1 << 20,
        flush_interval_s: float = 1.0,
        custom_data: dict[str, str] | None = None,
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
        if custom_data:  # a CRC-covered copy of what metadata.yaml's custom_data must say
            self._writer.add_metadata(CUSTOM_RECORD, custom_data)
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
