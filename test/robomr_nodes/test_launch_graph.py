"""The shipped launch graph under rclpy's clock and parameter semantics.

The whole graph of launch/robomr.launch.yaml runs on the embedded backend, which matches
parameter-file sections and drives sim time exactly as rclpy does. Checked: the clock source
runs on its own time and publishes /clock, every other node runs on that time, the simulator's
data flows, and every node receives every value that config/robomr.yaml gives it.

The same checks run on the config file as it was before issue 11 and must fail there: its
``/**: use_sim_time: true`` also put the simulator on sim time (under rclpy its timers would
wait for a /clock that only they publish), and its bare keys (``lidar_detector:``) mean nodes in
the root namespace under rclpy, so the /robomr nodes silently got none of their values.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from robomr_nodes.demo.run import DemoOptions, demo_plan
from robomr_nodes.launch_yaml import LaunchPlan, load_launch, package_share
from robomr_nodes.param_files import load_param_file, names_one_node, overrides_for
from robomr_nodes.runner import RunOptions, build_executor
from robomr_nodes.runtime.executor import EmbeddedExecutor

REPO = Path(__file__).resolve().parents[2]
CLOCK_SOURCES = {"/robomr/sim"}
SENSOR_TOPICS = ("/robomr/points", "/robomr/camera/image", "/robomr/odom", "/tf", "/clock")
# config/robomr.yaml before issue 11, cut to one value per section (the layout is what matters)
OLD_CONFIG = """
/**:
  ros__parameters: {use_sim_time: true}
sim:
  ros__parameters: {lidar_beams: 32}
lidar_detector:
  ros__parameters: {threads: 1}
"""


def _plan(tmp_path: Path, params_file: Path | None = None, quick: bool = True) -> LaunchPlan:
    args = (("params_file", str(params_file)),) if params_file else ()
    return demo_plan(DemoOptions(out=tmp_path, quick=quick, launch_args=args))


def _run(plan: LaunchPlan, duration_s: float) -> tuple[EmbeddedExecutor, dict[str, int], int]:
    counts: dict[str, int] = {}
    last_clock = [0]

    def tap(topic: str, _ty: str, _stamp: int, msg: object, _qos: object) -> None:
        counts[topic] = counts.get(topic, 0) + 1
        if topic == "/clock":
            clock = msg.clock  # type: ignore[attr-defined]
            last_clock[0] = clock.sec * 1_000_000_000 + clock.nanosec

    executor = build_executor(plan.nodes, RunOptions(), (tap,))
    executor.spin(duration_s)
    return executor, counts, last_clock[0]


def clock_problems(run: tuple[EmbeddedExecutor, dict[str, int], int]) -> list[str]:
    """What would go wrong with the graph's clocks under rclpy (empty: nothing)."""
    executor, counts, last_clock_ns = run
    problems = [f"{t} never published" for t in SENSOR_TOPICS if not counts.get(t)]
    for fq, node in executor.nodes.items():
        on_sim_time = node.handle.clock.use_sim_time
        if (fq in CLOCK_SOURCES) == on_sim_time:
            want = "its own time" if fq in CLOCK_SOURCES else "sim time"
            problems.append(f"{fq} should run on {want}")
        elif on_sim_time and node.handle.now_ns() != last_clock_ns:
            problems.append(f"{fq} reads {node.handle.now_ns()} ns, /clock says {last_clock_ns}")
    return problems


def param_problems(plans: list[LaunchPlan], config: Path) -> list[str]:
    """Per-node values of ``config`` that the plans' nodes do not receive (empty: all do).

    A section whose last name is literal (``/**/sim``, ``sim``, ``/robomr/sim``) was written
    for the nodes of that name: each of them must receive each of its values, from this file
    or from a launch-file value that deliberately overrides it. The plans are the launch file's
    branches (built-in simulator, Gazebo); a section must name a node of one of them.
    """
    problems = []
    nodes = [n for plan in plans for n in plan.nodes]
    for key, values in load_param_file(config).items():
        if not names_one_node(key):
            continue
        targets = [n for n in nodes if n.name == key.rstrip("/").rsplit("/", 1)[-1]]
        if not targets:
            problems.append(f"section {key!r} names no node of the launch graph")
        for node in targets:
            for name, value in values.items():
                got = node.params.get(name)
                from_launch = got is not None and "launch.yaml" in got.source
                if got is None or (got.value != value and not from_launch):
                    problems.append(f"{node.fq_name} does not receive {name} = {value!r}")
    return problems


@pytest.fixture(scope="module")
def shipped_run(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    plan = _plan(tmp_path_factory.mktemp("graph"))
    return plan, _run(plan, 0.3)


def test_shipped_graph_runs_on_the_simulators_clock(shipped_run: tuple) -> None:
    _, run = shipped_run
    assert clock_problems(run) == []


def test_every_parameter_of_the_shipped_nodes_is_read_only(shipped_run: tuple) -> None:
    """`ros2 param set` must never report success for a value a node does not read again."""
    _, (executor, _, _) = shipped_run
    writable = {
        f"{fq}:{name}"
        for fq, node in executor.nodes.items()
        for name, spec in node.handle._declared.items()
        if not spec.read_only and name != "use_sim_time"  # rclpy's own: applied when set
    }
    assert writable == set()


def test_every_node_receives_every_per_node_value(tmp_path: Path, shipped_run: tuple) -> None:
    config = package_share("robomr") / "config" / "robomr.yaml"
    gazebo = load_launch(REPO / "launch" / "robomr.launch.yaml", {"use_gazebo": "true"})
    offload = load_launch(REPO / "launch" / "robomr.launch.yaml", {"use_offload": "true"})
    assert param_problems([_plan(tmp_path, quick=False), gazebo, offload], config) == []
    plan, (executor, _, _) = shipped_run
    for spec in plan.nodes:  # and the running node declared and holds each value
        held = executor.nodes[spec.fq_name].handle.values
        assert {k: held[k] for k in spec.params} == {k: v.value for k, v in spec.params.items()}


def test_the_checks_fail_on_the_config_before_issue_11(tmp_path: Path) -> None:
    old = tmp_path / "old.yaml"
    old.write_text(OLD_CONFIG)
    plan = _plan(tmp_path, old)
    problems = param_problems([plan], old)
    assert "/robomr/lidar_detector does not receive threads = 1" in problems
    assert "/robomr/sim does not receive lidar_beams = 32" in problems
    plan.nodes = [n for n in plan.nodes if n.name == "sim"]  # the simulator alone shows it
    problems = clock_problems(_run(plan, 0.3))
    assert "/robomr/points never published" in problems
    assert "/robomr/sim should run on its own time" in problems


@pytest.mark.parametrize(
    ("launch", "config", "source"),
    [
        ("robomr.launch.yaml", "robomr.yaml", "sim"),
        ("synthetic.launch.yaml", "synthetic.yaml", "synthetic_cloud"),
    ],
)
def test_shipped_configs_reach_their_nodes_in_any_namespace(
    launch: str, config: str, source: str
) -> None:
    path = REPO / "config" / config
    for namespace in ("robomr", "robot2/robomr"):
        shipped = [{}, {"use_gazebo": "true"}, {"use_offload": "true"}]
        branches = shipped if launch == "robomr.launch.yaml" else [{}]
        plans = [
            load_launch(REPO / "launch" / launch, {"namespace": namespace, **branch})
            for branch in branches
        ]
        assert param_problems(plans, path) == []
        for node in plans[0].nodes:  # the clock source on its own time, everyone else on sim time
            assert overrides_for(path, node.fq_name)["use_sim_time"].value is (node.name != source)
