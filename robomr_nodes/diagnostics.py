"""diagnostic_msgs/DiagnosticArray of key/value figures, published on ``/diagnostics`` where
rqt_runtime_monitor and diagnostic_aggregator read them (each node's status has its own name)."""

from __future__ import annotations

from typing import Any

from robomr_nodes.messages import header, new_message

OK, WARN, ERROR = 0, 1, 2


def diagnostic_array(
    stamp: int, name: str, values: dict[str, Any], level: int = OK, message: str = ""
) -> Any:
    """One DiagnosticStatus named ``name`` with ``values`` as KeyValue strings."""
    pairs = [
        new_message(
            "diagnostic_msgs/msg/KeyValue",
            key=k,
            value=f"{v:.6g}" if isinstance(v, float) else str(v),
        )
        for k, v in values.items()
    ]
    status = new_message(
        "diagnostic_msgs/msg/DiagnosticStatus",
        level=level,
        name=name,
        message=message,
        hardware_id="robomr",
        values=pairs,
    )
    return new_message(
        "diagnostic_msgs/msg/DiagnosticArray", header=header(stamp, ""), status=[status]
    )


def diagnostic_values(msg: Any) -> dict[str, dict[str, str]]:
    """status name -> {key: value} of a DiagnosticArray."""
    return {s.name: {kv.key: kv.value for kv in s.values} for s in msg.status}


def status_values(messages: list[Any], name: str) -> list[dict[str, str]]:
    """{key: value} of status ``name`` in each of ``messages`` (DiagnosticArrays) carrying it."""
    rows = [diagnostic_values(m) for m in messages]
    return [r[name] for r in rows if name in r]
