"""ROS 2 parameter files (``node: ros__parameters: ...``) as rcl parses and rclpy applies them.

Parsing follows ``rcl_yaml_param_parser`` (jazzy): mapping keys above ``ros__parameters`` are
namespace levels joined with ``/`` (``robomr: {sim: {ros__parameters: ...}}`` is the key
``robomr/sim``); nested mappings under ``ros__parameters`` become dotted names (``solver.tol``).
All files given to one node go into one table of node keys, in order: a key keeps the position
of its first appearance, and a later value of the same parameter under the same key replaces
the earlier one.

Matching follows rclpy (``rclpy/src/rclpy/node.cpp``, ``_populate_node_parameters_from_rcl_params``,
wildcards since ros2/rclpy#987; rclcpp's ``parameter_map.cpp`` does the same): a key without a
leading ``/`` gets one (a bare ``sim:`` is the node ``/sim`` and nothing else); every ``/*`` of
the key becomes the regular expression ``(/\\w+)`` (so ``/**`` becomes ``(/\\w+)*``), and the
section applies when that expression matches the whole fully qualified node name. So ``/**``
matches every node, ``/**/sim`` a node named ``sim`` in any namespace, ``/robomr/*`` every node
directly in ``/robomr`` and ``/*`` every node in the root namespace. Matching sections apply in
table order, a later one overriding an earlier one.

robomr adds one check rclpy does not make: a parameter that the node does not declare is an
error when it comes from a section whose last name is literal (``/**/sim``, ``/robomr/sim``),
since that section was written for this node; from a section ending in a wildcard it is ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from robomr_nodes.params import ParamOverride
from robomr_nodes.yamlfile import load_yaml_file, parse_yaml_text

PARAMS_KEY = "ros__parameters"


class ParamFileError(ValueError):
    """A parameter file that is not valid YAML or not in the ros__parameters layout."""


def load_param_file(path: str | Path, text: str | None = None) -> dict[str, dict[str, Any]]:
    """Node key -> flat {name: value} of a parameter file, in file order.

    Args:
        path: the file (also named in errors).
        text: its content when already read (e.g. after launch substitutions).

    Raises:
        ParamFileError: unreadable file, bad YAML, or a node entry without ``ros__parameters``;
            the message names the file and the offending key.
    """
    p = Path(path)
    doc = (
        load_yaml_file(p, ParamFileError, "parameter file")
        if text is None
        else parse_yaml_text(text, p, ParamFileError, "parameter file")
    )
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise ParamFileError(f"{p}: top level must map node names to sections")
    sections: dict[str, dict[str, Any]] = {}
    _collect(doc, "", p, sections)
    return sections


def _collect(tree: dict, prefix: str, path: Path, out: dict[str, dict[str, Any]]) -> None:
    for raw_key, body in tree.items():
        key = f"{prefix}/{raw_key}" if prefix else str(raw_key)
        if not isinstance(body, dict):  # a value where rcl expects a node or namespace
            raise ParamFileError(f"{path}: section {prefix or key!r} must contain {PARAMS_KEY!r}")
        if PARAMS_KEY not in body:  # a namespace level (rcl: add_name_to_ns)
            _collect(body, key, path, out)
            continue
        extra = set(body) - {PARAMS_KEY}
        if extra:
            raise ParamFileError(f"{path}: section {key!r} has unknown key(s) {sorted(extra)}")
        params = body[PARAMS_KEY] or {}
        if not isinstance(params, dict):
            raise ParamFileError(f"{path}: {key + '.' + PARAMS_KEY!r} must be a mapping")
        out.setdefault(key, {}).update(_flatten(params, ""))


def _flatten(tree: dict, prefix: str) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for name, value in tree.items():
        full = f"{prefix}{name}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{full}."))
        else:
            flat[full] = value
    return flat


def key_pattern(key: str) -> str:
    """The regular expression rclpy makes of a section key (leading ``/`` added)."""
    name = key if key.startswith("/") else "/" + key
    return name.replace("/*", r"(/\w+)")


def section_matches(key: str, node_fq_name: str) -> bool:
    """Whether a section key applies to the node with fully qualified name ``node_fq_name``.

    Raises:
        ParamFileError: the key is not a valid regular expression after the rewrite.
    """
    try:
        return re.fullmatch(key_pattern(key), node_fq_name, flags=re.ASCII) is not None
    except re.error as err:
        raise ParamFileError(f"section key {key!r} is not a valid node pattern: {err}") from None


def names_one_node(key: str) -> bool:
    """Whether the key's last name is literal (the section was written for one node name)."""
    return "*" not in key.rstrip("/").rsplit("/", 1)[-1]


@dataclass
class ParamTable:
    """The parameter overrides of one node's files and launch values, as rcl merges them."""

    sections: dict[str, dict[str, ParamOverride]] = field(default_factory=dict)

    def add_file(self, path: str | Path, text: str | None = None) -> list[str]:
        """Merges a parameter file (its content ``text`` when given) into the table; returns
        the file's section keys.

        Raises:
            ParamFileError: see :func:`load_param_file`.
        """
        sections = load_param_file(path, text)
        for key, params in sections.items():
            wildcard = not names_one_node(key)
            self.add_section(
                key, {n: ParamOverride(v, f"{path}: {key}", wildcard) for n, v in params.items()}
            )
        return list(sections)

    def add_section(self, key: str, params: dict[str, ParamOverride]) -> None:
        self.sections.setdefault(key, {}).update(params)

    def overrides_for(self, node_fq_name: str) -> dict[str, ParamOverride]:
        """What the node receives: every matching section, in table order, later ones winning."""
        out: dict[str, ParamOverride] = {}
        for key, params in self.sections.items():
            if section_matches(key, node_fq_name):
                out.update(params)
        return out


def overrides_for(path: str | Path, node_fq_name: str) -> dict[str, ParamOverride]:
    """The overrides one parameter file gives the node ``node_fq_name``."""
    table = ParamTable()
    table.add_file(path)
    return table.overrides_for(node_fq_name)
