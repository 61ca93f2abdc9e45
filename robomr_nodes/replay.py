"""Replays a bag's input topics into chosen nodes on sim time and records their outputs.

The nodes and their parameters come from the run that recorded the bag (stored in the bag's
metadata), so the same bag and nodes give byte-identical outputs on every replay. Nodes on sim
time get their clock from the player, as with ``ros2 bag play --clock``: it publishes ``/clock``
at each recorded timestamp just before that timestamp's messages (a recorded ``/clock`` is not
fed), so every node reads the same "now" as in the recorded run.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from robomr_nodes.bag import (
    BagError,
    BagMessage,
    BagRecorder,
    bag_info,
    check_new_bag_path,
    digest,
    read_bag,
    verify_bag,
)
from robomr_nodes.messages import new_message, time_msg
from robomr_nodes.runner import (
    GRAPH_KEY,
    START_KEY,
    RunOptions,
    TapBuffer,
    build_executor,
    finish_recording,
    graph_from_yaml,
    spin_recorded,
)
from robomr_nodes.runtime.executor import EmbeddedExecutor

# Diagnostics carry wall-clock processing times: recorded, but left out of the output digest.
NONDETERMINISTIC_TYPES = frozenset({"diagnostic_msgs/msg/DiagnosticArray"})
CLOCK_TOPIC = "/clock"


class ReplayError(RuntimeError):
    """Nothing to replay: unknown node names, or the nodes read none of the bag's topics."""


@dataclass(frozen=True)
class ReplayResult:
    """Where the outputs went, which topics were fed and produced, and the digest of the
    deterministic outputs (everything but :data:`NONDETERMINISTIC_TYPES`)."""

    out: Path
    inputs: list[str]
    outputs: list[str]
    messages_in: int
    messages_out: int
    digest: str
    errors: int
    notes: tuple[str, ...] = ()


class _BagPlayer:
    """Schedules bag messages into an executor, one timestamp at a time (bounded memory).

    All messages of one timestamp are published in one go, in recorded order, before any
    callback they trigger runs: in the recorded run they came from sensor timers, whose events
    precede the deliveries of that instant, so nodes see the same inputs in the same order.
    """

    def __init__(
        self,
        executor: EmbeddedExecutor,
        messages: Iterator[BagMessage],
        types_by_topic: dict[str, str],
        publish_clock: bool,
    ) -> None:
        self._executor = executor
        self._messages = messages
        self._injectors = {
            # reliable + transient local reaches every subscriber QoS (latched maps included)
            t: executor.create_injector(ty, t, "latched", node="bag_player")
            for t, ty in types_by_topic.items()
        }
        self._clock = (
            executor.create_injector("rosgraph_msgs/msg/Clock", CLOCK_TOPIC, node="bag_player")
            if publish_clock
            else None
        )
        self.count = 0
        self._ahead = next(self._messages, None)
        self._schedule_next()

    def _schedule_next(self) -> None:
        if self._ahead is None:
            return
        batch = [self._ahead]
        self._ahead = next(self._messages, None)
        while self._ahead is not None and self._ahead.stamp_ns == batch[0].stamp_ns:
            batch.append(self._ahead)
            self._ahead = next(self._messages, None)
        self._executor.schedule(batch[0].stamp_ns, lambda: self._inject(batch), "bag_player")

    def _inject(self, batch: list[BagMessage]) -> None:
        if self._clock is not None:
            clock = time_msg(batch[0].stamp_ns)
            self._clock.publish(new_message("rosgraph_msgs/msg/Clock", clock=clock))
        for msg in batch:
            self._injectors[msg.topic].publish(msg.decode())
        self.count += len(batch)
        self._schedule_next()


def replay(bag: str | Path, node_names: list[str] | None, out: str | Path) -> ReplayResult:
    """Feeds ``bag`` to the named nodes of its recorded graph (all when None); records outputs.

    The bag's CRCs are checked first; of a truncated bag the complete chunks are replayed
    (``notes`` says so). Nothing is created until the nodes have started.

    Raises:
        BagError: the bag is missing, foreign, corrupt, or lacks the recorded graph; ``out``
            exists.
        ReplayError: unknown node names, or no input topic of the nodes is in the bag.
        NodeStartError, ParameterError: a node of the recorded graph cannot start.
        shutdown.Interrupted: a signal stopped the replay (the output bag was closed).
    """
    notes = verify_bag(bag)
    info = bag_info(bag)
    if GRAPH_KEY not in info.custom_data:
        raise BagError(f"{bag}: no robomr graph in metadata.yaml (not recorded by robomr)")
    graph = graph_from_yaml(info.custom_data[GRAPH_KEY], f"{bag}/metadata.yaml")
    by_name = {n.name: n for n in graph} | {n.executable: n for n in graph}
    if node_names:
        unknown = [n for n in node_names if n not in by_name]
        if unknown:
            raise ReplayError(
                f"{bag}: no node(s) {unknown} in the recorded graph; it has "
                f"{sorted(n.name for n in graph)}"
            )
        graph = list({id(by_name[n]): by_name[n] for n in node_names}.values())
    try:
        start_ns = int(info.custom_data.get(START_KEY, info.start_ns))
    except ValueError:
        raise BagError(f"{bag}/metadata.yaml: custom_data {START_KEY} is not an integer") from None
    options = RunOptions(clock="sim", start_ns=start_ns)
    out_path = Path(out)
    check_new_bag_path(out_path)
    fed: set[str] = set()  # filled below; what nodes publish while starting is all output
    buffer = TapBuffer()

    def record_outputs(topic: str, typename: str, stamp: int, msg: object, qos: object) -> None:
        if topic not in fed:
            buffer.tap(topic, typename, stamp, msg, qos)

    executor = build_executor(graph, options, (record_outputs,))
    node_fq = set(executor.nodes)
    topics = executor.topics()
    outputs = sorted(t for t, ti in topics.items() if node_fq & set(ti.publishers))
    inputs = sorted(
        t
        for t, ti in topics.items()
        if t in info.topics
        and t not in outputs
        and t != CLOCK_TOPIC
        and node_fq & set(ti.subscribers)
    )
    if not inputs:
        executor.shutdown()
        raise ReplayError(f"{bag}: the nodes read none of the bag's topics ({sorted(info.topics)})")
    fed.update(inputs)
    clock_readers = (
        node_fq & set(topics[CLOCK_TOPIC].subscribers) if CLOCK_TOPIC in topics else set()
    )
    publish_clock = bool(clock_readers) and CLOCK_TOPIC not in outputs
    if publish_clock:
        fed.add(CLOCK_TOPIC)  # the player's clock is input, not output
    recorder = BagRecorder(out_path, custom_data={"robomr.replay_of": str(Path(bag).resolve())})
    try:
        buffer.forward(recorder.tap)
        player = _BagPlayer(
            executor, read_bag(bag, inputs), {t: info.topics[t][0] for t in inputs}, publish_clock
        )
        # run to the bag's last message; outputs take no sim time, so none are cut off
        spin_recorded(executor, max(info.end_ns - start_ns, 0) / 1e9, recorder)
    finally:
        executor.shutdown()
        recorder.close()
    finish_recording(recorder)
    return ReplayResult(
        out_path,
        inputs,
        outputs,
        player.count,
        recorder.count,
        digest(m for m in read_bag(out_path) if m.typename not in NONDETERMINISTIC_TYPES),
        len(executor.errors),
        tuple(notes),
    )
