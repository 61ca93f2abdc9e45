"""ROS 2 parameter files (``node: ros__parameters: ...``) for the embedded backend.

Section keys match a node by name (``lidar_detector``), fully qualified name
(``/robomr/lidar_detector``) or wildcard (``/**``, ``/robomr/*``, fnmatch-style as ROS 2 does).
Nested dictionaries under ``ros__parameters`` become dotted names (``solver.tol``).
"""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import Any

from robomr_nodes.params import ParamOverride
from robomr_nodes.yamlfile import load_yaml_file


class ParamFileError(ValueError):
    """A parameter file that is not valid YAML or not in the ros__parameters layout."""


def load_param_file(path: str | Path) -> dict[str, dict[str, Any]]:
    """Section key -> flat {name: value} of a parameter file.

    Raises:
        ParamFileError: unreadable file, bad YAML, or a section without ``ros__parameters``;
            the message names the file and the offending key.
    """
    p = Path(path)
    doc = load_yaml_file(p, ParamFileError, "parameter file")
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise ParamFileError(f"{p}: top level must map node names to sections")
    sections: dict[str, dict[str, Any]] = {}
    for key, body in doc.items():
        if not isinstance(body, dict) or "ros__parameters" not in body:
            raise ParamFileError(f"{p}: section {key!r} must contain 'ros__parameters'")
        extra = set(body) - {"ros__parameters"}
        if extra:
            raise ParamFileError(f"{p}: section {key!r} has unknown key(s) {sorted(extra)}")
        params = body["ros__parameters"] or {}
        if not isinstance(params, dict):
            raise ParamFileError(f"{p}: {key}.ros__parameters must be a mapping")
        sections[str(key)] = _flatten(params, "", f"{p}: {key}")
    return sections


def _flatten(tree: dict, prefix: str, where: str) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for name, value in tree.items():
        full = f"{prefix}{name}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{full}.", where))
        else:
            flat[full] = value
    return flat


def _is_wildcard(key: str) -> bool:
    return "*" in key


def section_matches(key: str, node_fq_name: str) -> bool:
    """Whether a section key applies to the node with fully qualified name ``node_fq_name``."""
    node_name = node_fq_name.rsplit("/", 1)[-1]
    if key == node_name or key.lstrip("/") == node_fq_name.lstrip("/"):
        return True
    if _is_wildcard(key):
        pattern = "/" + key.lstrip("/")
        return fnmatch.fnmatchcase(node_fq_name, pattern.replace("/**", "*"))
    return False


def overrides_for(path: str | Path, node_fq_name: str) -> dict[str, ParamOverride]:
    """The overrides a parameter file gives one node (wildcard sections first, then named)."""
    sections = load_param_file(path)
    out: dict[str, ParamOverride] = {}
    for key in sorted(sections, key=lambda k: not _is_wildcard(k)):
        if section_matches(key, node_fq_name):
            for name, value in sections[key].items():
                out[name] = ParamOverride(value, f"{path}: {key}", wildcard=_is_wildcard(key))
    return out
