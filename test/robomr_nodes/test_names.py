"""Topic name expansion and remapping."""

from __future__ import annotations

import pytest

from robomr_nodes.runtime.names import RosNameError, apply_remaps, expand_topic


@pytest.mark.parametrize(
    ("name", "ns", "expected"),
    [
        ("points", "/", "/points"),
        ("points", "robomr", "/robomr/points"),
        ("/abs/points", "/robomr", "/abs/points"),
        ("~/debug", "/robomr", "/robomr/detector/debug"),
        ("~", "/", "/detector"),
        ("sub/points", "/robomr/", "/robomr/sub/points"),
    ],
)
def test_expand_topic(name: str, ns: str, expected: str) -> None:
    assert expand_topic(name, ns, "detector") == expected


@pytest.mark.parametrize("bad", ["", "9points", "po ints", "a//b", "a/"])
def test_invalid_names_are_rejected(bad: str) -> None:
    with pytest.raises(RosNameError):
        expand_topic(bad, "/", "n")


def test_remap_matches_expanded_names_and_first_rule_wins() -> None:
    rules = [("points", "/sensors/lidar"), ("/robomr/points", "/never")]
    assert apply_remaps("points", "/robomr", "det", rules) == "/sensors/lidar"
    assert apply_remaps("other", "/robomr", "det", rules) == "/robomr/other"
