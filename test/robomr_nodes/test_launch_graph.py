"""The shipped launch graph under rclpy's clock semantics: the clock source runs on its own time
and publishes /clock, every other node runs on that sim time, and the simulator's data flows.

The same checks run on the config files as they were before issue 11 (``/**: use_sim_time:
true`` for every node, the simulator included) and must fail there: under rclpy the simulator's
timers would wait for a /clock that only they publish, and nothing would be published.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from robomr_nodes.demo.run import DemoOptions, demo_plan
from robomr_nodes.launch_yaml import LaunchPlan
from robomr_nodes.runner import RunOptions, build_executor
from robomr_nodes.runtime.executor import EmbeddedExecutor

CLOCK_SOURCES = {"/robomr/sim"}
SENSOR_TOPICS = ("/robomr/points", "/robomr/camera/image", "/robomr/odom", "/tf", "/clock")
# config/robomr.yaml before issue 11 (its clock section): every node on sim time
OLD_CLOCK_CONFIG = """
/**:
  ros__parameters:
    use_sim_time: true
"""


def _plan(tmp_path: Path, params_file: Path | None = None) -> LaunchPlan:
    args = (("params_file", str(params_file)),) if params_file else ()
    return demo_plan(DemoOptions(out=tmp_path, quick=True, launch_args=args))


def _run(plan: LaunchPlan, duration_s: float) -> tuple[EmbeddedExecutor, dict[str, int], int]:
    counts: dict[str, int] = {}
    last_clock = [0]

    def tap(topic: str, _ty: str, _stamp: int, msg: object, _qos: object) -> None:
        counts[topic] = counts.get(topic, 0) + 1
        if topic == "/clock":
            last_clock[0] = msg.clock.sec * 1_000_000_000 + msg.clock.nanosec  # type: ignore[attr-defined]

    executor = build_executor(plan.nodes, RunOptions(), (tap,))
    executor.spin(duration_s)
    return executor, counts, last_clock[0]


def clock_problems(plan: LaunchPlan, duration_s: float = 0.3) -> list[str]:
    """What would go wrong with this graph's clocks under rclpy (empty: nothing)."""
    executor, counts, last_clock_ns = _run(plan, duration_s)
    problems = [f"{t} never published" for t in SENSOR_TOPICS if not counts.get(t)]
    for fq, node in executor.nodes.items():
        on_sim_time = node.handle.clock.use_sim_time
        if (fq in CLOCK_SOURCES) == on_sim_time:
            want = "its own time" if fq in CLOCK_SOURCES else "sim time"
            problems.append(f"{fq} should run on {want}")
        elif on_sim_time and node.handle.now_ns() != last_clock_ns:
            problems.append(f"{fq} reads {node.handle.now_ns()} ns, /clock says {last_clock_ns}")
    return problems


def test_shipped_graph_runs_on_the_simulators_clock(tmp_path: Path) -> None:
    assert clock_problems(_plan(tmp_path)) == []


def test_the_check_fails_on_the_config_before_issue_11(tmp_path: Path) -> None:
    old = tmp_path / "old.yaml"
    old.write_text(OLD_CLOCK_CONFIG)
    plan = _plan(tmp_path, old)
    plan.nodes = [n for n in plan.nodes if n.name == "sim"]  # the simulator alone shows it
    problems = clock_problems(plan)
    assert "/robomr/points never published" in problems
    assert "/robomr/sim should run on its own time" in problems


@pytest.mark.parametrize("config", ["robomr.yaml", "synthetic.yaml"])
def test_every_shipped_config_puts_the_clock_source_on_its_own_time(config: str) -> None:
    from robomr_nodes.param_files import overrides_for

    repo = Path(__file__).resolve().parents[2]
    source = {"robomr.yaml": "/robomr/sim", "synthetic.yaml": "/robomr/synthetic_cloud"}[config]
    assert overrides_for(repo / "config" / config, source)["use_sim_time"].value is False
    assert overrides_for(repo / "config" / config, "/robomr/other")["use_sim_time"].value is True
