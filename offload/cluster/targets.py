"""The knobs the agent's executor turns on the local backend (``executor.Targets``).

The agent writes cgroup files itself (the BE group's CPU cap, a co-runner's own cap and
freezer), as
koordlet does on a node; what only the cluster can do (stop a process, change router weights) it
asks through the admin API. Without a freezer a pause also goes through the API, which falls
back to SIGSTOP.
"""

from __future__ import annotations

from offload.cluster.api import ClusterApi
from offload.cluster.cgroups import Cgroup, CgroupSupport, CgroupUnavailable


class AgentTargets:
    """Knobs of the local cluster, found through its status (see the module docstring)."""

    def __init__(self, api: ClusterApi, support: CgroupSupport) -> None:
        self.api, self.support = api, support

    def _be(self) -> Cgroup:
        rel = self.api.status().get("be_cgroup")
        if not rel:
            raise CgroupUnavailable(
                f"the cluster has no best-effort group:\n{self.support.summary()}"
            )
        return Cgroup(self.support, rel)

    def be_limit(self) -> float | None:
        return self._be().cpu_limit()

    def set_be_limit(self, cores: float | None) -> None:
        self._be().set_cpu_limit(cores)

    def be_weight(self) -> int:
        return self._be().cpu_weight()

    def set_be_weight(self, shares: int) -> None:
        self._be().set_cpu_weight(shares)

    def _corunner(self, name: str) -> dict:
        match = [c for c in self.api.status()["corunners"] if c["name"] == name]
        if not match:
            raise KeyError(f"no co-runner named {name}")
        return match[0]

    def corunner_limit(self, name: str) -> float | None:
        return self._corunner(name).get("limit_cores")

    def throttle(self, name: str, cores: float | None) -> None:
        rel = self._corunner(name).get("cgroup")
        if not rel or not self.support.has("cpu"):
            raise CgroupUnavailable(
                f"throttling {name}: no cpu controller for it:\n{self.support.summary()}"
            )
        Cgroup(self.support, rel).set_cpu_limit(cores)

    def pause(self, name: str, paused: bool) -> None:
        rel = self._corunner(name).get("cgroup")
        if rel and self.support.has("freeze"):
            Cgroup(self.support, rel).freeze(paused)
        else:
            self.api.corunner_op(name, "pause" if paused else "resume")

    def evict(self, name: str) -> None:
        self.api.corunner_op(name, "evict")

    def weights(self) -> dict[str, float]:
        return {r["name"]: r.get("weight", 1.0) for r in self.api.status()["replicas"]}

    def set_weights(self, weights: dict[str, float]) -> None:
        self.api.set_weights(weights)

    def place(self, cpus: tuple[int, ...]) -> None:
        raise CgroupUnavailable("placement is the cluster's job (LocalCluster.scale)")
