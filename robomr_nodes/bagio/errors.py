"""Errors of bag reading and writing."""

from __future__ import annotations


class BagError(RuntimeError):
    """A bag that cannot be written or read: missing, truncated, corrupt, foreign, or holding
    unknown types. The message names the file and, where there is one, the key at fault."""


class BagWriteError(BagError):
    """Writing a bag failed (disk full, file too large, I/O error). What was written before the
    failure stays readable; the message names the file, the cause and what was kept."""
