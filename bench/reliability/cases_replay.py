"""Cases of ``robomr replay``: missing, foreign, truncated and corrupt bags, bad metadata."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import yaml

from bench.reliability.harness import Case, Outcome
from bench.reliability.setups import bag_copy, both, chain, edit, flip, mkdir, readable, says, write

MCAP = "bag/bag.mcap"
META = "bag/metadata.yaml"
NODES = ("--nodes", "cloud_markers")


def _meta_edit(fn: Callable[[dict], None]) -> Callable[[bytes], bytes]:
    def rewrite(data: bytes) -> bytes:
        doc = yaml.safe_load(data)
        fn(doc["rosbag2_bagfile_information"])
        return yaml.safe_dump(doc).encode()

    return rewrite


def _set(key: str, value: object) -> Callable[[dict], None]:
    def fn(info: dict) -> None:
        info[key] = value

    return fn


def _drop(key: str) -> Callable[[dict], None]:
    def fn(info: dict) -> None:
        del info[key]

    return fn


def _graph_value(old: str, new: str) -> Callable[[bytes], bytes]:
    def fn(info: dict) -> None:
        graph = info["custom_data"]["robomr.graph"]
        if old not in graph:
            raise AssertionError(f"case setup: {old!r} not in the recorded graph")
        info["custom_data"]["robomr.graph"] = graph.replace(old, new)

    return _meta_edit(fn)


def _bad_meta(name: str, fn: Callable[[bytes], bytes], *names: str) -> Case:
    return Case(
        f"replay/meta-{name}",
        ("replay", "bag", *NODES),
        names=("metadata.yaml", *names),
        setup=chain(bag_copy(), edit(META, fn)),
        creates_nothing=True,
    )


def _bad_mcap(name: str, fn: Callable[[bytes], bytes], *names: str) -> Case:
    return Case(
        f"replay/mcap-{name}",
        ("replay", "bag", *NODES),
        names=("bag.mcap", *names),
        setup=chain(bag_copy(), edit(MCAP, fn)),
        creates_nothing=True,
    )


def _flip(name: str, where: Callable[[int], int], *names: str) -> Case:
    return Case(
        f"replay/flip-{name}",
        ("replay", "bag", *NODES),
        names=("bag.mcap", *names),
        setup=chain(bag_copy(), flip(MCAP, where)),
        creates_nothing=True,
    )


def _same_digest_as_clean(ws: Path, out: Outcome) -> str | None:
    """The replay of a recovered or damaged-footer bag prints the digest a clean replay of
    the messages it holds gives: compared with replaying those messages ourselves."""
    from robomr_nodes.bag import digest, read_bag

    outputs = [m for m in read_bag(ws / "bag-replay") if m.topic.endswith(("clusters", "markers"))]
    line = next((ln for ln in out.stdout.splitlines() if "digest" in ln), "")
    return None if digest(outputs) in line else "printed digest does not match the outputs"


def _truncate(fraction: float) -> Callable[[bytes], bytes]:
    return lambda data: data[: int(len(data) * fraction)]


CASES = [
    Case("replay/bag-missing", ("replay", "nobag"), names=("nobag", "does not exist")),
    Case(
        "replay/bag-is-file",
        ("replay", "x.bag"),
        names=("x.bag",),
        setup=write({"x.bag": "#ROSBAG V2.0\n"}),
    ),
    Case("replay/no-metadata", ("replay", "d"), names=("d", "metadata.yaml"), setup=mkdir("d")),
    _bad_meta("empty", lambda d: b"", "is empty"),
    _bad_meta("yaml-syntax", lambda d: d + b"\n  broken: [\n", "invalid YAML"),
    _bad_meta("binary", lambda d: b"\xff\xfe\x00\x01", "not text"),
    _bad_meta("not-mapping", lambda d: b"- 1\n", "rosbag2_bagfile_information"),
    _bad_meta("no-version", _meta_edit(_drop("version")), "version"),
    _bad_meta("version-99", _meta_edit(_set("version", 99)), "99"),
    _bad_meta("count-text", _meta_edit(_set("message_count", "many")), "message_count"),
    _bad_meta("count-negative", _meta_edit(_set("message_count", -4)), "message_count"),
    _bad_meta("files-missing", _meta_edit(_set("relative_file_paths", ["gone.mcap"])), "gone.mcap"),
    _bad_meta("topics-not-list", _meta_edit(_set("topics_with_message_count", 7)), "topics"),
    _bad_meta(
        "topic-no-type",
        _meta_edit(lambda i: i["topics_with_message_count"][0]["topic_metadata"].pop("type")),
        "type",
    ),
    _bad_meta("custom-not-mapping", _meta_edit(_set("custom_data", [1, 2])), "custom_data"),
    _bad_meta(
        "graph-edited",
        _meta_edit(lambda i: i["custom_data"].update({"robomr.graph": "- exec: [unclosed"})),
        "robomr.graph",
    ),
    _bad_meta("graph-parameter-changed", _graph_value("15000", "15001"), "robomr.graph"),
    _bad_meta("graph-removed", _meta_edit(_set("custom_data", None)), "robomr.graph"),
    Case(
        "replay/foreign-bag-malformed-graph",
        ("replay", "bag"),
        names=("robomr.graph", "not valid YAML"),
        setup=bag_copy(which="foreign_bag"),
        creates_nothing=True,
    ),
    Case(
        "replay/unknown-node",
        ("replay", "bag", "--nodes", "nosuch"),
        names=("nosuch",),
        setup=bag_copy(),
        creates_nothing=True,
    ),
    Case(
        "replay/nodes-read-nothing",
        ("replay", "bag", "--nodes", "synthetic_cloud"),
        names=("read none",),
        setup=bag_copy(),
        creates_nothing=True,
    ),
    Case(
        "replay/out-exists",
        ("replay", "bag", *NODES, "--out", "o"),
        names=("o", "exists"),
        setup=chain(bag_copy(), write({"o/keep": "x"})),
    ),
    Case(
        "replay/out-under-file",
        ("replay", "bag", *NODES, "--out", "f/o"),
        names=("f",),
        setup=chain(bag_copy(), write({"f": "x"})),
    ),
    _bad_mcap("empty", lambda d: b"", "is empty"),
    _bad_mcap("not-mcap", lambda d: b"#ROSBAG V2.0\n" + d[13:], "not an MCAP file"),
    Case(
        "replay/mcap-missing",
        ("replay", "bag", *NODES),
        names=("bag.mcap", "missing"),
        setup=chain(bag_copy(), lambda ws: (ws / MCAP).unlink()),
    ),
    _flip("header", lambda n: 20, "CRC"),
    _flip("first-chunk", lambda n: 400, "CRC"),
    _flip("middle", lambda n: n // 2, "corrupt"),
    _flip("last-chunk", lambda n: n * 9 // 10, "corrupt"),
    _flip("summary", lambda n: n - 120, "corrupt"),
    _flip("footer", lambda n: n - 20, "corrupt"),
    Case(
        "replay/flip-end-magic",
        ("replay", "bag", *NODES),
        expect="ok",
        setup=chain(bag_copy(), flip(MCAP, lambda n: n - 2)),
        check=both(says("no valid footer"), _same_digest_as_clean),
        bags=("bag-replay",),
    ),
    *[
        Case(
            f"replay/truncated-{int(100 * f)}pct",
            ("replay", "bag", *NODES),
            expect="ok",
            setup=chain(bag_copy(), edit(MCAP, _truncate(f))),
            check=both(says("is truncated"), _same_digest_as_clean),
            bags=("bag", "bag-replay"),
            rosbags=False,
        )
        for f in (0.5, 0.85)
    ],
    Case(
        "replay/cut-summary",
        ("replay", "bag", *NODES),
        expect="ok",
        setup=chain(bag_copy(), edit(MCAP, lambda d: d[:-60])),
        check=both(says("no valid footer"), _same_digest_as_clean),
        bags=("bag", "bag-replay"),
        rosbags=False,
    ),
    Case(
        "replay/truncated-header-only",
        ("replay", "bag", *NODES),
        names=("read none",),
        setup=chain(bag_copy(), edit(MCAP, lambda d: d[:30])),
        creates_nothing=True,
    ),
    Case(
        "replay/ok-clean-bag",
        ("replay", "bag", *NODES, "--out", "r"),
        expect="ok",
        setup=bag_copy(),
        check=readable("r"),
        bags=("bag", "r"),
    ),
]
