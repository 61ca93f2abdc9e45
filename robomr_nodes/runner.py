"""Runs a launch plan on the embedded backend, optionally recording every topic to a bag."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from robomr_nodes.bag import BagRecorder
from robomr_nodes.launch_yaml import LaunchPlan, NodeSpec
from robomr_nodes.params import ParamOverride
from robomr_nodes.registry import load_node_class
from robomr_nodes.runtime.executor import SIM_START_NS, EmbeddedExecutor, Tap

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


def graph_from_yaml(text: str, source: str) -> list[NodeSpec]:
    """Inverse of :func:`graph_to_yaml`."""
    return [
        NodeSpec(
            "robomr",
            d["exec"],
            d["name"],
            d["namespace"],
            {k: ParamOverride(v, source) for k, v in (d.get("params") or {}).items()},
            [tuple(r) for r in d.get("remaps") or []],
            source,
        )
        for d in yaml.safe_load(text) or []
    ]


def build_executor(
    nodes: list[NodeSpec], options: RunOptions, taps: tuple[Tap, ...] = ()
) -> EmbeddedExecutor:
    """An executor with ``taps`` attached, then every node of ``nodes`` constructed (taps come
    first so that what nodes publish while starting, e.g. latched maps, is seen)."""
    executor = EmbeddedExecutor(options.clock, options.start_ns, options.clock_hz)
    for tap in taps:
        executor.add_tap(tap)
    for spec in nodes:
        executor.add_node(
            load_node_class(spec.executable), spec.name, spec.namespace, spec.params, spec.remaps
        )
    return executor


def run_plan(
    plan: LaunchPlan,
    options: RunOptions,
    on_advance: Callable[[int], None] | None = None,
    extra_custom_data: dict[str, Any] | None = None,
) -> RunResult:
    """Builds the plan's graph, runs it for ``options.duration_s`` and closes the bag."""
    for item in plan.skipped:
        _log.warning("skipped on the embedded backend: %s", item)
    for item in plan.warnings:
        _log.warning("%s", item)
    recorder = None
    if options.record is not None:
        custom = {GRAPH_KEY: graph_to_yaml(plan.nodes), START_KEY: str(options.start_ns)}
        custom.update({k: str(v) for k, v in (extra_custom_data or {}).items()})
        recorder = BagRecorder(options.record, custom_data=custom)
    try:
        executor = build_executor(plan.nodes, options, (recorder.tap,) if recorder else ())
    except Exception:
        if recorder is not None:
            recorder.close()
        raise
    try:
        callbacks = executor.spin(options.duration_s, on_advance=on_advance)
    finally:
        executor.shutdown()
        if recorder is not None:
            recorder.close()
    return RunResult(
        executor, options.record, recorder.count if recorder else 0, callbacks, plan.nodes
    )
