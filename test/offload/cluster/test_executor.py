"""The executor applies each action through its targets, logs every change, never raises."""

from __future__ import annotations

import json
from pathlib import Path

from offload.cluster.executor import Executor
from offload.cluster.mitigation.interface import (
    EvictCoRunner,
    PauseCoRunner,
    PlaceReplica,
    ResumeCoRunner,
    SetBeLimit,
    SetWeights,
    ThrottleCoRunner,
)


class RecordingTargets:
    """Targets that remember what was asked (the backends' own targets are tested with the
    backends); ``evict`` of an unknown name fails as a real backend's would."""

    def __init__(self) -> None:
        self.limit: float | None = None
        self.paused: dict[str, bool] = {}
        self.evicted: list[str] = []
        self.w: dict[str, float] = {}
        self.placed: list[tuple[int, ...]] = []
        self.caps: dict[str, float | None] = {"c0": 0.5}

    def be_limit(self) -> float | None:
        return self.limit

    def set_be_limit(self, cores: float | None) -> None:
        self.limit = cores

    def corunner_limit(self, name: str) -> float | None:
        return self.caps[name]

    def throttle(self, name: str, cores: float | None) -> None:
        self.caps[name] = cores

    def pause(self, name: str, paused: bool) -> None:
        self.paused[name] = paused

    def evict(self, name: str) -> None:
        if name == "ghost":
            raise KeyError(f"no co-runner {name}")
        self.evicted.append(name)

    def weights(self) -> dict[str, float]:
        return dict(self.w)

    def set_weights(self, weights: dict[str, float]) -> None:
        self.w = dict(weights)

    def place(self, cpus: tuple[int, ...]) -> None:
        self.placed.append(cpus)


def test_every_action_reaches_its_target_and_is_logged_with_before_and_after(
    tmp_path: Path,
) -> None:
    t = RecordingTargets()
    log = tmp_path / "changes.jsonl"
    ex = Executor(t, log)
    changes = ex.apply(
        [
            SetBeLimit("budget", 0.7),
            PauseCoRunner("hot", "c0"),
            ResumeCoRunner("cool", "c0"),
            EvictCoRunner("again", "c1"),
            SetWeights("steer", {"r0": 1.0, "r1": 0.25}),
            PlaceReplica("least interference", (1,)),
            ThrottleCoRunner("excess", "c0", 0.2),
        ]
    )
    assert all(c.ok for c in changes)
    assert t.limit == 0.7 and t.paused == {"c0": False} and t.evicted == ["c1"]
    assert t.w == {"r0": 1.0, "r1": 0.25} and t.placed == [(1,)] and t.caps == {"c0": 0.2}
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    assert [x["action"] for x in lines] == [
        "SetBeLimit",
        "PauseCoRunner",
        "ResumeCoRunner",
        "EvictCoRunner",
        "SetWeights",
        "PlaceReplica",
        "ThrottleCoRunner",
    ]
    assert lines[0]["before"] is None and lines[0]["after"] == 0.7
    assert lines[-1]["target"] == "c0" and (lines[-1]["before"], lines[-1]["after"]) == (0.5, 0.2)
    assert lines[0]["reason"] == "budget"


def test_a_failing_action_is_logged_and_the_rest_still_run(tmp_path: Path) -> None:
    t = RecordingTargets()
    ex = Executor(t, tmp_path / "log.jsonl")
    changes = ex.apply([EvictCoRunner("x", "ghost"), SetBeLimit("y", 0.5)])
    assert not changes[0].ok and "ghost" in changes[0].error
    assert changes[1].ok and t.limit == 0.5
    assert ex.counts == {"EvictCoRunner_failed": 1, "SetBeLimit": 1}
