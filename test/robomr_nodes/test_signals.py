"""SIGINT, SIGTERM, SIGHUP (and SIGKILL) at random moments of a recording run: the run stops
with 128 + N and one line, and the bag always opens, with the rosbags reader (when the process
could close it) and with ``robomr replay``.

The runs are real child processes (``robomr launch`` on wall-clock time), started together so
that their start-up overlaps; each gets its signal a random time after its bag appeared.
"""

from __future__ import annotations

import os
import random
import signal
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from rosbags.rosbag2 import Reader

from bench.reliability.cases_faults import signal_runner
from bench.reliability.resources import SYNTH_PARAMS
from robomr_nodes import shutdown
from robomr_nodes.bag import bag_info
from robomr_nodes.cli.main import main

SYNTHETIC = str(Path(__file__).resolve().parents[2] / "launch" / "synthetic.launch.yaml")
SIGNALS = [signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGKILL]
RUN = ["launch", SYNTHETIC, "params_file:=small.yaml", "--clock", "wall", "--duration", "3"]


@pytest.fixture(scope="module")
def stopped_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[int, tuple]:
    seed = random.SystemRandom().randrange(10**6)  # a new moment each run, printed on failure
    runs = {}
    for sig in SIGNALS:
        ws = tmp_path_factory.mktemp(signal.Signals(sig).name)
        (ws / "small.yaml").write_text(SYNTH_PARAMS)
        # SIGKILL after the first chunk (1 s): before it, the (readable) bag would be empty;
        # the others at least 0.5 s in: a signal right as the bag appears can come before the
        # first message, and the closed bag is then (correctly) empty, which tests nothing
        low = 1.3 if sig == signal.SIGKILL else 0.5
        runs[sig] = (ws, signal_runner(sig, seed + sig, "b/metadata.yaml", low + 1.0, low))
    with ThreadPoolExecutor(len(SIGNALS)) as pool:
        done = {s: pool.submit(run, [*RUN, "--record", "b"], ws) for s, (ws, run) in runs.items()}
        return {s: (runs[s][0], f.result(), seed) for s, f in done.items()}


@pytest.mark.parametrize("sig", SIGNALS[:3], ids=lambda s: signal.Signals(s).name)
def test_handled_signal_closes_the_bag(stopped_runs, sig: int, capsys) -> None:
    ws, out, seed = stopped_runs[sig]
    name = signal.Signals(sig).name
    assert out.rc == 128 + sig, f"seed {seed}: {out.stderr[-300:]}"
    assert "Traceback" not in out.stderr
    assert out.last_line.startswith(f"robomr launch: stopped by {name}; bag b closed (")
    with Reader(ws / "b") as reader:  # complete: summary, footer and final metadata.yaml
        assert sum(1 for _ in reader.messages()) == reader.message_count > 0
    assert main(["replay", str(ws / "b"), "--nodes", "cloud_markers"]) == 0
    assert "digest" in capsys.readouterr().out


def test_hard_kill_leaves_a_bag_that_replay_opens(stopped_runs, capsys) -> None:
    ws, out, seed = stopped_runs[signal.SIGKILL]
    assert out.rc == -signal.SIGKILL
    info = bag_info(ws / "b")
    assert info.notes and info.message_count > 0, f"seed {seed}: {info}"
    assert main(["replay", str(ws / "b"), "--nodes", "cloud_markers"]) == 0
    captured = capsys.readouterr()
    assert "digest" in captured.out and "truncated" in captured.err + str(info.notes)


def test_signal_inside_a_critical_section_waits_for_its_end() -> None:
    with shutdown.handling_signals():
        with pytest.raises(shutdown.Interrupted) as stopped, shutdown.critical():
            os.kill(os.getpid(), signal.SIGTERM)
            finished = True  # reached: the handler deferred the signal
        assert finished and stopped.value.exit_code == 128 + signal.SIGTERM


def test_signal_during_a_graceful_section_calls_the_hook_and_raises_nothing() -> None:
    calls = []
    with shutdown.handling_signals(), shutdown.stop_gracefully(lambda: calls.append(1)):
        os.kill(os.getpid(), signal.SIGHUP)
        assert calls == [1] and shutdown.signal_received() == signal.SIGHUP
        with pytest.raises(shutdown.Interrupted):  # a second signal does not wait
            os.kill(os.getpid(), signal.SIGINT)
