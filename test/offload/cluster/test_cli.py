"""``robomr cluster up|status|corunner|down`` on a detached local cluster, and the CLI's errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from offload.cluster.cli import CommandError, parse_corunner
from robomr_nodes.cli.main import main


@pytest.mark.parametrize(
    ("text", "body"),
    [
        ("cpu", {"kind": "cpu"}),
        ("cache@1", {"kind": "cache", "cpus": [1]}),
        ("membw@0,1:0.5", {"kind": "membw", "cpus": [0, 1], "duty": 0.5}),
        ("io:0.3", {"kind": "io", "duty": 0.3}),
    ],
)
def test_corunner_specs_parse(text: str, body: dict) -> None:
    assert parse_corunner(text) == body


@pytest.mark.parametrize("bad", ["cpu@x", "cpu:fast"])
def test_a_malformed_corunner_spec_is_a_clear_error(bad: str) -> None:
    with pytest.raises(CommandError, match="KIND"):
        parse_corunner(bad)


def test_a_detached_cluster_is_driven_by_name_and_stopped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    where = ["--name", "clitest", "--state-dir", str(tmp_path)]
    up = [
        "cluster",
        "up",
        "--detach",
        "--replicas",
        "1",
        "--no-agent",
        "--replica-args",
        "--policy none --no-brownout",
        *where,
    ]
    assert main(up) == 0
    try:
        assert "up at http://127.0.0.1:" in capsys.readouterr().out
        assert (tmp_path / "clitest" / "token").stat().st_mode & 0o077 == 0  # private
        assert main(["cluster", "up", "--detach", *where]) == 2  # already running
        assert "already running" in capsys.readouterr().err
        assert main(["cluster", "corunner", "add", "cpu@0:0.3", "--as", "hog", *where]) == 0
        assert json.loads(capsys.readouterr().out)["state"] == "running"
        assert main(["cluster", "corunner", "pause", "hog", *where]) == 0
        capsys.readouterr()
        assert main(["cluster", "status", "--json", *where]) == 0
        st = json.loads(capsys.readouterr().out)
        assert [r["name"] for r in st["replicas"]] == ["replica-0"]
        assert [(c["name"], c["state"]) for c in st["corunners"]] == [("hog", "paused")]
        assert main(["cluster", "status", *where]) == 0
        text = capsys.readouterr().out
        assert "replica-0" in text and "hog" in text and "paused" in text
        assert main(["cluster", "corunner", "pause", "nobody", *where]) == 2
        assert "no co-runner named" in capsys.readouterr().err
    finally:
        assert main(["cluster", "down", *where]) == 0
    assert main(["cluster", "status", *where]) == 2
    assert "no local cluster named 'clitest'" in capsys.readouterr().err
