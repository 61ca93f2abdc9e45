"""Cases of ``robomr launch``: launch files, parameter files, arguments, output folders."""

from __future__ import annotations

from bench.reliability.harness import Case
from bench.reliability.setups import (
    SYNTHETIC,
    chain,
    mkdir,
    readable,
    small_params,
    write,
)

RUN = ("--duration", "0.3", "--no-record")
L = "l.yaml"


def _node(body: str) -> str:
    return f"launch:\n- node: {{{body}}}\n"


def _bad_launch(name: str, text: str | bytes, *names: str) -> Case:
    return Case(f"launch/{name}", ("launch", L, *RUN), names=(L, *names), setup=write({L: text}))


def _bad_params(name: str, text: str | bytes, *names: str) -> Case:
    return Case(
        f"launch/params-{name}",
        ("launch", SYNTHETIC, "params_file:=p.yaml", *RUN),
        names=("p.yaml", *names),
        setup=write({"p.yaml": text}),
    )


LAUNCH_FILES = [
    Case("launch/file-missing", ("launch", "absent.yaml", *RUN), names=("absent.yaml",)),
    Case("launch/file-is-folder", ("launch", "d", *RUN), names=("d",), setup=mkdir("d")),
    _bad_launch("binary", b"\xff\xfe\x00launch", "not text"),
    _bad_launch("yaml-syntax", "launch: [\n- node: {pkg: robomr\n", "invalid YAML", "line"),
    _bad_launch("empty", "", "one top-level key"),
    _bad_launch("top-level-list", "- launch\n", "one top-level key"),
    _bad_launch("second-key", "launch: []\nextra: 1\n", "one top-level key"),
    _bad_launch("launch-not-list", "launch: {node: 1}\n", "must be a list"),
    _bad_launch("entry-two-keys", "launch:\n- {arg: {name: a}, let: {name: b}}\n", "launch[0]"),
    _bad_launch("unknown-entry", "launch:\n- timer: {period: 1}\n", "'timer'"),
    _bad_launch("entry-not-mapping", "launch:\n- node: 5\n", "launch[0].node"),
    _bad_launch("node-no-pkg", _node("exec: synthetic_cloud"), "'pkg'"),
    _bad_launch("node-unknown-key", _node("pkg: robomr, exec: cloud_markers, parm: 1"), "parm"),
    _bad_launch("unknown-executable", _node("pkg: robomr, exec: nosuch"), "'nosuch'"),
    _bad_launch(
        "include-self", 'launch:\n- include: {file: "$(dirname)/l.yaml"}\n', "include cycle"
    ),
    Case(
        "launch/include-cycle-2",
        ("launch", L, *RUN),
        names=("include cycle", "a.yaml"),
        setup=write(
            {
                L: 'launch:\n- include: {file: "$(dirname)/a.yaml"}\n',
                "a.yaml": 'launch:\n- include: {file: "$(dirname)/l.yaml"}\n',
            }
        ),
    ),
    _bad_launch("include-missing", "launch:\n- include: {file: gone.yaml}\n", "gone.yaml"),
    _bad_launch("arg-no-default", "launch:\n- arg: {name: speed}\n", "speed:=VALUE"),
    _bad_launch("var-undefined", _node("pkg: robomr, exec: $(var who)"), "$(var who)"),
    _bad_launch("unbalanced-subst", _node("pkg: robomr, exec: $(var x"), "unbalanced"),
    _bad_launch("unknown-subst", _node("pkg: robomr, exec: $(magic x)"), "$(magic"),
    _bad_launch("eval-error", _node("pkg: robomr, exec: \"$(eval '1/0')\""), "$(eval 1/0)"),
    _bad_launch("env-unset", _node("pkg: robomr, exec: $(env ROBOMR_SURELY_UNSET_VAR)"), "UNSET"),
    _bad_launch("if-not-boolean", _node("pkg: robomr, exec: cloud_markers, if: maybe"), "maybe"),
    _bad_launch("deep-nesting", "launch: " + "[" * 3000 + "\n", "l.yaml"),
    _bad_launch(
        "duplicate-node",
        "launch:\n" + "- node: {pkg: robomr, exec: cloud_markers, name: m}\n" * 2,
        "duplicate node name",
    ),
    _bad_launch(
        "topic-type-clash",
        "launch:\n- node: {pkg: robomr, exec: cloud_markers, remap: "
        "[{from: markers, to: points}]}\n",
        "/points",
    ),
]

