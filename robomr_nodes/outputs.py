"""Output folders and files of commands: checked before any work starts, never overwritten
by accident.

A run folder (``demo --out``, ``sim dataset --out``) must be new or empty; ``force`` allows a
non-empty one and then replaces only the entries the command writes (``bag/``,
``summary.json``, ...), leaving other files alone. A single output file (``--json``, a PNG)
is the user's explicit choice and is replaced, atomically: a failed write leaves the old file.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path


class OutputError(ValueError):
    """An output path that cannot be used: not writable, a file where a folder belongs, or a
    non-empty folder without ``force`` (the message names the path and what to do)."""


def check_creatable(path: Path) -> None:
    """Checks that the missing folders up to ``path`` can be created: the nearest existing
    ancestor is a folder that takes a new entry (probed with a temporary folder, removed at
    once: permission bits alone say nothing for root or on read-only file systems).

    Raises:
        OutputError: an ancestor is a file, or the nearest existing one is not writable.
    """
    parent = path.parent
    while not parent.exists():
        if parent.is_symlink():
            raise OutputError(f"cannot create {path}: {parent} is a broken link")
        parent = parent.parent
    if not parent.is_dir():
        raise OutputError(f"cannot create {path}: {parent} is a file, not a folder")
    try:
        tempfile.TemporaryDirectory(dir=parent, prefix=".robomr-probe-").cleanup()
    except OSError as err:
        raise OutputError(
            f"cannot create {path}: {parent} is not writable ({err.strerror})"
        ) from None


def check_output_dir(path: Path, force: bool, produces: Iterable[str]) -> None:
    """Checks, creating nothing, that ``path`` can become the command's output folder.

    Raises:
        OutputError: ``path`` is a file, is not writable, or is a non-empty folder and
            ``force`` is false (the message lists what is there).
    """
    if path.exists() and not path.is_dir():
        raise OutputError(f"{path} is a file: the output must be a folder")
    if not path.exists():
        check_creatable(path)
        return
    if not os.access(path, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write into {path}: not writable")
    held = sorted(p.name for p in path.iterdir())
    if held and not force:
        shown = ", ".join(held[:5]) + (", ..." if len(held) > 5 else "")
        raise OutputError(
            f"{path} is not empty ({shown}): choose a new folder, or pass --force to replace "
            f"{', '.join(sorted(produces))} there"
        )


def clear_outputs(path: Path, produces: Iterable[str]) -> None:
    """Removes the entries ``produces`` of ``path`` (after ``force`` was given).

    Raises:
        OutputError: an entry cannot be removed.
    """
    for name in produces:
        target = path / name
        try:
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            elif target.exists() or target.is_symlink():
                target.unlink()
        except OSError as err:
            raise OutputError(f"cannot replace {target}: {err.strerror or err}") from None


def check_output_file(path: Path, create_parents: bool = False) -> None:
    """Checks, creating nothing, that ``path`` can be written as a file (``create_parents``:
    its missing folders will be created by the writer).

    Raises:
        OutputError: ``path`` is a folder, or its folder is missing or not writable.
    """
    if path.is_dir():
        raise OutputError(f"{path} is a folder: give a file name")
    if path.exists() and not os.access(path, os.W_OK):
        raise OutputError(f"cannot write {path}: not writable")
    if create_parents and not path.parent.exists():
        check_creatable(path.parent)
        return
    if path.parent.exists() and not path.parent.is_dir():
        raise OutputError(f"cannot write {path}: {path.parent} is a file, not a folder")
    if not path.parent.is_dir():
        raise OutputError(f"cannot write {path}: folder {path.parent} does not exist")
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write {path}: folder {path.parent} is not writable")


def write_file(path: Path, data: str | bytes) -> None:
    """Writes ``path`` atomically (a temporary file, then rename): on failure the old content
    stays and no partial file is left.

    Raises:
        OutputError: the file cannot be written (names the file and the cause).
    """
    check_output_file(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        if isinstance(data, str):
            tmp.write_text(data, encoding="utf-8")
        else:
            tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"cannot write {path}: {err.strerror or err}") from None
