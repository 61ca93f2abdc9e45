"""Reading a YAML file with one-line errors (launch files, parameter files, bag metadata).

PyYAML's messages span several lines and echo the source; a command prints one line naming
the file, the line number and the problem instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def yaml_problem(err: yaml.YAMLError) -> str:
    """``line N: problem`` of a PyYAML error, on one line."""
    mark = getattr(err, "problem_mark", None)
    where = f"line {mark.line + 1}: " if mark is not None else ""
    problem = getattr(err, "problem", None) or (str(err).splitlines() or ["?"])[0]
    return f"{where}{problem}"


def load_yaml_file(path: Path, error: type[Exception], what: str) -> Any:
    """The parsed content of ``path`` (None for an empty file).

    Raises:
        error: unreadable file, not UTF-8 text, or invalid YAML; the message names ``what``
            (e.g. "launch file") and the file, and for YAML errors the line.
    """
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as err:
        raise error(f"{path}: cannot read {what}: {err.strerror or err}") from None
    except UnicodeDecodeError as err:
        raise error(f"{path}: {what} is not text (byte {err.start} is not UTF-8)") from None
    return parse_yaml_text(text, path, error, what)


def parse_yaml_text(text: str, path: Path, error: type[Exception], what: str) -> Any:
    """The parsed YAML ``text`` of ``path``; see :func:`load_yaml_file`."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise error(f"{path}: invalid YAML in {what} ({yaml_problem(err)})") from None
    except RecursionError:  # deeply nested flow collections
        raise error(f"{path}: {what} is nested too deeply") from None
