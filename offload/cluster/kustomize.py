"""Render ``deploy/`` the way ``kubectl kustomize`` does, for the subset of kustomize it uses.

The Kubernetes backend applies the rendered objects with the official client, and the tests
validate them against the Kubernetes schema, on machines without kubectl. Supported fields of a
``kustomization.yaml`` (anything else is an error, so the subset cannot silently drift):
``resources`` (files, or directories with their own kustomization), ``namespace`` (set on every
namespaced object and on ServiceAccount subjects of role bindings), ``labels`` (``pairs``,
``includeSelectors``, ``includeTemplates``), ``commonLabels`` (selectors and templates too),
``commonAnnotations``, ``images`` (``name`` -> ``newName``/``newTag``). Where kubectl exists, a
test checks that both render the same objects.

Raises:
    KustomizeError: a missing file, a field outside the subset, malformed YAML.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

SUPPORTED = {
    "apiVersion",
    "kind",
    "resources",
    "namespace",
    "labels",
    "commonLabels",
    "commonAnnotations",
    "images",
}
CLUSTER_SCOPED = {
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "PriorityClass",
    "StorageClass",
    "PersistentVolume",
    "Node",
}
WORKLOADS = {"Deployment", "DaemonSet", "StatefulSet", "ReplicaSet", "Job"}


class KustomizeError(ValueError):
    """The kustomization cannot be rendered (the message names the file and the field)."""


def render(path: Path) -> list[dict[str, Any]]:
    """The objects of the kustomization in ``path`` (a directory or its kustomization.yaml)."""
    path = Path(path)
    kfile = path if path.is_file() else path / "kustomization.yaml"
    if not kfile.exists():
        raise KustomizeError(f"{kfile}: no kustomization.yaml")
    k = _load_one(kfile)
    unknown = set(k) - SUPPORTED
    if unknown:
        raise KustomizeError(f"{kfile}: fields {sorted(unknown)} are outside the supported subset")
    objects: list[dict[str, Any]] = []
    for res in k.get("resources", []):
        target = kfile.parent / res
        if target.is_dir():
            objects += render(target)
        elif target.is_file():
            objects += load_all(target)
        else:
            raise KustomizeError(f"{kfile}: resource {res!r} does not exist")
    for obj in objects:
        _transform(obj, k, kfile)
    return objects


def load_all(path: Path) -> list[dict[str, Any]]:
    """Every YAML document of a manifest file (empty documents skipped)."""
    try:
        docs = list(yaml.safe_load_all(Path(path).read_text()))
    except (OSError, yaml.YAMLError) as err:
        raise KustomizeError(f"{path}: {err}") from err
    out = [d for d in docs if d]
    for d in out:
        if not isinstance(d, dict) or "kind" not in d or "apiVersion" not in d:
            raise KustomizeError(f"{path}: a document without kind/apiVersion")
    return out


def _load_one(path: Path) -> dict[str, Any]:
    """A kustomization file: one mapping (apiVersion and kind are optional there)."""
    try:
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    except (OSError, yaml.YAMLError) as err:
        raise KustomizeError(f"{path}: {err}") from err
    if len(docs) != 1 or not isinstance(docs[0], dict):
        raise KustomizeError(f"{path}: expected one mapping")
    return docs[0]


def _transform(obj: dict[str, Any], k: dict[str, Any], kfile: Path) -> None:
    meta = obj.setdefault("metadata", {})
    if "namespace" in k and obj["kind"] not in CLUSTER_SCOPED:
        meta["namespace"] = k["namespace"]
    if "namespace" in k and obj["kind"] in ("RoleBinding", "ClusterRoleBinding"):
        for s in obj.get("subjects", []):
            if s.get("kind") == "ServiceAccount":
                s["namespace"] = k["namespace"]
    for entry in k.get("labels", []):
        pairs = entry.get("pairs", {})
        _add(meta, "labels", pairs)
        if entry.get("includeSelectors"):
            _selectors(obj, pairs)
            _templates(obj, "labels", pairs)
        elif entry.get("includeTemplates"):
            _templates(obj, "labels", pairs)
    if k.get("commonLabels"):
        _add(meta, "labels", k["commonLabels"])
        _selectors(obj, k["commonLabels"])
        _templates(obj, "labels", k["commonLabels"])
    if k.get("commonAnnotations"):
        _add(meta, "annotations", k["commonAnnotations"])
        _templates(obj, "annotations", k["commonAnnotations"])
    for image in k.get("images", []):
        if "name" not in image:
            raise KustomizeError(f"{kfile}: an images entry without name")
        for c in _containers(obj):
            name, tag = _split_image(c.get("image", ""))
            if name == image["name"]:
                new_tag = image.get("newTag", tag)
                c["image"] = image.get("newName", name) + (f":{new_tag}" if new_tag else "")


def _add(meta: dict[str, Any], key: str, values: dict[str, str]) -> None:
    meta[key] = {**(meta.get(key) or {}), **copy.deepcopy(values)}


def _selectors(obj: dict[str, Any], pairs: dict[str, str]) -> None:
    spec = obj.get("spec", {})
    if obj["kind"] == "Service":
        spec["selector"] = {**spec.get("selector", {}), **pairs}
    elif obj["kind"] in WORKLOADS and "selector" in spec:
        sel = spec["selector"].setdefault("matchLabels", {})
        sel.update(pairs)


def _templates(obj: dict[str, Any], key: str, values: dict[str, str]) -> None:
    if obj["kind"] in WORKLOADS:
        meta = obj.get("spec", {}).get("template", {}).setdefault("metadata", {})
        _add(meta, key, values)


def _containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    spec = obj.get("spec", {})
    pod = spec.get("template", {}).get("spec", {}) if obj["kind"] in WORKLOADS else spec
    if obj["kind"] not in WORKLOADS and obj["kind"] != "Pod":
        return []
    return [*pod.get("initContainers", []), *pod.get("containers", [])]


def _split_image(image: str) -> tuple[str, str]:
    if "@" in image:
        return image.split("@", 1)[0], ""
    name, _, tag = image.rpartition(":")
    if not name or "/" in tag:
        return image, ""
    return name, tag
