"""Output folders and files: checked before work, refused when they hold earlier results
unless forced, and then only the command's own entries are replaced."""

from __future__ import annotations

from pathlib import Path

import pytest

from robomr_nodes.outputs import (
    OutputError,
    check_output_dir,
    check_output_file,
    clear_outputs,
    write_file,
)


def test_new_or_empty_folders_pass_and_create_nothing(tmp_path: Path) -> None:
    check_output_dir(tmp_path / "a" / "b", force=False, produces=("bag",))
    (tmp_path / "empty").mkdir()
    check_output_dir(tmp_path / "empty", force=False, produces=("bag",))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"]


def test_earlier_results_are_refused_then_replaced_only_where_forced(tmp_path: Path) -> None:
    run = tmp_path / "run"
    (run / "bag").mkdir(parents=True)
    (run / "summary.json").write_text("{}")
    (run / "notes.txt").write_text("mine")
    with pytest.raises(OutputError, match=r"not empty.*--force"):
        check_output_dir(run, force=False, produces=("bag", "summary.json"))
    check_output_dir(run, force=True, produces=("bag", "summary.json"))
    clear_outputs(run, ("bag", "summary.json", "summary.png"))
    assert sorted(p.name for p in run.iterdir()) == ["notes.txt"]


@pytest.mark.parametrize(
    ("make", "target", "message"),
    [
        (lambda p: (p / "f").write_text("x"), "f/sub", "is a file"),
        (lambda p: (p / "d").mkdir(), "d", "is a folder"),
        (lambda p: None, "missing/o.json", "does not exist"),
    ],
)
def test_bad_output_files_are_named(tmp_path: Path, make, target, message) -> None:
    make(tmp_path)
    with pytest.raises(OutputError, match=message):
        check_output_file(tmp_path / target)


def test_write_file_replaces_atomically(tmp_path: Path) -> None:
    path = tmp_path / "o.json"
    write_file(path, "1")
    write_file(path, "2")
    assert path.read_text() == "2" and [p.name for p in tmp_path.iterdir()] == ["o.json"]
