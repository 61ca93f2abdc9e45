"""``robomr demo --offload``: the inference service as local replica processes, wired to the
demo graph through the edge bridge, optionally killed midway, and its figures for the summary.

The session works in a private temporary folder until the run has started (the demo writes
nothing before its nodes are up): a fresh bearer token, the demo's Gaussian map as a .ply for the
service (the bridge builds the same map from the scenario for its local fallback, as
``gs_render`` does), and ``replicas`` processes (``offload.replicas``) whose logs are copied to
``DIR/service/`` after the run. The bridge is pointed at them. ``kill_at_s`` (sim time from
the start) SIGKILLs every replica: from then on each frame falls back to local inference, and
the summary counts frames lost (clouds without detections, which must be 0) next to the offload
ratio, fallbacks and round-trip times.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from robomr_nodes.launch_yaml import LaunchPlan
from robomr_nodes.params import ParamOverride

BRIDGE = "edge_bridge"


class OffloadDemoError(ValueError):
    """Bad offload options, or the service did not come up (the message says why)."""


@dataclass(frozen=True)
class OffloadOptions:
    """Attributes:
    replicas: service replica processes, in [1, 8].
    kill_at_s: sim time after the start at which every replica is killed (None: never).
    policy: batching policy of the replicas.
    render: the operator view too (the service renders the scenario's fixed map instead of
        gs_render's learned one; launch argument ``offload_render``).
    """

    replicas: int = 1
    kill_at_s: float | None = None
    policy: str = "bucket"
    render: bool = False

    def __post_init__(self) -> None:
        if not 1 <= self.replicas <= 8:
            raise OffloadDemoError(f"replicas={self.replicas} must be in [1, 8]")
        if self.kill_at_s is not None and not self.kill_at_s >= 0:
            raise OffloadDemoError(f"kill_at_s={self.kill_at_s} must be >= 0")


class OffloadSession:
    """Service replicas for one demo run (a context manager around the run)."""

    def __init__(self, options: OffloadOptions, namespace: str) -> None:
        self.options, self.namespace = options, namespace
        self.replicas: Any = None
        self.killed_at_ns: int | None = None
        self.counts: Counter[str] = Counter()
        self._tmp = tempfile.TemporaryDirectory(prefix="robomr-offload-")
        self.folder = Path(self._tmp.name)

    def prepare(self, plan: LaunchPlan) -> None:
        """Starts the replicas and points the plan's edge bridge at them.

        Raises:
            OffloadDemoError: the plan has no edge bridge, or a replica did not start.
        """
        from offload.replicas import LocalReplicas, ReplicaError

        bridge = next((n for n in plan.nodes if n.executable == BRIDGE), None)
        if bridge is None:
            raise OffloadDemoError("the launch plan has no edge_bridge (use_offload:=true)")
        token = self.folder / "token"
        token.touch(mode=0o600)
        token.write_text(secrets.token_urlsafe(24) + "\n")
        args = ["--token-file", str(token), "--policy", self.options.policy]
        models = ["detector"] if _flag(bridge, "detect") else []
        if _flag(bridge, "render"):
            models.append("gs_render")
            args += ["--render-map", str(self._write_map(bridge))]
        if not models:
            raise OffloadDemoError("use_offload with neither detection nor rendering to offload")
        source = "robomr demo --offload"
        self.replicas = LocalReplicas(
            self.options.replicas, [*args, "--models", ",".join(models)], self.folder / "logs"
        )
        try:
            urls = self.replicas.start()
        except ReplicaError as err:
            raise OffloadDemoError(f"the inference service did not start: {err}") from err
        bridge.params["service_url"] = ParamOverride(",".join(urls), source)
        bridge.params["token_file"] = ParamOverride(str(token), source)

    def _write_map(self, bridge: Any) -> Path:
        """The map the local gs_render would build (or the launch's gs_map), for the service."""
        from gs_render import save_ply
        from robomr_nodes.nodes.gs_render import build_map

        value = {k: v.value for k, v in bridge.params.items()}
        if value.get("map_path"):
            return Path(value["map_path"])
        path = self.folder / "map.ply"
        save_ply(
            build_map(
                value.get("scenario", "urban-clutter"),
                int(value.get("seed", -1)),
                float(value.get("spacing_m", 0.3)),
            ),
            path,
        )
        return path

    def attach(self, executor: Any, start_ns: int) -> None:
        """Schedules the kill and counts the clouds and detections published."""
        executor.add_tap(self._tap)
        if self.options.kill_at_s is not None:
            executor.schedule(start_ns + round(self.options.kill_at_s * 1e9), self._kill(executor))

    def _kill(self, executor: Any) -> Any:
        def kill() -> None:
            self.replicas.kill()
            self.killed_at_ns = executor.now_ns()

        return kill

    def _tap(self, topic: str, _typename: str, _t: int, _msg: Any, _qos: Any) -> None:
        self.counts[topic] += 1

    def summary(self, executor: Any, start_ns: int) -> dict[str, Any]:
        """Offload figures of the run (see the module docstring)."""
        ns = self.namespace.rstrip("/")
        bridge = executor.nodes.get(f"{ns}/{BRIDGE}")
        out: dict[str, Any] = {
            "replicas": self.options.replicas,
            "policy": self.options.policy,
            "service_killed_at_s": None
            if self.killed_at_ns is None
            else (self.killed_at_ns - start_ns) / 1e9,
            "clouds": self.counts[f"{ns}/points"],
            "detections": self.counts[f"{ns}/detections"],
            "frames_lost": self.counts[f"{ns}/points"] - self.counts[f"{ns}/detections"],
        }
        for task in ("detect", "render"):
            if bridge is None or not getattr(bridge.params, task):
                continue
            values = bridge.stats[task].values()
            out[task] = {k: v for k, v in values.items() if not k.startswith("fallbacks_")}
            out[task]["fallback_reasons"] = {
                k.removeprefix("fallbacks_"): v
                for k, v in values.items()
                if k.startswith("fallbacks_")
            }
        return out

    def keep_logs(self, dest: Path) -> None:
        """Copies the replicas' logs to ``dest`` (after a run that wrote its outputs)."""
        logs = self.folder / "logs"
        if logs.is_dir():
            shutil.copytree(logs, dest, dirs_exist_ok=True)

    def close(self) -> None:
        if self.replicas is not None:
            self.replicas.stop()
        self._tmp.cleanup()


def _flag(spec: Any, name: str) -> bool:
    override = spec.params.get(name)
    value = True if override is None and name == "detect" else getattr(override, "value", False)
    return str(value).lower() in ("true", "1")
