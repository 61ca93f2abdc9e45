"""ROS 2 YAML launch files on the embedded backend.

Supports what robomr's launch files use, with ROS 2 semantics: ``arg``, ``let``, ``node``
(pkg, exec, name, namespace, param (name/value and ``from`` files, with ``allow_substs``),
remap, if/unless),
``include`` (file, arg), ``group`` (scoped, children), ``push-ros-namespace`` and
``executable``; substitutions ``$(var)``, ``$(find-pkg-share)``, ``$(env)``, ``$(dirname)``
and ``$(eval)``. Nodes of other packages and plain executables are listed as skipped (they need
ROS 2). Every error names the file and the entry.

Parameters reach a node as launch_ros passes them (``launch_ros/actions/node.py`` and
``descriptions/node.py``, jazzy): each ``param`` entry in order becomes one parameter file of the
node, a ``from`` file as it is (after substitutions with ``allow_substs: true``) and a
name/value pair as a section keyed by the node's fully qualified name; rcl merges them in that
order (:class:`robomr_nodes.param_files.ParamTable`).
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from robomr_nodes.param_files import ParamFileError, ParamTable, names_one_node, section_matches
from robomr_nodes.params import ParamOverride
from robomr_nodes.registry import NODE_CLASSES
from robomr_nodes.runtime.names import RosNameError, normalize_namespace
from robomr_nodes.yamlfile import load_yaml_file

PACKAGE = "robomr"
_NODE_KEYS = {
    "pkg",
    "exec",
    "name",
    "namespace",
    "param",
    "remap",
    "output",
    "if",
    "unless",
    "respawn",
    "respawn_delay",
    "launch-prefix",
    "args",
    "ros_args",
    "env",
}


class LaunchError(ValueError):
    """A launch file that cannot be parsed or evaluated (message names file and entry)."""


@dataclass
class NodeSpec:
    """One node to start: executable, name, namespace, parameters and remaps."""

    package: str
    executable: str
    name: str
    namespace: str
    params: dict[str, ParamOverride] = field(default_factory=dict)
    remaps: list[tuple[str, str]] = field(default_factory=list)
    source: str = ""

    @property
    def fq_name(self) -> str:
        ns = normalize_namespace(self.namespace)
        return f"/{self.name}" if ns == "/" else f"{ns}/{self.name}"


@dataclass
class LaunchPlan:
    """The evaluated launch file: nodes to run, argument values, entries skipped, warnings
    (parameter-file sections that name a node of the graph but match none of them)."""

    nodes: list[NodeSpec]
    args: dict[str, str]
    skipped: list[str]
    warnings: list[str] = field(default_factory=list)
    foreign: list[NodeSpec] = field(default_factory=list)  # other packages' nodes (skipped)


def package_share(package: str) -> Path:
    """The share directory of a package (robomr: the source tree or the installed share).

    Raises:
        LaunchError: the package is not robomr and no ROS 2 install provides it.
    """
    if package == PACKAGE:
        source_root = Path(__file__).resolve().parent.parent
        if (source_root / "package.xml").exists():
            return source_root
        installed = Path(sys.prefix) / "share" / PACKAGE
        if installed.exists():
            return installed
    for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep):
        if prefix and (Path(prefix) / "share" / package).exists():
            return Path(prefix) / "share" / package
    raise LaunchError(f"package {package!r} not found (is ROS 2 sourced?)")


@dataclass
class _Context:
    file: Path
    vars: dict[str, str]
    namespace: str = "/"
    declared_args: set[str] = field(default_factory=set)

    def child(self, file: Path | None = None) -> _Context:
        return _Context(file or self.file, dict(self.vars), self.namespace, set())


class _Evaluator:
    def __init__(self, overrides: dict[str, str]) -> None:
        self.overrides = dict(overrides)
        self.used_overrides: set[str] = set()
        self.nodes: list[NodeSpec] = []
        self.stack: list[Path] = []  # files being evaluated, outermost first
        self.foreign: list[NodeSpec] = []
        self.skipped: list[str] = []
        self.sections_used: dict[tuple[str, str], bool] = {}  # (file, key) -> matched a node
        self.top_args: dict[str, str] = {}

    # -- substitutions ---------------------------------------------------------------------
    def subst(self, value: Any, ctx: _Context, where: str) -> Any:
        if not isinstance(value, str) or "$(" not in value:
            return value
        out, i = [], 0
        while i < len(value):
            start = value.find("$(", i)
            if start < 0:
                out.append(value[i:])
                break
            out.append(value[i:start])
            depth, j = 0, start + 1
            while j < len(value):
                depth += {"(": 1, ")": -1}.get(value[j], 0)
                if depth == 0:
                    break
                j += 1
            if depth:
                raise LaunchError(f"{ctx.file}: {where}: unbalanced '$(' in {value!r}")
            inner = self.subst(value[start + 2 : j], ctx, where)
            out.append(self._command(inner, ctx, where))
            i = j + 1
        return "".join(out)

    def _command(self, text: str, ctx: _Context, where: str) -> str:
        cmd, _, rest = text.strip().partition(" ")
        rest = rest.strip()
        if cmd == "var":
            if rest not in ctx.vars:
                raise LaunchError(
                    f"{ctx.file}: {where}: $(var {rest}) is not defined; defined: "
                    f"{sorted(ctx.vars)}"
                )
            return ctx.vars[rest]
        if cmd == "find-pkg-share":
            try:
                return str(package_share(rest))
            except LaunchError as err:
                raise LaunchError(f"{ctx.file}: {where}: {err}") from None
        if cmd == "env":
            name, _, default = rest.partition(" ")
            if name not in os.environ and not default:
                raise LaunchError(f"{ctx.file}: {where}: environment variable {name} is unset")
            return os.environ.get(name, default.strip("'\""))
        if cmd == "dirname":
            return str(ctx.file.parent)
        if cmd == "eval":
            expr = rest.strip("'\"")
            try:
                return str(eval(expr, {"__builtins__": {}, "math": math}, {}))
            except Exception as err:
                raise LaunchError(f"{ctx.file}: {where}: $(eval {expr}) failed: {err}") from err
        raise LaunchError(f"{ctx.file}: {where}: unknown substitution $({cmd} ...)")

    def condition(self, entry: dict, ctx: _Context, where: str) -> bool:
        for key, want in (("if", True), ("unless", False)):
            if key in entry:
                text = str(self.subst(entry[key], ctx, where)).strip().lower()
                if text not in ("true", "false", "1", "0"):
                    raise LaunchError(f"{ctx.file}: {where}: {key}: {text!r} is not a boolean")
                if (text in ("true", "1")) != want:
                    return False
        return True

    # -- entries ---------------------------------------------------------------------------
    def run(self, entries: Any, ctx: _Context, where: str) -> None:
        if not isinstance(entries, list):
            raise LaunchError(f"{ctx.file}: {where} must be a list of entries")
        for i, entry in enumerate(entries):
            loc = f"{where}[{i}]"
            if not isinstance(entry, dict) or len(entry) != 1:
                raise LaunchError(
                    f"{ctx.file}: {loc}: each entry is a one-key mapping "
                    "(arg, let, node, include, group, ...)"
                )
            kind, body = next(iter(entry.items()))
            handler = getattr(self, "_" + kind.replace("-", "_"), None)
            if handler is None:
                raise LaunchError(f"{ctx.file}: {loc}: unknown launch entry {kind!r}")
            if not isinstance(body, dict):
                raise LaunchError(f"{ctx.file}: {loc}.{kind} must be a mapping")
            handler(body, ctx, f"{loc}.{kind}")

    def _arg(self, body: dict, ctx: _Context, where: str) -> None:
        name = str(_required(body, "name", ctx, where))
        ctx.declared_args.add(name)
        if name in ctx.vars:  # given by the includer or the command line
            return
        if ctx.file == self.root and name in self.overrides:
            ctx.vars[name] = self.overrides[name]
            self.used_overrides.add(name)
        elif "default" in body:
            ctx.vars[name] = str(self.subst(_scalar(body["default"]), ctx, where))
        else:
            raise LaunchError(
                f"{ctx.file}: {where}: argument {name!r} has no default; pass {name}:=VALUE"
            )
        if ctx.file == self.root:
            self.top_args[name] = ctx.vars[name]

    def _let(self, body: dict, ctx: _Context, where: str) -> None:
        name = str(_required(body, "name", ctx, where))
        ctx.vars[name] = str(self.subst(_scalar(_required(body, "value", ctx, where)), ctx, where))

    def _push_ros_namespace(self, body: dict, ctx: _Context, where: str) -> None:
        ns = str(self.subst(_required(body, "namespace", ctx, where), ctx, where))
        ctx.namespace = ns if ns.startswith("/") else f"{ctx.namespace.rstrip('/')}/{ns}"

    def _group(self, body: dict, ctx: _Context, where: str) -> None:
        if not self.condition(body, ctx, where):
            return
        scoped = str(body.get("scoped", True)).lower() not in ("false", "0")
        inner = ctx.child() if scoped else ctx
        if "namespace" in body:
            self._push_ros_namespace({"namespace": body["namespace"]}, inner, where)
        self.run(body.get("children", []), inner, f"{where}.children")

    def _include(self, body: dict, ctx: _Context, where: str) -> None:
        if not self.condition(body, ctx, where):
            return
        path = Path(str(self.subst(_required(body, "file", ctx, where), ctx, where)))
        resolved = [p.resolve() for p in self.stack]
        if path.resolve() in resolved:
            cycle = [*self.stack[resolved.index(path.resolve()) :], path]
            raise LaunchError(
                f"{ctx.file}: {where}: include cycle: {' -> '.join(str(p) for p in cycle)}"
            )
        if not path.is_file():
            raise LaunchError(f"{ctx.file}: {where}: included file {path} does not exist")
        child = ctx.child(path)
        for j, arg in enumerate(body.get("arg", []) or []):
            name = str(_required(arg, "name", ctx, f"{where}.arg[{j}]"))
            child.vars[name] = str(self.subst(_scalar(arg.get("value", "")), ctx, where))
        self._load(path, child)

    def _executable(self, body: dict, ctx: _Context, where: str) -> None:
        if self.condition(body, ctx, where):
            self.skipped.append(
                f"executable {self.subst(body.get('cmd', '?'), ctx, where)!r}: "
                "plain processes run only under ros2 launch"
            )

    def _node(self, body: dict, ctx: _Context, where: str) -> None:
        unknown = set(body) - _NODE_KEYS
        if unknown:
            raise LaunchError(
                f"{ctx.file}: {where}: unknown key(s) {sorted(unknown)}; "
                f"allowed: {sorted(_NODE_KEYS)}"
            )
        if not self.condition(body, ctx, where):
            return
        pkg = str(self.subst(_required(body, "pkg", ctx, where), ctx, where))
        exe = str(self.subst(_required(body, "exec", ctx, where), ctx, where))
        if pkg == PACKAGE and exe not in NODE_CLASSES:
            raise LaunchError(
                f"{ctx.file}: {where}: robomr has no node executable {exe!r}; "
                f"known: {sorted(NODE_CLASSES)}"
            )
        name = str(self.subst(body.get("name", exe), ctx, where))
        ns = str(self.subst(body.get("namespace", ""), ctx, where))
        namespace = ns if ns.startswith("/") else f"{ctx.namespace.rstrip('/')}/{ns}"
        try:
            namespace = normalize_namespace(namespace)
        except RosNameError as err:
            raise LaunchError(f"{ctx.file}: {where}: {err}") from None
        spec = NodeSpec(pkg, exe, name, namespace, source=f"{ctx.file}: {where}")
        table = ParamTable()
        for j, p in enumerate(body.get("param", []) or []):
            self._param(p, spec, table, ctx, f"{where}.param[{j}]")
        try:
            spec.params = table.overrides_for(spec.fq_name)
            for file, key in self.sections_used:
                if section_matches(key, spec.fq_name):
                    self.sections_used[(file, key)] = True
        except ParamFileError as err:
            raise LaunchError(f"{ctx.file}: {where}: {err}") from None
        for j, r in enumerate(body.get("remap", []) or []):
            loc = f"{where}.remap[{j}]"
            spec.remaps.append(
                (
                    str(self.subst(_required(r, "from", ctx, loc), ctx, loc)),
                    str(self.subst(_required(r, "to", ctx, loc), ctx, loc)),
                )
            )
        if pkg != PACKAGE:  # kept for graph checks (e.g. what ros_gz_bridge carries)
            self.skipped.append(f"node {pkg}/{exe}: needs ROS 2 (not a robomr node)")
            self.foreign.append(spec)
            return
        self.nodes.append(spec)

    def _param(self, p: Any, spec: NodeSpec, table: ParamTable, ctx: _Context, where: str) -> None:
        if not isinstance(p, dict):
            raise LaunchError(f"{ctx.file}: {where}: expected {{name, value}} or {{from}}")
        if "from" in p:
            unknown = set(p) - {"from", "allow_substs"}
            if unknown:
                raise LaunchError(f"{ctx.file}: {where}: unknown key(s) {sorted(unknown)}")
            path = str(self.subst(p["from"], ctx, where))
            substs = str(self.subst(_scalar(p.get("allow_substs", False)), ctx, where)).lower()
            try:
                text = None
                if substs in ("true", "1"):  # launch_ros ParameterFile(allow_substs=True)
                    text = self.subst(Path(path).read_text(), ctx, f"{where} ({path})")
                for key in table.add_file(path, text):
                    self.sections_used.setdefault((path, key), False)
            except OSError as err:
                raise LaunchError(f"{ctx.file}: {where}: cannot read {path}: {err}") from None
            except ParamFileError as err:
                raise LaunchError(f"{ctx.file}: {where}: {err}") from None
            return
        if "allow_substs" in p:
            raise LaunchError(f"{ctx.file}: {where}: allow_substs goes with 'from' only")
        name = str(_required(p, "name", ctx, where))
        raw = _required(p, "value", ctx, where)
        value = self.subst(raw, ctx, where)
        if isinstance(raw, str) and "$(" in raw:
            value = yaml.safe_load(value) if value != "" else ""
        table.add_section(spec.fq_name, {name: ParamOverride(value, f"{ctx.file}: {where}")})

    # -- files -----------------------------------------------------------------------------
    def _load(self, path: Path, ctx: _Context) -> None:
        doc = load_yaml_file(path, LaunchError, "launch file")
        if not isinstance(doc, dict) or set(doc) != {"launch"}:
            raise LaunchError(f"{path}: a YAML launch file has one top-level key, 'launch'")
        self.stack.append(path)
        self.run(doc["launch"], ctx, "launch")
        self.stack.pop()

    def load_root(self, path: Path) -> LaunchPlan:
        self.root = path
        self._load(path, _Context(path, {}))
        unused = sorted(set(self.overrides) - self.used_overrides)
        if unused:
            raise LaunchError(
                f"{path}: unknown launch argument(s) {unused}; declared: {sorted(self.top_args)}"
            )
        names = {n.name for n in self.nodes + self.foreign}
        warnings = [
            f"{file}: section {key!r} matches no node, but the graph has a node named "
            f"{key.rsplit('/', 1)[-1]!r} (rclpy matches keys to fully qualified names: a bare "
            f"name is a node in the root namespace; use '/**/{key.rsplit('/', 1)[-1]}')"
            for (file, key), used in self.sections_used.items()
            if not used and names_one_node(key) and key.rsplit("/", 1)[-1] in names
        ]
        return LaunchPlan(self.nodes, self.top_args, self.skipped, warnings, self.foreign)


def _required(body: Any, key: str, ctx: _Context, where: str) -> Any:
    if not isinstance(body, dict) or key not in body:
        raise LaunchError(f"{ctx.file}: {where}: missing required key {key!r}")
    return body[key]


def _scalar(value: Any) -> Any:
    return str(value).lower() if isinstance(value, bool) else value


def load_launch(path: str | Path, args: dict[str, str] | None = None) -> LaunchPlan:
    """Evaluates a YAML launch file with ``name:=value`` arguments.

    Raises:
        LaunchError: bad YAML, an unknown entry or key, a missing argument, a failed
            substitution, or a bad parameter file; the message names the file and entry.
    """
    return _Evaluator(args or {}).load_root(Path(path).resolve())


def parse_launch_args(items: list[str]) -> dict[str, str]:
    """``["a:=1", "b:=x"]`` -> ``{"a": "1", "b": "x"}``.

    Raises:
        LaunchError: an item without ``:=``.
    """
    out = {}
    for item in items:
        name, sep, value = item.partition(":=")
        if not sep or not name:
            raise LaunchError(f"launch arguments are name:=value, got {item!r}")
        out[name] = value
    return out