PARAM_FILES = [
    Case(
        "launch/params-missing",
        ("launch", SYNTHETIC, "params_file:=gone.yaml", *RUN),
        names=("gone.yaml",),
    ),
    _bad_params("yaml-syntax", "cloud: {ros__parameters: {a: [1}}\n", "invalid YAML"),
    _bad_params("not-mapping", "- 1\n- 2\n", "top level"),
    _bad_params("no-ros-parameters", "/**/synthetic_cloud:\n  rate_hz: 5\n", "ros__parameters"),
    _bad_params(
        "extra-section-key",
        "/**/synthetic_cloud:\n  ros__parameters: {}\n  other: 1\n",
        "other",
    ),
    _bad_params(
        "out-of-range",
        "/**/synthetic_cloud:\n  ros__parameters:\n    rate_hz: 1000.0\n",
        "rate_hz",
        "1000.0",
    ),
    _bad_params(
        "wrong-type",
        "/**/synthetic_cloud:\n  ros__parameters:\n    rate_hz: fast\n",
        "rate_hz",
        "fast",
    ),
    _bad_params(
        "unknown-parameter",
        "/**/synthetic_cloud:\n  ros__parameters:\n    rate_hzz: 5.0\n",
        "rate_hzz",
    ),
    _bad_params(
        "negative-count",
        "/**/synthetic_cloud:\n  ros__parameters:\n    num_points: -5\n",
        "num_points",
    ),
    _bad_params(
        "nan-value", "/**/synthetic_cloud:\n  ros__parameters:\n    range_m: .nan\n", "range_m"
    ),
    _bad_params("binary", b"\xff\xfe\x00", "not text"),
]

ARGS = [
    Case("launch/unknown-argument", ("launch", SYNTHETIC, "bogus:=1", *RUN), names=("bogus",)),
    Case("launch/argument-no-assign", ("launch", SYNTHETIC, "seed=3", *RUN), names=("seed=3",)),
    Case(
        "launch/argument-bad-bool",
        ("launch", SYNTHETIC, "use_markers:=perhaps", *RUN),
        names=("perhaps",),
    ),
    *[
        Case(
            f"launch/duration-{v}",
            ("launch", SYNTHETIC, "--duration", v, "--no-record"),
            names=("--duration", v),
            creates_nothing=True,
        )
        for v in ("nan", "inf", "-1", "0")
    ],
    Case(
        "launch/duration-text",
        ("launch", SYNTHETIC, "--duration", "soon"),
        names=("soon",),
        creates_nothing=True,
    ),
    Case("launch/clock-unknown", ("launch", SYNTHETIC, "--clock", "moon"), names=("moon",)),
    Case(
        "launch/record-and-no-record",
        ("launch", SYNTHETIC, "--record", "b", "--no-record"),
        names=("--no-record",),
        creates_nothing=True,
    ),
]

OUTPUTS = [
    Case(
        "launch/record-exists",
        ("launch", SYNTHETIC, "--duration", "0.3", "--record", "b"),
        names=("b", "exists"),
        setup=write({"b/keep.txt": "earlier results"}),
    ),
    Case(
        "launch/record-under-file",
        ("launch", SYNTHETIC, "--duration", "0.3", "--record", "f/bag"),
        names=("f", "is a file"),
        setup=write({"f": "a file"}),
    ),
    Case(
        "launch/record-unwritable",
        ("launch", SYNTHETIC, "--duration", "0.3", "--record", "/proc/robomr/bag"),
        names=("/proc/robomr/bag",),
    ),
    Case(
        "launch/bad-graph-creates-no-bag",
        ("launch", SYNTHETIC, "params_file:=p.yaml", "--duration", "0.3", "--record", "b"),
        names=("rate_hz",),
        setup=write({"p.yaml": "/**/synthetic_cloud:\n  ros__parameters:\n    rate_hz: 0.0\n"}),
        creates_nothing=True,
    ),
    Case(
        "launch/ok-records-readable-bag",
        ("launch", SYNTHETIC, "params_file:=small.yaml", "--duration", "0.5", "--record", "b"),
        expect="ok",
        setup=small_params,
        bags=("b",),
        check=readable("b"),
    ),
    Case(
        "launch/ok-no-record",
        ("launch", SYNTHETIC, "params_file:=small.yaml", *RUN),
        expect="ok",
        setup=chain(small_params),
    ),
]

CASES = [*LAUNCH_FILES, *PARAM_FILES, *ARGS, *OUTPUTS]
