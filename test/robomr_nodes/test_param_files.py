"""ros__parameters files as rcl parses and rclpy matches them: keys, order, nesting, errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from robomr_nodes.param_files import (
    ParamFileError,
    ParamTable,
    load_param_file,
    overrides_for,
    section_matches,
)


@pytest.mark.parametrize(
    ("key", "node", "match"),
    [
        # rclpy adds a leading slash to a key: a bare name is a node in the root namespace
        ("detector", "/detector", True),
        ("detector", "/robomr/detector", False),
        ("/robomr/detector", "/robomr/detector", True),
        ("robomr/detector", "/robomr/detector", True),
        ("/detector", "/robomr/detector", False),
        # "/*" becomes "(/\w+)", one name; so "/**" becomes "(/\w+)*", any number of names
        ("/**", "/robomr/detector", True),
        ("/**", "/detector", True),
        ("/**/detector", "/robomr/detector", True),
        ("/**/detector", "/a/b/detector", True),
        ("/**/detector", "/detector", True),
        ("/**/detector", "/robomr/detector2", False),
        ("/*", "/detector", True),
        ("/*", "/robomr/detector", False),
        ("/*/detector", "/robomr/detector", True),
        ("/*/detector", "/detector", False),
        ("/robomr/*", "/robomr/detector", True),
        ("/robomr/*", "/robomr/sub/detector", False),
        ("/robomr/**", "/robomr/sub/detector", True),
        ("/other/*", "/robomr/detector", False),
        ("planner", "/robomr/detector", False),
    ],
)
def test_section_matching_follows_rclpy(key: str, node: str, match: bool) -> None:
    assert section_matches(key, node) is match


_NAME = st.sampled_from(["a", "b", "sim", "x_1"])
_TOKEN = st.one_of(_NAME, st.just("*"), st.just("**"))


def _token_match(pattern: list[str], names: list[str]) -> bool:
    """Reference: ``*`` is exactly one name, ``**`` any number of names, others literal."""
    if not pattern:
        return not names
    head, rest = pattern[0], pattern[1:]
    if head == "**":
        return any(_token_match(rest, names[i:]) for i in range(len(names) + 1))
    return bool(names) and head in ("*", names[0]) and _token_match(rest, names[1:])


@given(st.lists(_TOKEN, min_size=1, max_size=4), st.lists(_NAME, min_size=1, max_size=4))
def test_rclpy_regex_equals_name_wildcards(pattern: list[str], names: list[str]) -> None:
    key, node = "/" + "/".join(pattern), "/" + "/".join(names)
    assert section_matches(key, node) is _token_match(pattern, names)


def test_later_sections_override_earlier_ones_in_file_order(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(
        "/robomr/detector:\n  ros__parameters: {x: 2, z: 2}\n"
        "/**:\n  ros__parameters: {x: 1, y: 1}\n"
    )
    got = overrides_for(path, "/robomr/detector")
    assert (got["x"].value, got["y"].value, got["z"].value) == (1, 1, 2)  # /** comes later
    assert got["x"].wildcard and not got["z"].wildcard


def test_files_merge_into_one_table_keyed_by_first_appearance(tmp_path: Path) -> None:
    first, second = tmp_path / "1.yaml", tmp_path / "2.yaml"
    first.write_text("/**:\n  ros__parameters: {x: 1}\n/**/d:\n  ros__parameters: {x: 2}\n")
    second.write_text("/**:\n  ros__parameters: {x: 3}\n")
    table = ParamTable()
    table.add_file(first)
    table.add_file(second)
    # rcl keeps /** at its first position, so the /**/d section still comes after it
    assert table.overrides_for("/ns/d")["x"].value == 2
    assert table.overrides_for("/ns/e")["x"].value == 3


def test_nested_keys_are_namespace_levels(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("robomr:\n  detector:\n    ros__parameters: {solver: {tol: 0.1}}\n")
    assert load_param_file(path) == {"robomr/detector": {"solver.tol": 0.1}}
    assert overrides_for(path, "/robomr/detector")["solver.tol"].value == 0.1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[1, 2]", "top level must map node names"),
        ("n: {ros__parameters: 3}", "must be a mapping"),
        ("n: 3", "section 'n' must contain 'ros__parameters'"),
        ("n: {x: 1}", "section 'n' must contain 'ros__parameters'"),
        ("n: {ros__parameters: {}, extra: 1}", r"unknown key\(s\) \['extra'\]"),
        ("n: {{", "invalid YAML"),
        ('"/a(/**": {ros__parameters: {}}', "not a valid node pattern"),
        # a key with a line break stays on the message's one line (found by fuzzing)
        ('"a\\nb": {ros__parameters: 3}', r"'a\\nb\.ros__parameters' must be a mapping"),
    ],
)
def test_bad_files_name_the_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ParamFileError, match=message) as raised:
        overrides_for(path, "/n")
    assert "\n" not in str(raised.value)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ParamFileError, match="cannot read parameter file"):
        overrides_for(tmp_path / "absent.yaml", "/n")
