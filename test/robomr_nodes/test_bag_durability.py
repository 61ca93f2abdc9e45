"""Bags that survive kills, full disks and flipped bytes (robomr_nodes/bag.py, bagio/).

A copy of a bag folder taken while its recorder is still open is exactly what SIGKILL leaves
behind: the recorder writes unbuffered, so everything it has written is in the kernel.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from mcap.reader import make_reader
from rosbags.rosbag2 import Reader, ReaderError

from bench.reliability.harness import REPO, child_env, robomr_command
from robomr_nodes.bag import BagError, BagRecorder, bag_info, digest, read_bag, verify_bag
from robomr_nodes.bagio.mcapfile import DurableMcapWriter
from robomr_nodes.messages import new_message

STRING = "std_msgs/msg/String"


def _msg(i: int):
    return new_message(STRING, data=f"message {i} " + "x" * 200)


def _record(path: Path, n: int) -> Path:
    with BagRecorder(path, custom_data={"robomr.note": "test"}, flush_interval_s=0.0) as rec:
        for i in range(n):
            rec.write("/s", STRING, 1_000 + i, _msg(i))
    return path


@pytest.fixture(scope="module")
def bag(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _record(tmp_path_factory.mktemp("bag") / "bag", 12)


def test_metadata_exists_from_the_start_and_follows_every_chunk(tmp_path: Path) -> None:
    rec = BagRecorder(tmp_path / "b", flush_interval_s=0.0)  # a chunk per message
    meta = yaml.safe_load((tmp_path / "b" / "metadata.yaml").read_text())
    assert meta["rosbag2_bagfile_information"]["message_count"] == 0
    for i in range(3):
        rec.write("/s", STRING, 10 + i, _msg(i))
        meta = yaml.safe_load((tmp_path / "b" / "metadata.yaml").read_text())
        assert meta["rosbag2_bagfile_information"]["message_count"] == i + 1
    killed = tmp_path / "killed"
    shutil.copytree(tmp_path / "b", killed)  # what SIGKILL would leave now
    info = bag_info(killed)
    assert info.message_count == 3 and "is truncated" in info.notes[0]
    assert [m.decode().data for m in read_bag(killed)] == [_msg(i).data for i in range(3)]
    with pytest.raises(ReaderError, match="magic"), Reader(killed):  # no footer: refused
        pass
    rec.close()
    with Reader(tmp_path / "b") as reader:
        assert reader.message_count == 3


def test_a_killed_recording_keeps_every_complete_chunk(tmp_path: Path) -> None:
    rec = BagRecorder(tmp_path / "b", flush_interval_s=3600.0)  # chunks close by size only
    payload = new_message(STRING, data="y" * 300_000)
    for i in range(8):
        rec.write("/s", STRING, 10 + i, payload)
        shutil.copytree(tmp_path / "b", tmp_path / f"k{i}")
    rec.close()
    counts = [bag_info(tmp_path / f"k{i}").message_count for i in range(8)]
    # each 1 MiB chunk holds 4 messages: a kill keeps whole chunks, never part of one
    assert counts == [0, 0, 0, 4, 4, 4, 4, 8]


def test_aborted_file_is_valid_mcap_for_independent_readers(tmp_path: Path) -> None:
    writer = DurableMcapWriter(tmp_path / "x.mcap", flush_interval_s=0.0)
    cid = writer.add_channel("/s", STRING, "string data\n", "[]")
    for i in range(3):
        writer.add_message(cid, 10 + i, b"\x00\x01\x00\x00\x02\x00\x00\x00a\x00")
    writer.abort()  # what a failed write ends with: cut to the last chunk, DataEnd, footer
    with (tmp_path / "x.mcap").open("rb") as fh:
        assert len(list(make_reader(fh).iter_messages())) == 3


@pytest.mark.parametrize(
    "where", [10, 300, 0.3, 0.5, 0.8, -150, -40, -30], ids=lambda w: f"byte-{w}"
)
def test_a_flipped_byte_anywhere_is_reported(bag: Path, tmp_path: Path, where: float) -> None:
    copy = tmp_path / "bag"
    shutil.copytree(bag, copy)
    mcap = copy / "bag.mcap"
    data = bytearray(mcap.read_bytes())
    at = int(where * len(data)) if isinstance(where, float) else where % len(data)
    data[at] ^= 0x10
    mcap.write_bytes(bytes(data))
    with pytest.raises(BagError, match="corrupt"):
        verify_bag(copy)


def test_clean_bag_verifies_and_the_end_magic_alone_costs_nothing(
    bag: Path, tmp_path: Path
) -> None:
    assert verify_bag(bag) == []
    copy = tmp_path / "bag"
    shutil.copytree(bag, copy)
    data = bytearray((copy / "bag.mcap").read_bytes())
    data[-1] ^= 0x01
    (copy / "bag.mcap").write_bytes(bytes(data))
    assert "no valid footer" in verify_bag(copy)[0]
    assert digest(read_bag(copy)) == digest(read_bag(bag))


def test_edited_custom_data_is_refused_and_stale_counts_are_noted(
    bag: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "bag"
    shutil.copytree(bag, copy)
    meta_path = copy / "metadata.yaml"
    original = meta_path.read_text()
    meta_path.write_text(original.replace("message_count: 12", "message_count: 13"))
    assert "disagrees" in bag_info(copy).notes[0] and bag_info(copy).message_count == 12
    meta_path.write_text(original.replace("robomr.note: test", "robomr.note: edited"))
    with pytest.raises(BagError, match=r"robomr\.note"):
        verify_bag(copy)


def test_disk_full_stops_with_one_line_and_keeps_a_readable_bag(tmp_path: Path) -> None:
    def limit() -> None:  # writes beyond 1.5 MB fail with EFBIG, as on a full disk
        resource.setrlimit(resource.RLIMIT_FSIZE, (1_500_000, 1_500_000))

    argv = ["launch", str(REPO / "launch" / "synthetic.launch.yaml"), "--duration", "3"]
    proc = subprocess.run(
        robomr_command([*argv, "--record", "b"]),
        cwd=tmp_path,
        env=child_env() | {"PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
        preexec_fn=limit,
        timeout=900,  # a hang guard only (load 30 slows start-up minutes)
    )
    errors = [ln for ln in proc.stderr.splitlines() if "error" in ln.lower()]
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(errors) == 1 and "b/b.mcap" in errors[0] and "File too large" in errors[0]
    assert os.path.getsize(tmp_path / "b" / "b.mcap") <= 1_500_000
    with Reader(tmp_path / "b") as reader:
        kept = sum(1 for _ in reader.messages())
    assert kept == bag_info(tmp_path / "b").message_count > 0
