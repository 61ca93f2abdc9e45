"""ros__parameters files: matching sections to nodes, nesting, errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from robomr_nodes.param_files import ParamFileError, overrides_for, section_matches


@pytest.mark.parametrize(
    ("key", "node", "match"),
    [
        ("detector", "/robomr/detector", True),
        ("/robomr/detector", "/robomr/detector", True),
        ("robomr/detector", "/robomr/detector", True),
        ("/detector", "/robomr/detector", False),
        ("/**", "/robomr/detector", True),
        ("/robomr/*", "/robomr/detector", True),
        ("/other/*", "/robomr/detector", False),
        ("planner", "/robomr/detector", False),
    ],
)
def test_section_matching(key: str, node: str, match: bool) -> None:
    assert section_matches(key, node) is match


def test_named_sections_override_wildcards(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("detector:\n  ros__parameters: {x: 2}\n/**:\n  ros__parameters: {x: 1, y: 1}\n")
    got = overrides_for(path, "/robomr/detector")
    assert (got["x"].value, got["y"].value) == (2, 1)
    assert not got["x"].wildcard and got["y"].wildcard


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[1, 2]", "top level must map node names"),
        ("n: {ros__parameters: 3}", "must be a mapping"),
        ("n: {ros__parameters: {}, extra: 1}", r"unknown key\(s\) \['extra'\]"),
        ("n: {{", "invalid YAML"),
    ],
)
def test_bad_files_name_the_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ParamFileError, match=message):
        overrides_for(path, "/n")


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ParamFileError, match="cannot read parameter file"):
        overrides_for(tmp_path / "absent.yaml", "/n")
