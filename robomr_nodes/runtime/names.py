"""ROS 2 name expansion and remapping (topic names relative to a node's namespace)."""

from __future__ import annotations

import re

_VALID = re.compile(r"^(~(/[A-Za-z0-9_]+)*|/?[A-Za-z_~][A-Za-z0-9_]*(/[A-Za-z_][A-Za-z0-9_]*)*|/)$")


class RosNameError(ValueError):
    """An invalid ROS name (topic, node or namespace)."""


def normalize_namespace(namespace: str) -> str:
    """``""``, ``"robomr"`` or ``"/robomr/"`` -> ``"/"`` / ``"/robomr"``."""
    ns = "/" + namespace.strip("/") if namespace.strip("/") else "/"
    if ns != "/" and not _VALID.match(ns):
        raise RosNameError(f"invalid namespace {namespace!r}")
    return ns


def expand_topic(name: str, namespace: str, node_name: str) -> str:
    """The fully qualified name of ``name`` for a node ``node_name`` in ``namespace``.

    ``/abs`` stays as is, ``rel`` becomes ``/ns/rel``, ``~/x`` becomes ``/ns/node/x``.

    Raises:
        RosNameError: the name has characters ROS 2 does not allow.
    """
    if not name or not _VALID.match(name):
        raise RosNameError(f"invalid topic name {name!r}")
    ns = normalize_namespace(namespace)
    prefix = "" if ns == "/" else ns
    if name.startswith("/"):
        return name
    if name == "~":
        return f"{prefix}/{node_name}"
    if name.startswith("~/"):
        return f"{prefix}/{node_name}/{name[2:]}"
    return f"{prefix}/{name}"


def apply_remaps(name: str, namespace: str, node_name: str, remaps: list[tuple[str, str]]) -> str:
    """Expands ``name`` and applies the first matching remap rule (both sides expanded)."""
    full = expand_topic(name, namespace, node_name)
    for src, dst in remaps:
        if expand_topic(src, namespace, node_name) == full:
            return expand_topic(dst, namespace, node_name)
    return full
