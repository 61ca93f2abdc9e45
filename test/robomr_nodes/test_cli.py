"""The robomr command line, end to end on tiny settings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from robomr_nodes.cli.main import build_parser, main

REPO = Path(__file__).resolve().parents[2]


def test_every_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    for name in commands:
        with pytest.raises(SystemExit) as info:
            main([name, "--help"])
        assert info.value.code == 0
    assert {"demo", "launch", "replay", "bench"} <= set(commands)
    assert "usage" in capsys.readouterr().out


def test_launch_and_replay_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bag = tmp_path / "bag"
    assert (
        main(
            [
                "launch",
                str(REPO / "launch/synthetic.launch.yaml"),
                "use_markers:=true",
                "--duration",
                "0.3",
                "--record",
                str(bag),
            ]
        )
        == 0
    )
    assert main(["replay", str(bag), "--nodes", "cloud_markers"]) == 0
    assert main(["replay", str(bag), "--nodes", "cloud_markers"]) == 0
    digests = [line for line in capsys.readouterr().out.splitlines() if "digest" in line]
    assert len(digests) == 2 and digests[0] == digests[1]
    assert (tmp_path / "bag-replay").exists() and (tmp_path / "bag-replay-2").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["launch", "launch/synthetic.launch.yaml", "bogus:=1"], "unknown launch argument"),
        (["launch", "launch/synthetic.launch.yaml", "--duration", "0"], "--duration must be"),
        (["replay", "no/such/bag"], "does not exist"),
    ],
)
def test_user_errors_exit_2_with_a_message(
    argv: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(REPO)
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_bad_parameter_in_a_param_file_names_file_and_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    params = tmp_path / "p.yaml"
    params.write_text("/**/synthetic_cloud:\n  ros__parameters:\n    rate_hz: 1000.0\n")
    argv = [
        "launch",
        str(REPO / "launch/synthetic.launch.yaml"),
        f"params_file:={params}",
        "--no-record",
        "--duration",
        "0.1",
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "rate_hz' = 1000.0 is above its maximum 100.0" in err and str(params) in err


def test_bench_runtime_prints_ratios(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "runtime.json"
    assert (
        main(["bench", "runtime", "--messages", "10", "--size-mb", "0.1", "--json", str(out)]) == 0
    )
    text = capsys.readouterr().out
    assert "embedded executor / python queue (messages/s)" in text
    figures = json.loads(out.read_text())
    assert figures["name"] == "runtime" and figures["ratios"]
