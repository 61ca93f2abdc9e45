"""YAML launch files: entries, substitutions, conditions, includes and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from robomr_nodes.launch_yaml import (
    LaunchError,
    load_launch,
    package_share,
    parse_launch_args,
)

REPO = Path(__file__).resolve().parents[2]


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_shipped_launch_file_evaluates_with_defaults() -> None:
    plan = load_launch(REPO / "launch" / "robomr.launch.yaml")
    assert [n.executable for n in plan.nodes] == [
        "robomr_sim",
        "lidar_detector",
        "croa_planner",
        "gs_render",
        "gsclo_scheduler",
    ]
    assert all(n.namespace == "/robomr" for n in plan.nodes)
    assert plan.args["params_file"].endswith("config/robomr.yaml")
    assert plan.skipped == []


def test_shipped_launch_file_switches_to_gazebo_and_drops_nodes() -> None:
    plan = load_launch(
        REPO / "launch" / "robomr.launch.yaml", {"use_gazebo": "true", "use_gs": "false"}
    )
    assert [n.executable for n in plan.nodes] == [
        "scene_publisher",
        "path_follower",
        "lidar_detector",
        "croa_planner",
    ]
    assert any("ros_gz_bridge/parameter_bridge" in s for s in plan.skipped)
    assert any("gz sim" in s for s in plan.skipped)


def test_args_let_var_env_eval_dirname_and_conditions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ROBOMR_TEST_NS", "fromenv")
    launch = _write(
        tmp_path,
        "a.launch.yaml",
        """
launch:
- arg: {name: rate, default: "5"}
- arg: {name: enabled, default: "true"}
- let: {name: double, value: "$(eval '$(var rate) * 2')"}
- node:
    pkg: robomr
    exec: synthetic_cloud
    name: cloud
    namespace: $(env ROBOMR_TEST_NS)
    param:
    - {name: rate_hz, value: $(var double)}
    - {name: frame_id, value: "$(dirname)"}
- node: {pkg: robomr, exec: cloud_markers, if: $(var enabled)}
- node: {pkg: robomr, exec: cloud_markers, name: never, unless: $(var enabled)}
""",
    )
    plan = load_launch(launch, {"rate": "7"})
    cloud, markers = plan.nodes
    assert cloud.fq_name == "/fromenv/cloud"
    assert cloud.params["rate_hz"].value == 14  # YAML-typed after substitution
    assert cloud.params["frame_id"].value == str(tmp_path)
    assert markers.name == "cloud_markers"
    assert plan.args == {"rate": "7", "enabled": "true"}


def test_include_passes_args_and_group_pushes_namespace(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "child.launch.yaml",
        """
launch:
- arg: {name: who}
- node: {pkg: robomr, exec: cloud_markers, name: $(var who)}
""",
    )
    parent = _write(
        tmp_path,
        "parent.launch.yaml",
        """
launch:
- group:
    children:
    - push-ros-namespace: {namespace: fleet}
    - include:
        file: $(dirname)/child.launch.yaml
        arg: [{name: who, value: robot1}]
- node: {pkg: robomr, exec: cloud_markers, name: outside}
""",
    )
    names = [n.fq_name for n in load_launch(parent).nodes]
    assert names == ["/fleet/robot1", "/outside"]


def test_param_file_and_remaps_reach_the_node(tmp_path: Path) -> None:
    params = _write(
        tmp_path,
        "p.yaml",
        """
