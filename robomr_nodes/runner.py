"""Runs a launch plan on the embedded backend, optionally recording every topic to a bag.

Nothing is created on disk until every node has started (a failed start leaves no empty bag
behind); a signal (SIGINT, SIGTERM, SIGHUP) or a failed bag write stops the run after the
current callback and the bag is closed (docs/reliability.md).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from robomr_nodes import shutdown
from robomr_nodes.bag import BagError, BagRecorder, check_new_bag_path
from robomr_nodes.launch_yaml import LaunchPlan, NodeSpec
from robomr_nodes.params import ParameterError, ParamOverride
from robomr_nodes.registry import load_node_class
from robomr_nodes.runtime.executor import SIM_START_NS, EmbeddedExecutor, GraphError, Tap

GRAPH_KEY = "robomr.graph"  # bag custom_data: the nodes of the run (YAML), used by replay
START_KEY = "robomr.start_ns"
_log = logging.getLogger("robomr.runner")


@dataclass
class RunOptions:
    """How to run a graph.

    Attributes:
        clock: "sim" (deterministic, as fast as possible) or "wall" (real time).
        duration_s: node time to run for; None runs until no events are left.
        record: bag folder to create, or None to record nothing.
        clock_hz: /clock rate on sim time (0: none).
        start_ns: sim time at start.
    """

    clock: Literal["sim", "wall"] = "sim"
    duration_s: float | None = 10.0
    record: Path | None = None
    clock_hz: float = 0.0
    start_ns: int = SIM_START_NS


@dataclass
class RunResult:
    executor: EmbeddedExecutor
    bag: Path | None
    messages_recorded: int
    callbacks: int
    nodes: list[NodeSpec] = field(default_factory=list)


def graph_to_yaml(nodes: list[NodeSpec]) -> str:
    """The node list of a run (executable, name, namespace, parameter values, remaps)."""
    return yaml.safe_dump(
        [
            {
                "exec": n.executable,
                "name": n.name,
                "namespace": n.namespace,
                "params": {k: v.value for k, v in n.params.items()},
                "remaps": [list(r) for r in n.remaps],
            }
            for n in nodes
        ],
        sort_keys=True,
    )


def _graph_entry(d: object, i: int, source: str) -> NodeSpec:
    where = f"{source}: custom_data {GRAPH_KEY}[{i}]"
    if not isinstance(d, dict):
        raise BagError(f"{where} is not a mapping (corrupt or edited metadata)")
    for key in ("exec", "name", "namespace"):
        if not isinstance(d.get(key), str) or not d[key]:
            raise BagError(f"{where}: key {key!r} missing or not a string")
    params, remaps = d.get("params") or {}, d.get("remaps") or []
    if not isinstance(params, dict) or not isinstance(remaps, list):
        raise BagError(f"{where}: params must be a mapping and remaps a list")
    if not all(isinstance(r, list) and len(r) == 2 for r in remaps):
        raise BagError(f"{where}: each remap must be a [from, to] pair")
    return NodeSpec(
        "robomr",
        d["exec"],
        d["name"],
        d["namespace"],
        {str(k): ParamOverride(v, source) for k, v in params.items()},
        [(str(a), str(b)) for a, b in remaps],
        source,
    )


def graph_from_yaml(text: str, source: str) -> list[NodeSpec]:
    """Inverse of :func:`graph_to_yaml`.

    Raises:
        BagError: the text is not valid YAML or not a list of node entries (names the entry).
    """
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError:
        raise BagError(f"{source}: custom_data {GRAPH_KEY} is not valid YAML") from None
    if not isinstance(doc, list):
        raise BagError(f"{source}: custom_data {GRAPH_KEY} is not a list of nodes")
    return [_graph_entry(d, i, source) for i, d in enumerate(doc)]


class NodeStartError(RuntimeError):
    """A node could not be constructed (bad scenario, model file, ...); names the node."""


def build_executor(
    nodes: list[NodeSpec], options: RunOptions, taps: tuple[Tap, ...] = ()
) -> EmbeddedExecutor:
    """An executor with ``taps`` attached, then every node of ``nodes`` constructed (taps come
    first so that what nodes publish while starting, e.g. latched maps, is seen).

    Raises:
        ParameterError: a bad parameter (names the node and the file it came from).
        NodeStartError: unknown executable, or a node's constructor rejected its input.
        GraphError: duplicate node names or conflicting topic types.
    """
    executor = EmbeddedExecutor(options.clock, options.start_ns, options.clock_hz)
    for tap in taps:
        executor.add_tap(tap)
    for spec in nodes:
        try:
            executor.add_node(
                load_node_class(spec.executable),
                spec.name,
                spec.namespace,
                spec.params,
                spec.remaps,
            )
        except ParameterError:
            raise
        except GraphError as err:  # name the launch entry that made the clash
            raise GraphError(f"{spec.source}: {err}") if spec.source else err from None
        except (ValueError, LookupError, OSError) as err:  # library errors name their input
            raise NodeStartError(
                f"node {spec.fq_name} ({spec.executable}) cannot start: {err}"
            ) from err
    return executor


class TapBuffer:
    """A tap that keeps what nodes publish while they start, until the bag exists (nothing
    is created on disk before every node has started), then forwards everything."""

    def __init__(self) -> None:
        self._held: list[tuple] = []
        self._target: Tap | None = None

    def tap(self, *args: Any) -> None:
        if self._target is None:
            self._held.append(args)
        else:
            self._target(*args)

    def forward(self, target: Tap) -> None:
        held, self._held, self._target = self._held, [], target
        for args in held:
            target(*args)


def spin_recorded(
    executor: EmbeddedExecutor,
    duration_s: float | None,
    recorder: BagRecorder | None,
    on_advance: Callable[[int], None] | None = None,
) -> int:
    """Spins for ``duration_s``, or until SIGINT/SIGTERM/SIGHUP arrives or the bag fails to
    write (then after the current callback); returns the number of callbacks run."""

    def stopped() -> bool:
        failed = recorder is not None and recorder.error is not None
        return failed or shutdown.signal_received() is not None

    if stopped():
        return 0
    with shutdown.stop_gracefully(lambda: None):  # the signal is seen by stopped()
        return executor.spin(duration_s, until=stopped, on_advance=on_advance)


def finish_recording(recorder: BagRecorder | None) -> None:
    """After a run: raises the bag's write error, or :class:`shutdown.Interrupted` if a signal
    stopped the run (saying where the closed bag is)."""
    if recorder is not None and recorder.error is not None:
        raise recorder.error
    detail = f"bag {recorder.path} closed ({recorder.count} messages)" if recorder else ""
    shutdown.raise_if_received(detail)


def run_plan(
    plan: LaunchPlan,
    options: RunOptions,
    on_advance: Callable[[int], None] | None = None,
    extra_custom_data: dict[str, Any] | None = None,
) -> RunResult:
    """Builds the plan's graph, runs it for ``options.duration_s`` and closes the bag.

    Raises:
        BagError: the bag folder exists or cannot be created (checked before anything runs).
        BagWriteError: writing the bag failed; the run stopped, the bag keeps what was written.
        shutdown.Interrupted: a signal stopped the run; the bag was closed first.
        ParameterError, NodeStartError, GraphError: see :func:`build_executor`.
    """
    for item in plan.skipped:
        _log.warning("skipped on the embedded backend: %s", item)
    for item in plan.warnings:
        _log.warning("%s", item)
    if options.record is not None:
        check_new_bag_path(options.record)
    buffer = TapBuffer()
    executor = build_executor(plan.nodes, options, (buffer.tap,) if options.record else ())
    recorder = None
    try:
        if options.record is not None:
            custom = {GRAPH_KEY: graph_to_yaml(plan.nodes), START_KEY: str(options.start_ns)}
            custom.update({k: str(v) for k, v in (extra_custom_data or {}).items()})
            recorder = BagRecorder(options.record, custom_data=custom)
            buffer.forward(recorder.tap)
        callbacks = spin_recorded(executor, options.duration_s, recorder, on_advance)
    finally:
        executor.shutdown()
        if recorder is not None:
            recorder.close()
    finish_recording(recorder)
    return RunResult(
        executor, options.record, recorder.count if recorder else 0, callbacks, plan.nodes
    )