/**:
  ros__parameters: {use_sim_time: true}
cloud:
  ros__parameters:
    rate_hz: 2.0
    nested: {a: 1}
""",
    )
    launch = _write(
        tmp_path,
        "l.launch.yaml",
        f"""
launch:
- node:
    pkg: robomr
    exec: synthetic_cloud
    name: cloud
    param: [{{from: {params}}}, {{name: seed, value: 4}}]
    remap: [{{from: points, to: /lidar/points}}]
""",
    )
    (node,) = load_launch(launch).nodes
    assert {k: v.value for k, v in node.params.items()} == {
        "use_sim_time": True,
        "rate_hz": 2.0,
        "nested.a": 1,
        "seed": 4,
    }
    assert node.params["use_sim_time"].wildcard
    assert node.remaps == [("points", "/lidar/points")]


def test_foreign_nodes_and_executables_are_skipped_with_a_reason(tmp_path: Path) -> None:
    launch = _write(
        tmp_path,
        "g.launch.yaml",
        """
launch:
- node: {pkg: ros_gz_bridge, exec: parameter_bridge}
- executable: {cmd: gz sim world.sdf}
""",
    )
    plan = load_launch(launch)
    assert plan.nodes == []
    assert any("ros_gz_bridge/parameter_bridge" in s for s in plan.skipped)
    assert any("gz sim" in s for s in plan.skipped)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("launch: [{node: {pkg: robomr, exec: x, parm: 1}}]", r"launch\[0\].node: unknown key"),
        ("launch: [{nod: {pkg: robomr}}]", r"launch\[0\]: unknown launch entry 'nod'"),
        ("launch: [{node: {exec: x}}]", r"launch\[0\].node: missing required key 'pkg'"),
        ("launch: [{arg: {name: a}}]", "argument 'a' has no default"),
        ("launch: [{let: {name: a, value: $(var nope)}}]", r"\$\(var nope\) is not defined"),
        ("launch: [{let: {name: a, value: $(bogus x)}}]", "unknown substitution"),
        ("launch: [{node: {pkg: robomr, exec: x, if: maybe}}]", "is not a boolean"),
        ("nodes: []", "one top-level key, 'launch'"),
        ("launch: [: bad", "invalid YAML"),
    ],
)
def test_bad_launch_files_name_the_file_and_entry(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path, "bad.launch.yaml", text)
    with pytest.raises(LaunchError, match=message) as info:
        load_launch(path)
    assert str(path) in str(info.value)


def test_unknown_command_line_argument_is_rejected(tmp_path: Path) -> None:
    path = _write(tmp_path, "a.launch.yaml", "launch: [{arg: {name: a, default: '1'}}]")
    with pytest.raises(LaunchError, match=r"unknown launch argument\(s\) \['b'\]"):
        load_launch(path, {"b": "2"})


def test_bad_parameter_file_is_reported_through_the_launch_file(tmp_path: Path) -> None:
    params = _write(tmp_path, "p.yaml", "cloud: {rate_hz: 1}\n")
    launch = _write(
        tmp_path,
        "l.launch.yaml",
        "launch: [{node: {pkg: robomr, exec: cloud_markers, name: cloud, "
        f"param: [{{from: {params}}}]}}}}]",
    )
    with pytest.raises(LaunchError, match="section 'cloud' must contain 'ros__parameters'"):
        load_launch(launch)


def test_launch_argument_parsing() -> None:
    assert parse_launch_args(["a:=1", "b:=x:=y"]) == {"a": "1", "b": "x:=y"}
    with pytest.raises(LaunchError, match="name:=value"):
        parse_launch_args(["a=1"])


def test_package_share_of_robomr_is_the_source_tree() -> None:
    assert (package_share("robomr") / "package.xml").exists()
    with pytest.raises(LaunchError, match="not found"):
        package_share("no_such_package_xyz")


def test_a_bare_section_key_outside_the_root_namespace_is_warned_about(tmp_path: Path) -> None:
    params = _write(tmp_path, "p.yaml", "cloud:\n  ros__parameters: {rate_hz: 2.0}\n")
    launch = _write(
        tmp_path,
        "l.launch.yaml",
        f"""
launch:
- node:
    pkg: robomr
    exec: synthetic_cloud
    name: cloud
    namespace: robot
    param: [{{from: {params}}}]
""",
    )
    plan = load_launch(launch)
    assert "rate_hz" not in plan.nodes[0].params  # as under rclpy: 'cloud' means /cloud
    (warning,) = plan.warnings
    assert "section 'cloud' matches no node" in warning and "/**/cloud" in warning


def test_allow_substs_substitutes_launch_variables_in_the_param_file(tmp_path: Path) -> None:
    params = _write(tmp_path, "p.yaml", "/$(var ns)/cloud:\n  ros__parameters: {seed: 7}\n")
    launch = _write(
        tmp_path,
        "l.launch.yaml",
        f"""
launch:
- arg: {{name: ns, default: robot}}
- node:
    pkg: robomr
    exec: synthetic_cloud
    name: cloud
    namespace: $(var ns)
    param: [{{from: {params}, allow_substs: true}}]
""",
    )
    (node,) = load_launch(launch, {"ns": "r2"}).nodes
    assert node.fq_name == "/r2/cloud" and node.params["seed"].value == 7
